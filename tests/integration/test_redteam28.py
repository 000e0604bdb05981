"""Session 27's review of its own close-on-exec tracking, read as an attacker: the eBPF
decoder forgets an O_CLOEXEC fd at exec, but ``os.set_inheritable`` (ioctl FIONCLEX)
or ``fcntl(F_SETFD, 0)`` clears the flag and the fd survives. Unrecorded, the new
image's ``execveat(fd, "payload")`` named an unknown directory and the write-then-exec
of a dropped file (PS004) was missed. Defanged: the payload is ``exit 0``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import import_caught
from tests.fixtures.builders import Randomised

pytestmark = [pytest.mark.usefixtures("sandbox_image", "no_leaks"), pytest.mark.slow]

# the exec'd image: execveat(dirfd, "payload", argv, envp, 0) through an inherited fd
_CHILD = (
    "import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
    "argv = (ctypes.c_char_p * 2)(b'payload', None); envp = (ctypes.c_char_p * 1)(None); "
    "libc.syscall(322, int(sys.argv[1]), b'payload', argv, envp, 0)"
)


@pytest.mark.parametrize("clear", ["ioctl", "fcntl"])
def test_an_fd_made_inheritable_names_the_payload_exec_d_through_it(tmp_path: Path, clear: str) -> None:
    folder = Randomised().name("d")
    unflag = (
        "os.set_inheritable(d, True)"  # CPython: ioctl(FIONCLEX)
        if clear == "ioctl"
        else "fcntl.fcntl(d, fcntl.F_SETFD, 0)"
    )
    src = f"""\
        import fcntl, os, subprocess, sys
        os.makedirs("/tmp/{folder}", exist_ok=True)
        fd = os.open("/tmp/{folder}/payload", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755)
        os.write(fd, b"#!/bin/sh\\nexit 0\\n")
        os.close(fd)
        d = os.open("/tmp/{folder}", os.O_RDONLY | os.O_DIRECTORY)  # O_CLOEXEC by default
        {unflag}
        pid = os.fork()
        if pid == 0:
            try:
                os.execv(sys.executable, [sys.executable, "-c", {_CHILD!r}, str(d)])
            finally:
                os._exit(127)
        os.waitpid(pid, 0)
        """
    import_caught(tmp_path, src, "PS004", prefix="rtclx")
