"""The persistence diff (issue 11, item 3): the agent's snapshot of start-up files,
schedulers and interpreter hooks, and PS005 judging what appeared or changed even
when the trace shows nothing (evidence marked as coming from the diff)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from sandbox.agent import persist
from sandbox.agent.protocol import HOME, VENV
from sandbox.judge.rules import evaluate
from sandbox.models import FsChange, Observation, Phase, PhaseResult, PhaseStatus
from sandbox.runner.interface import AgentPhase, RawRun
from sandbox.trace.observe import fs_changes


def _home(tmp_path: Path) -> tuple[str, str]:
    home = tmp_path / "home"
    venv = home / "project" / ".venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (venv / "bin").mkdir()
    (venv / "bin" / "activate").write_text("# activate\n")
    (home / ".bashrc").write_text("# rc\nalias ll='ls -l'\n")
    (home / "project" / ".git" / "hooks").mkdir(parents=True)
    (home / ".cache").mkdir()
    (site / "six.py").write_text("x = 1\n")
    return str(home), str(venv)


def test_snapshot_diff_sees_appended_rc_file_even_with_mtime_restored(tmp_path: Path) -> None:
    home, venv = _home(tmp_path)
    before = persist.snapshot(home, venv)
    rc = Path(home) / ".bashrc"
    st = rc.stat()
    # same size rewrite, then the mtime put back: only the hash can tell
    rc.write_text(rc.read_text().replace("ll", "xx"))
    os.utime(rc, ns=(st.st_atime_ns, st.st_mtime_ns))
    tag = secrets.token_hex(3)
    site = Path(venv) / "lib" / "python3.11" / "site-packages"
    (site / f"{tag}.pth").write_text("import os\n")
    (site / "wheel_own.pth").write_text("./src\n")
    hook = Path(home) / "project" / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\n")
    unit = Path(home) / ".config" / "systemd" / "user" / f"{tag}.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\n")
    (Path(home) / ".cache" / "noise").write_text("not watched\n")
    (site / "six.py").write_text("x = 2\n")  # not a hook: not watched
    changes = persist.diff(before, persist.snapshot(home, venv), {str(site / "wheel_own.pth")})
    got = {c["path"]: (c["change"], c["installed"]) for c in changes}
    assert got == {
        str(rc): ("modified", False),
        str(site / f"{tag}.pth"): ("created", False),
        str(site / "wheel_own.pth"): ("created", True),
        str(hook): ("created", False),
        str(unit): ("created", False),
    }
    assert next(c for c in changes if c["path"] == str(rc))["head"].startswith("# rc\nalias xx")


def test_snapshot_is_bounded_and_skips_caches(tmp_path: Path) -> None:
    home, venv = _home(tmp_path)
    deep = Path(home) / ".cache" / "a" / "site-packages"
    deep.mkdir(parents=True)
    (deep / "x.pth").write_text("import os\n")
    assert not any(".cache" in p for p in persist.snapshot(home, venv))


def _obs(*changes: FsChange) -> Observation:
    phases = tuple(
        PhaseResult(phase=p, status=PhaseStatus.OK, duration=1.0)
        for p in (Phase.INSTALL, Phase.STARTUP, Phase.IMPORT)
    )
    return Observation(events=(), processes=(), phases=phases, home=HOME, venv=VENV, fs_changes=changes)


def _change(phase: Phase, path: str, installed: bool = False, change: str = "created") -> FsChange:
    return FsChange(phase=phase, path=path, change=change, size=12, head="import os\n", installed=installed)


def test_a_persistence_write_only_the_diff_saw_is_ps005() -> None:
    """No event at all (the trace missed the write): the diff alone makes the finding.
    On main the diff was collected only for an evidence bundle and never judged."""
    site = f"{VENV}/lib/python3.11/site-packages"
    obs = _obs(
        _change(Phase.IMPORT, f"{HOME}/.bashrc", change="modified"),
        _change(Phase.IMPORT, f"{HOME}/.config/autostart/x.desktop"),
        _change(Phase.STARTUP, f"{site}/zz.pth"),
        _change(Phase.INSTALL, f"{site}/sitecustomize.py", installed=True),
        _change(Phase.IMPORT, f"{HOME}/project/.git/hooks/pre-commit"),
        _change(Phase.IMPORT, f"{VENV}/bin/activate", change="modified"),
        _change(Phase.IMPORT, f"{HOME}/.ssh/authorized_keys"),
    )
    findings = [f for f in evaluate(obs) if f.rule_id == "PS005"]
    by_phase = {f.phase: {e.path for e in f.evidence} for f in findings}
    assert by_phase == {
        Phase.INSTALL: {f"{site}/sitecustomize.py"},
        Phase.STARTUP: {f"{site}/zz.pth"},
        Phase.IMPORT: {
            f"{HOME}/.bashrc",
            f"{HOME}/.config/autostart/x.desktop",
            f"{HOME}/project/.git/hooks/pre-commit",
            f"{VENV}/bin/activate",
            f"{HOME}/.ssh/authorized_keys",
        },
    }
    for f in findings:
        assert all(e.syscall == "fsdiff" and "from the filesystem diff" in e.detail for e in f.evidence)


def test_benign_diffs_make_no_finding() -> None:
    """A wheel's own .pth (in its RECORD), caches and non-hook files are not persistence."""
    site = f"{VENV}/lib/python3.11/site-packages"
    obs = _obs(
        _change(Phase.INSTALL, f"{site}/distutils-precedence.pth", installed=True),
        _change(Phase.INSTALL, f"{site}/__editable__.proj-1.0.pth", installed=True),
        _change(Phase.IMPORT, f"{HOME}/.cache/matplotlib/fontlist.json"),
        _change(Phase.IMPORT, f"{HOME}/.python_history"),
    )
    assert evaluate(obs) == []


def test_observe_reads_every_pass_diff(tmp_path: Path) -> None:
    rows = [{"path": f"{HOME}/.profile", "change": "modified", "size": 3, "mode": "0o644", "sha256": "ab",
             "head": "x", "installed": False}]  # fmt: skip
    (tmp_path / "persist.import.json").write_text(json.dumps(rows))
    (tmp_path / "persist.time-import.json").write_text(json.dumps(rows))
    (tmp_path / "persist.startup.json").write_text("{not json")
    phases = tuple(
        AgentPhase.model_validate({"phase": p, "status": "ok", "duration": 1.0, "pass": n})
        for p, n in (("startup", "default"), ("import", "default"), ("import", "time"))
    )
    raw = RawRun(
        run_id="r", container="c", hostname="h", phases=phases, trace_dir=str(tmp_path), harness_argv={}
    )
    notes: list[str] = []
    got = fs_changes(raw, notes)
    assert [(c.phase, c.pass_name, c.path) for c in got] == [
        (Phase.IMPORT, "default", f"{HOME}/.profile"),
        (Phase.IMPORT, "time", f"{HOME}/.profile"),
    ]
    assert len(notes) == 1 and "persistence diff unreadable" in notes[0]


def test_the_snapshot_watches_the_start_up_files_added_in_s27(tmp_path: Path) -> None:
    """A write the trace misses (mmap, a harness-labelled process) still shows in the
    diff: a venv's pip.conf and Jupyter config, ~/.venv's activate, ~/bin, zsh's rc."""
    home, venv = _home(tmp_path)
    before = persist.snapshot(home, venv)
    files = [
        Path(venv) / "pip.conf",
        Path(venv) / "etc" / "jupyter" / "jupyter_server_config.py",
        Path(home) / ".venv" / "bin" / "activate",
        Path(home) / "bin" / "git",
        Path(home) / ".config" / "zsh" / ".zshrc",
    ]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("x\n")
    changes = persist.diff(before, persist.snapshot(home, venv), set())
    assert {c["path"] for c in changes} == {str(f) for f in files}
