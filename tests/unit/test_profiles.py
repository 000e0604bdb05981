"""Profiles: shipped ones load, extends merges, bad ones name key and file, allowlists match."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.errors import ExitCode, ProfileError
from sandbox.judge.profiles import Allowlist, glob_regex, load_profile, shipped_profiles
from sandbox.judge.rules import evaluate
from sandbox.models import (
    Address,
    Event,
    EventKind,
    Observation,
    Phase,
    PhaseResult,
    PhaseStatus,
    ProcessInfo,
    Severity,
)

HOME = "/home/dev"
SITE = "/home/dev/project/.venv/lib/python3.11/site-packages"


def test_shipped_profiles_load() -> None:
    assert {"default", "strict", "build"} <= set(shipped_profiles())
    for name in shipped_profiles():
        p = load_profile(name)
        assert p.name == name and len(p.digest()) == 16


def test_strict_extends_default_and_overrides() -> None:
    d, s = load_profile("default"), load_profile("strict")
    assert s.limits.window == 8.0 and s.limits.install_timeout == d.limits.install_timeout
    assert s.rules.severity["PS006"] is Severity.HIGH
    assert s.allow.pth == ()  # explicit empty list clears the parent's exceptions
    assert s.allow.files == d.allow.files
    assert s.digest() != d.digest()


def test_build_profile_allows_compilers_only_in_install() -> None:
    b = load_profile("build")
    allow = Allowlist(b, HOME, SITE)
    gcc = Event(
        phase=Phase.INSTALL,
        seq=1,
        pid=3,
        time=0,
        syscall="execve",
        kind=EventKind.EXEC,
        path="/usr/bin/x86_64-linux-gnu-gcc-12",
        argv=("gcc", "-c", "x.c"),
    )
    assert allow.exec_allowed(gcc, None)
    assert not allow.exec_allowed(gcc.model_copy(update={"phase": Phase.IMPORT}), None)
    sh = Event(
        phase=Phase.INSTALL,
        seq=2,
        pid=4,
        time=0,
        syscall="execve",
        kind=EventKind.EXEC,
        path="/bin/sh",
        argv=("sh", "-c", "cc x.c"),
    )
    assert allow.exec_allowed(sh, "/usr/bin/make")
    assert not allow.exec_allowed(sh, "/home/dev/project/.venv/bin/python")
    curl = gcc.model_copy(update={"path": "/usr/bin/curl", "argv": ("curl", "x")})
    assert not allow.exec_allowed(curl, "/usr/bin/make")


@pytest.mark.parametrize("name", ["gcc", "make", "cc1", "x86_64-linux-gnu-gcc-12", "ld"])
def test_build_profile_allows_only_the_system_toolchain(name: str) -> None:
    """M2: a dropped binary named like a compiler, and what it runs, are not allowed."""
    allow = Allowlist(load_profile("build"), HOME, SITE)
    exe = Event(
        phase=Phase.INSTALL,
        seq=1,
        pid=3,
        time=0,
        syscall="execve",
        kind=EventKind.EXEC,
        path=f"/tmp/pip-install-x/{name}",
        argv=(name, "x"),
    )
    assert not allow.exec_allowed(exe, None)
    assert not allow.exec_allowed(exe.model_copy(update={"path": f"{HOME}/.local/bin/{name}"}), None)
    sh = exe.model_copy(update={"path": "/bin/sh", "argv": ("sh", "-c", "anything")})
    assert not allow.exec_allowed(sh, f"/tmp/pip-install-x/{name}")
    assert not allow.exec_allowed(sh, f"{HOME}/project/.venv/bin/{name}")
    assert allow.exec_allowed(sh, "/usr/bin/make")


@pytest.mark.parametrize(
    "body,key",
    [
        ('name = "x"\n[limits]\nwindow = -1\n', "limits.window"),
        ('name = "x"\n[limits]\nwindwo = 3\n', "limits.windwo"),
        ('name = "x"\n[[allow.pth]]\nsha256 = "nothex"\n', "allow.pth.0.sha256"),
        ('name = "x"\n[phases]\nrun = ["install", "explode"]\n', "phases.run.1"),
        ('name = "x"\nextends = "nosuch"\n', "nosuch"),
        ("name = \n", "not valid TOML"),
    ],
)
def test_bad_profiles_name_key_and_file(tmp_path: Path, body: str, key: str) -> None:
    f = tmp_path / "mine.toml"
    f.write_text(body)
    with pytest.raises(ProfileError) as err:
        load_profile(str(f))
    assert key in str(err.value)
    assert "nosuch" in key or str(f) in str(err.value)
    assert err.value.exit_code is ExitCode.USAGE


def test_user_profile_extends_shipped(tmp_path: Path) -> None:
    f = tmp_path / "team.toml"
    f.write_text('name = "team"\nextends = "default"\n[[allow.network]]\nhost = "10.1.*"\nport = "5432"\n')
    p = load_profile(str(f))
    assert p.allow.network[0].host == "10.1.*" and p.allow.files == load_profile("default").allow.files


def test_glob_semantics() -> None:
    rx = glob_regex("~/.cache/**", HOME, SITE)
    assert rx.match("/home/dev/.cache/matplotlib/fontlist.json")
    assert not rx.match("/home/dev/.ssh/id_rsa")
    assert glob_regex("**/{gcc,cc}", HOME, SITE).match("/usr/bin/cc")
    assert not glob_regex("/tmp/*", HOME, SITE).match("/tmp/a/b")
    assert glob_regex("{site}/**", HOME, SITE).match(SITE + "/x/y.py")


def test_allowlisted_network_exception_silences_only_that_endpoint(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text('name = "p"\nextends = "default"\n[[allow.network]]\nhost = "198.51.100.7"\nport = "443"\n')
    prof = load_profile(str(f))
    phases = tuple(PhaseResult(phase=p, status=PhaseStatus.OK, duration=1) for p in Phase)
    procs = (ProcessInfo(pid=1, ppid=None, phase=Phase.IMPORT, argv=("python",), exe="python", start=0),)

    def connect(host: str, port: int) -> Event:
        return Event(
            phase=Phase.IMPORT,
            seq=1,
            pid=1,
            time=0,
            syscall="connect",
            kind=EventKind.CONNECT,
            address=Address(family="inet", host=host, port=port),
        )

    allowed = Observation(events=(connect("198.51.100.7", 443),), processes=procs, phases=phases)
    assert [f.rule_id for f in evaluate(allowed, prof)] == []
    other = Observation(events=(connect("198.51.100.7", 80),), processes=procs, phases=phases)
    assert [f.rule_id for f in evaluate(other, prof)] == ["PS002"]


def test_disabled_rule_and_severity_override(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text('name = "p"\n[rules]\ndisabled = ["PS002"]\n[rules.severity]\nPS001 = "low"\n')
    prof = load_profile(str(f))
    phases = tuple(PhaseResult(phase=p, status=PhaseStatus.OK, duration=1) for p in Phase)
    procs = (ProcessInfo(pid=1, ppid=None, phase=Phase.IMPORT, argv=("python",), exe="python", start=0),)
    evs = (
        Event(
            phase=Phase.IMPORT,
            seq=1,
            pid=1,
            time=0,
            syscall="openat",
            kind=EventKind.FILE_READ,
            path="/home/dev/.aws/credentials",
        ),
        Event(
            phase=Phase.IMPORT,
            seq=2,
            pid=1,
            time=0,
            syscall="connect",
            kind=EventKind.CONNECT,
            address=Address(family="inet", host="192.0.2.1", port=80),
        ),
    )
    fs = evaluate(Observation(events=evs, processes=procs, phases=phases), prof)
    assert [(x.rule_id, x.severity) for x in fs] == [("PS001", Severity.LOW)]
