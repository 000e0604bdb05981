"""Session 18's hostile read of the eBPF recorder's record format: a name that holds
a newline and the record separator, followed by a well-formed record, splits its own
record in two that both parse. Through a symlink of that name to ``~/.ssh`` a real key
read was recorded as a read of a harmless path. Defanged: a planted credential is read;
nothing leaves the sandbox."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sandbox.models import Verdict
from sandbox.vet import FALLBACK_NOTE
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel

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
    # the eBPF recorder named explicitly: it could not look, so it says so (exit 3)
    code, report = run_cli(tmp_path, str(whl), "--recorder", "ebpf", "--phases", "import")
    assert report is not None
    assert code == 3 and report.verdict is Verdict.INCOMPLETE, (code, report.verdict, report.notes)
    assert any("not understood" in n for n in report.notes), report.notes
    # the default (auto) looks again under strace, which names the file the kernel opened
    code, report = run_cli(tmp_path, str(whl), "--recorder", "auto", "--phases", "import")
    assert report is not None
    rules = {f.rule_id for f in report.findings}
    assert code == 1 and "PS001" in rules, (code, report.verdict, report.notes)
    assert any(n.startswith(FALLBACK_NOTE) for n in report.notes), report.notes
