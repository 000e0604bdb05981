"""The persistence diff end to end (issue 11, item 3): a randomised, defanged wheel
whose import plants start-up hooks in several places; every one is in PS005's
evidence from the filesystem diff, whatever the trace made of the write.  Nothing
outside the sandbox's honey HOME, its venv and /tmp is touched."""

from __future__ import annotations

import secrets
import textwrap
from pathlib import Path

import pytest

from sandbox.agent.protocol import HOME, PROJECT
from sandbox.models import Phase
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")


def test_every_planted_hook_is_in_the_diff_evidence(tmp_path: Path) -> None:
    r = Randomised()
    name, t = r.name("planter"), secrets.token_hex(3)
    src = textwrap.dedent(
        f"""\
        import os, site, sys
        HOME = os.path.expanduser("~")
        # a hard link to the rc file (same file system: HOME): the write goes to a cache name
        os.makedirs(HOME + "/.cache", exist_ok=True)
        link = HOME + "/.cache/{t}l"
        os.link(HOME + "/.bashrc", link)
        with open(link, "a") as fh:
            fh.write("# {t}\\n")
        os.makedirs(HOME + "/.config/autostart", exist_ok=True)
        with open(HOME + "/.config/autostart/{t}.desktop", "w") as fh:
            fh.write("[Desktop Entry]\\nExec=/bin/true\\n")
        with open(site.getsitepackages()[0] + "/{t}.pth", "w") as fh:
            fh.write("import os\\n")
        hooks = "{PROJECT}/.git/hooks"
        os.makedirs(hooks, exist_ok=True)
        with open(hooks + "/post-checkout", "w") as fh:
            fh.write("#!/bin/sh\\n")
        """
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None and code == 1
    diffed = {
        e.path
        for f in report.findings
        if f.rule_id == "PS005" and f.phase is Phase.IMPORT and f.pass_name == "default"
        for e in f.evidence
        if e.syscall == "fsdiff" and "from the filesystem diff" in e.detail
    }
    site = report.inventory.site_packages
    assert diffed >= {
        f"{HOME}/.bashrc",
        f"{HOME}/.config/autostart/{t}.desktop",
        f"{site}/{t}.pth",
        f"{PROJECT}/.git/hooks/post-checkout",
    }, [(f.rule_id, f.message) for f in report.findings]
