"""The eBPF recorder reads a call's path from the caller's memory when the call
returns; the kernel copied it when the call began. A second thread that rewrites the
buffer in between shows the recorder another path than the file the kernel opened
(session 18's hostile read won that race with native code). The fixture races ctypes
opens of the planted SSH key against a thread that flips the buffer to a name that
does not exist: any successful open recorded under that name (or a mix of the two)
is a lie. The key is named through ten ``/proc/self/root`` magic links, a path walk
some 20 µs long, so the flip lands inside the call even when the two threads share one
CPU (a plain open is over in 3 µs; in a busy CI run none raced in 40,000 tries).
Defanged: a planted credential is opened; nothing leaves the sandbox."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from sandbox.models import EventKind
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel, flipped_path_source, torn_name

pytestmark = [pytest.mark.usefixtures("sandbox_image", "no_leaks"), pytest.mark.slow]

KEY = "/home/dev/.ssh/id_rsa"
# the same file, each magic link resolved anew (171 bytes: under the recorder's STRLEN)
SLOW_KEY = "/proc/self/root" * 10 + KEY
OPENS = 20_000  # at most, within 12 s


def test_a_path_rewritten_during_the_open_still_names_the_file_opened(tmp_path: Path) -> None:
    r = Randomised()
    name = r.name("racer")
    # the same length as the key's path: the NUL stays where it is whichever is copied
    decoy = "/tmp/" + "".join(r.rng.choice(string.ascii_lowercase) for _ in range(len(SLOW_KEY) - 5))
    loop = f"""\
        end = time.monotonic() + 12
        for _ in range({OPENS}):
            if time.monotonic() > end:
                break
            fd = libc.open(buf, os.O_RDONLY)
            if fd >= 0:
                os.close(fd)
        """
    src = flipped_path_source(SLOW_KEY, decoy, loop)
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl), "--recorder", "ebpf", "--phases", "import")
    assert report is not None
    rules = {f.rule_id for f in report.findings}
    assert code == 1 and "PS001" in rules, (code, report.verdict, rules, report.notes)

    def lie(path: str) -> bool:
        return torn_name(path, SLOW_KEY, decoy)

    opens = [
        e
        for e in report.events
        if e.kind in (EventKind.FILE_READ, EventKind.FILE_WRITE) and e.syscall in ("open", "openat")
    ]
    named_key = [e for e in opens if e.path == KEY and not e.failed]
    lies = [e for e in opens if e.path and lie(e.path) and not e.failed]
    assert named_key, "the race never opened the key"
    assert not lies, f"{len(lies)} successful open(s) recorded under another name, e.g. {lies[0]}"
    # the name the call's memory showed stays in the evidence
    assert any(e.path2 and lie(e.path2) for e in named_key), "no open raced: the test proves nothing"
