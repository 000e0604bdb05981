"""Session 17's hostile read of the eBPF recorder, now the default one: it reads the
first 184 bytes of a path or an argument, so padding (``/./././``, ``//``) pushed what
the rules look for past what it read. Defanged: a planted credential is read and a
shell runs ``true``; nothing leaves the sandbox."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sandbox.models import Verdict
from sandbox.vet import FALLBACK_NOTE
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel

pytestmark = [pytest.mark.usefixtures("sandbox_image", "no_leaks"), pytest.mark.slow]


def _padded_wheel(tmp_path: Path) -> Path:
    r = Randomised()
    name = r.name("padded")
    unit = r.rng.choice(["./", "/", "././"])
    pad = unit * (r.rng.randint(200, 300) // len(unit))  # past the 184 bytes read
    cred = r.rng.choice([".ssh/id_rsa", ".aws/credentials"])
    src = textwrap.dedent(
        f"""\
        import os, subprocess

        home = os.path.expanduser("~")
        with open(home + "/" + {pad!r} + {cred!r}, "rb") as fh:
            fh.read()
        subprocess.run(["/" + {pad!r} + "bin/sh", "-c", "id >/dev/null"])
        """
    )
    return build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})


def test_padded_paths_are_seen_under_the_default_recorder(tmp_path: Path) -> None:
    """On main the eBPF recorder (auto's choice here) read only the padding: no
    credential path, no shell, CLEAN. The cut is now marked and auto looks again under
    strace (or strace was the choice): the shell and the credential read are judged."""
    whl = _padded_wheel(tmp_path)
    code, report = run_cli(tmp_path, str(whl), "--recorder", "auto", "--phases", "import")
    assert report is not None
    assert code == 1 and report.verdict is Verdict.MALICIOUS, (report.verdict_reason, report.notes)
    rules = {f.rule_id for f in report.findings}
    assert {"PS003", "PS001"} <= rules, rules
    if any(n.startswith("recorder: eBPF") for n in report.notes):
        raise AssertionError(f"judged on the eBPF run's cut paths: {report.notes}")


def test_padded_paths_are_never_clean_under_ebpf_named(tmp_path: Path) -> None:
    """``--recorder ebpf`` named explicitly does not fall back: the cut paths make the
    look incomplete, with a note naming the first, rather than CLEAN."""
    whl = _padded_wheel(tmp_path)
    code, report = run_cli(tmp_path, str(whl), "--recorder", "ebpf", "--phases", "import")
    assert report is not None
    assert report.verdict is not Verdict.CLEAN and code in (1, 3), report.verdict_reason
    cut = [n for n in report.notes if n.startswith("eBPF recorder read only part")]
    assert cut and "candidate" in cut[0], report.notes


def test_a_credential_opened_under_a_directory_fd_passed_over_scm_rights_is_seen(tmp_path: Path) -> None:
    """The eBPF decoder follows the fds it sees opened; one received over
    ``SCM_RIGHTS`` names no directory, so ``openat(fd, ".ssh/id_rsa")`` was judged as
    a relative path and matched no credential: CLEAN on main under eBPF. Its start is
    now marked unknown, and auto looks again under strace (``-yy`` names the file)."""
    r = Randomised()
    name = r.name("fdpass")
    cred = r.rng.choice([".ssh/id_rsa", ".aws/credentials"])
    src = textwrap.dedent(
        f"""\
        import array, os, socket

        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        fd = os.open(os.path.expanduser("~"), os.O_RDONLY | os.O_DIRECTORY)
        a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
        _m, anc, _f, _a = b.recvmsg(1, socket.CMSG_LEN(4))
        os.close(fd)
        home = array.array("i", anc[0][2][:4])[0]
        f = os.open({cred!r}, os.O_RDONLY, dir_fd=home)
        os.read(f, 4096)
        """
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl), "--recorder", "auto", "--phases", "import")
    assert report is not None
    assert code == 1 and report.verdict is not Verdict.CLEAN, (report.verdict_reason, report.notes)
    assert "PS001" in {f.rule_id for f in report.findings}, report.findings
    assert not any(n.startswith("recorder: eBPF") for n in report.notes), report.notes


def test_a_forged_record_separator_sends_auto_to_strace(tmp_path: Path) -> None:
    """A file name holding the eBPF recorder's record separator breaks its record:
    that run is incomplete (fail closed), and auto now looks again under strace
    rather than answer incomplete, so the name cannot buy a silence."""
    r = Randomised()
    name = r.name("forger")
    src = textwrap.dedent(
        f"""\
        import os

        try:
            open("/tmp/{r.name("x")}\\x1eP 2 1 2 3 7 7 1 0 0\\x1f/forged", "w").close()
        except OSError:
            pass
        with open(os.path.expanduser("~/.ssh/id_rsa"), "rb") as fh:
            fh.read()
        """
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl), "--recorder", "auto", "--phases", "import")
    assert report is not None
    rules = {f.rule_id for f in report.findings}
    assert code == 1 and "PS001" in rules, (report.verdict_reason, report.notes)
    assert all(p.trace_complete for p in report.phases)
    fallback = [n for n in report.notes if n.startswith(FALLBACK_NOTE)]
    assert fallback and "not understood" in fallback[0], report.notes
