"""Session 18's hostile read of the eBPF recorder's record format: a name that holds
a newline and the record separator, followed by a well-formed record, splits its own
record in two that both parse. Through a symlink of that name to ``~/.ssh`` a real key
read was recorded as a read of a harmless path. Defanged: a planted credential is read;
nothing leaves the sandbox."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sandbox.vet import FALLBACK_NOTE
from tests.conftest import import_caught, run_cli
from tests.fixtures.builders import Randomised, build_wheel, setuptools_sdist

pytestmark = [pytest.mark.usefixtures("sandbox_image", "no_leaks"), pytest.mark.slow]


def test_a_forged_well_formed_record_does_not_hide_a_key_read(tmp_path: Path) -> None:
    r = Randomised()
    name = r.name("forger")
    # an argv element record ("a": nsecs, host tgid, index): the symlink's target, as the
    # decoder would read it, ends at the newline; the rest is an orphan argv element
    fake = f"a {r.rng.randint(10**9, 10**12)} {r.rng.randint(100, 4000)} 0"
    src = textwrap.dedent(
        f"""\
        import os

        home = os.path.expanduser("~")
        weird = "/tmp/{r.name("y")}\\n\\x1e{fake}\\x1f"
        os.makedirs(weird, exist_ok=True)
        # the kernel resolves the target through the weird directory to ~/.ssh
        target = weird + "/../.." + home + "/.ssh"
        link = "/tmp/{r.name("k")}"
        os.symlink(target, link)
        with open(link + "/id_rsa", "rb") as fh:
            fh.read()
        """
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    # the eBPF recorder named explicitly: the split record is not understood, and says
    # so; the open itself is named by the inode the kernel opened (session 19), so the
    # key read is seen through the forged path (before that: incomplete, exit 3)
    code, report = run_cli(tmp_path, str(whl), "--recorder", "ebpf", "--phases", "import")
    assert report is not None
    rules = {f.rule_id for f in report.findings}
    assert code == 1 and "PS001" in rules, (code, report.verdict, rules, report.notes)
    assert any("not understood" in n for n in report.notes), report.notes
    # the default (auto) looks again under strace, which names the file the kernel opened
    code, report = run_cli(tmp_path, str(whl), "--recorder", "auto", "--phases", "import")
    assert report is not None
    rules = {f.rule_id for f in report.findings}
    assert code == 1 and "PS001" in rules, (code, report.verdict, report.notes)
    assert any(n.startswith(FALLBACK_NOTE) for n in report.notes), report.notes


# --- the decoder's own view of paths and fds (a hostile read, session 18): each fixture
# reads the planted SSH key in a way the kernel resolves and the decoder did not. The
# eBPF run itself must now see the key (PS001) without handing over to strace, except
# where it cannot know (CLONE_FS): there it says so and auto looks under strace.


def _key_read(tmp_path: Path, src: str, *, fallback: bool = False) -> None:
    import_caught(tmp_path, src, "PS001", fallback=fallback)


def test_dotdot_after_a_symlink_climbs_from_its_target(tmp_path: Path) -> None:
    link = f"/tmp/{Randomised().name('l')}"
    _key_read(
        tmp_path,
        f"""\
        import os
        home = os.path.expanduser("~")
        os.makedirs(home + "/.cache", exist_ok=True)
        os.symlink(home + "/.cache", "{link}")
        with open("{link}/../.ssh/id_rsa", "rb") as fh:
            fh.read()
        """,
    )


def test_a_link_to_a_link_opened_by_its_own_name(tmp_path: Path) -> None:
    r = Randomised()
    d, k = r.name("d"), r.name("k")
    _key_read(
        tmp_path,
        f"""\
        import os
        os.symlink(os.path.expanduser("~"), "/tmp/{d}")
        os.symlink("/tmp/{d}/.ssh/id_rsa", "/tmp/{k}")
        with open("/tmp/{k}", "rb") as fh:
            fh.read()
        """,
    )


def test_an_fd_slot_reused_by_fcntl_dupfd(tmp_path: Path) -> None:
    _key_read(
        tmp_path,
        """\
        import fcntl, os
        h = os.open(os.path.expanduser("~"), os.O_RDONLY | os.O_DIRECTORY)
        t = os.open("/tmp", os.O_RDONLY | os.O_DIRECTORY)
        os.close(t)
        n = fcntl.fcntl(h, fcntl.F_DUPFD, t)
        os.read(os.open(".ssh/id_rsa", os.O_RDONLY, dir_fd=n), 4096)
        """,
    )


def test_a_child_sharing_the_cwd_moves_it(tmp_path: Path) -> None:
    # clone(CLONE_FS) without CLONE_THREAD: the child's chdir moves the parent's cwd
    _key_read(
        tmp_path,
        """\
        import ctypes, os, signal, time
        libc = ctypes.CDLL(None, use_errno=True)
        os.chdir("/tmp")
        pid = libc.syscall(56, 0x200 | signal.SIGCHLD, 0, 0, 0, 0)
        if pid == 0:
            os.chdir(os.path.expanduser("~"))
            os._exit(0)
        for _ in range(500):
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
            time.sleep(0.01)
        with open(".ssh/id_rsa", "rb") as fh:
            fh.read()
        """,
        fallback=True,
    )


def test_a_symlink_made_at_install_is_followed_at_import(tmp_path: Path) -> None:
    r = Randomised()
    name, link = r.name("rtinst"), f"/tmp/{r.name('l')}"
    sdist = setuptools_sdist(
        tmp_path,
        name,
        "1.0",
        name,
        f'with open("{link}/.ssh/id_rsa", "rb") as fh:\n    fh.read()\n',
        f'import os\ntry:\n    os.symlink(os.path.expanduser("~"), "{link}")\nexcept OSError:\n    pass\n',
    )
    code, report = run_cli(tmp_path, str(sdist), "--recorder", "auto", "--phases", "install,import")
    assert report is not None
    rules = {f.rule_id for f in report.findings}
    assert code == 1 and "PS001" in rules, (code, report.verdict, rules, report.notes)
    assert not any(n.startswith(FALLBACK_NOTE) for n in report.notes), report.notes


def test_an_exec_through_an_fd_is_named(tmp_path: Path) -> None:
    # fexecve of a shell through a reused fd slot: execveat(fd, "", AT_EMPTY_PATH)
    src = """\
        import fcntl, os
        s = os.open("/bin/sh", os.O_RDONLY)
        t = os.open("/usr/bin/python3", os.O_RDONLY)
        os.close(t)
        n = fcntl.fcntl(s, fcntl.F_DUPFD, t)
        pid = os.fork()
        if pid == 0:
            try:
                os.execve(n, ["sh", "-c", "true"], {})
            finally:
                os._exit(127)
        os.waitpid(pid, 0)
        """
    import_caught(tmp_path, src, "PS029", prefix="rtexec")


def test_a_symlink_renamed_before_use_is_still_followed(tmp_path: Path) -> None:
    # the decoder keyed its links by the name they were made under: a link to HOME
    # renamed (or its directory renamed) was a plain path again
    r = Randomised()
    d, e, link = f"/tmp/{r.name('d')}", f"/tmp/{r.name('e')}", r.name("l")
    _key_read(
        tmp_path,
        f"""\
        import os
        os.makedirs("{d}")
        os.symlink(os.path.expanduser("~"), "{d}/{link}")
        os.rename("{d}", "{e}")
        with open("{e}/{link}/.ssh/id_rsa", "rb") as fh:
            fh.read()
        """,
    )
