"""Session 24's hostile read (judge seams). Each test failed on main before its fix."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.agent import passes, rounds
from sandbox.agent.protocol import privilege_drop
from sandbox.judge.classify import classify
from sandbox.judge.honeytokens import make_honeytokens
from sandbox.judge.profiles import load_profile
from sandbox.judge.rules import evaluate
from sandbox.judge.static import (
    CI_COMPUTED_PREFIX,
    TIME_PREFIX,
    WINDOWS_STORE_PREFIX,
    ci_hint,
    pass_hint,
    time_hint,
)
from sandbox.models import (
    Event,
    EventKind,
    Inventory,
    Observation,
    Phase,
    PhaseResult,
    PhaseStatus,
    ProcessInfo,
    Severity,
)
from sandbox.runner.seccomp import profile as seccomp_profile
from sandbox.trace.netcapture import network_capture
from sandbox.trace.strace import parse_strace
from sandbox.trace.strace.tables import _open_kind
from tests.fixtures.builders import Randomised, build_wheel
from tests.unit.test_rules import ev, obs, proc

# ---------------------------------------------------------------- PS001 client configuration


def test_changing_client_configuration_in_a_command_is_never_calmed_as_reading_it() -> None:
    """In the exercise and execute phases every event carries the command or call that
    caused it, and the evidence detail starts with it ("during entry point x --help;
    changed by the candidate …"), so the calm compared a prefixed detail with the bare
    marker and a console script planting a ``credential_process`` in the AWS config
    (or a kubeconfig ``exec`` plugin) ended LOW: clean."""
    rng = random.Random()
    cmd = f"entry point {rng.choice(['awshelper', 'kctl', 'cfgtool'])} --help"
    for phase, path in (
        (Phase.EXERCISE, "/home/dev/.aws/config"),
        (Phase.EXERCISE, "/home/dev/.kube/config"),
        (Phase.EXECUTE, "/home/dev/.aws/credentials"),
    ):
        kw = {"phase": phase, "path": path, "context": cmd}
        read = ev(EventKind.FILE_READ, "openat", seq=1, **kw)
        write = ev(EventKind.FILE_WRITE, "openat", seq=2, flags="O_WRONLY|O_APPEND", **kw)
        found = [f for f in evaluate(obs([read, write])) if f.rule_id == "PS001"]
        assert Severity.MEDIUM in [f.severity for f in found] or Severity.HIGH in [
            f.severity for f in found
        ], (
            phase,
            path,
            [(f.severity, [e.detail for e in f.evidence]) for f in found],
        )
        if path.endswith("config"):  # the carve-out's case in a command: only read, nothing sent
            assert [f.severity for f in evaluate(obs([read])) if f.rule_id == "PS001"] == [Severity.LOW], path


# ---------------------------------------------------------------- PS012 honeytoken opened read-write


def test_a_planted_store_opened_read_write_is_read(tmp_path: Path) -> None:
    """``sqlite3.connect(path)`` opens ``O_RDWR|O_CREAT`` (and ``open(p, "r+")``
    ``O_RDWR``): the trace types such an open as a write, and only opens typed as reads
    counted as honeytoken reads, so a stealer querying a planted browser store in place
    (no copy) read it without PS012. An open that can read is a read; a write-only one
    (``O_WRONLY|O_TRUNC``) is not."""
    rng = random.Random()
    tokens = make_honeytokens(rng)
    planted = sorted(tokens.paths(HOME))
    rw, ro, wo = rng.sample(planted, 3)
    argv = (f"{HOME}/project/.venv/bin/python", "-c", "import x")
    events = [
        _open(rw, rng.choice(["O_RDWR|O_CREAT|O_CLOEXEC", "O_RDWR|O_CLOEXEC", "O_RDONLY|O_CREAT"]), 1),
        _open(ro, "O_RDONLY|O_CLOEXEC", 2),
        _open(wo, "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC", 3),
    ]
    procs = [ProcessInfo(pid=42, ppid=1, phase=Phase.IMPORT, argv=argv, exe=argv[0], start=T0)]
    windows = {Phase.IMPORT: (T0 - 1, T0 + 30)}
    net = network_capture(tmp_path, events, procs, windows, tokens, HOME)
    assert sorted(r.path for r in net.honeytoken_reads) == sorted([rw, ro]), net.honeytoken_reads


T0 = 1_800_000_000.0
HOME = "/home/dev"
VENV = f"{HOME}/project/.venv"


def _open(path: str, flags: str, seq: int) -> Event:
    kind = _open_kind(flags)
    return Event(
        phase=Phase.IMPORT,
        seq=seq,
        pid=42,
        time=T0 + seq,
        syscall="openat",
        kind=kind,
        path=path,
        flags=flags,
    )


# ---------------------------------------------------------------- PS004 through RENAME_EXCHANGE


def _exchange_trace(tmp: str, exchange: bool) -> str:
    """Drop an ELF at *tmp*/a, then exec it: directly, or after swapping an empty
    directory *tmp*/b with it (``renameat2(b, a, RENAME_EXCHANGE)``) and exec'ing b."""
    drop = privilege_drop(1000, 1000)
    argv = [f"{VENV}/bin/python", "-c", "import x"]

    def q(xs: list[str]) -> str:
        return "[" + ", ".join(f'"{x}"' for x in xs) + "]"

    t, cwd, env = 1795628174.0, f"AT_FDCWD<{HOME}/project>", "0x7ffe10593030 /* 7 vars */"
    lines = [
        f'30    {t:.6f} execve("/usr/bin/setpriv", {q(drop + argv)}, {env}) = 0',
        f'30    {t + 0.001:.6f} execve("/usr/bin/choom", {q((drop + argv)[8:])}, {env}) = 0',
        f'30    {t + 0.002:.6f} execve("{argv[0]}", {q(argv)}, {env}) = 0',
        f'30    {t + 0.1:.6f} mkdir("{tmp}", 0700) = 0',
        f'30    {t + 0.101:.6f} openat({cwd}, "{tmp}/a", O_WRONLY|O_CREAT|O_TRUNC, 0700) = 3<{tmp}/a>',
        f'30    {t + 0.102:.6f} write(3<{tmp}/a>, "\\177ELF\\2\\1\\1\\0\\0\\0\\0\\0\\0\\0\\0\\0", 16) = 16',
        f"30    {t + 0.103:.6f} close(3<{tmp}/a>) = 0",
    ]
    if exchange:
        lines += [
            f'30    {t + 0.104:.6f} mkdir("{tmp}/b", 0700) = 0',
            f'30    {t + 0.105:.6f} renameat2({cwd}, "{tmp}/b", {cwd}, "{tmp}/a", RENAME_EXCHANGE) = 0',
        ]
    run = f"{tmp}/b" if exchange else f"{tmp}/a"
    lines += [
        f"30    {t + 0.106:.6f} vfork( <unfinished ...>",
        f'31    {t + 0.107:.6f} execve("{run}", ["{run}"], {env}) = 0',
        f"30    {t + 0.108:.6f} <... vfork resumed>) = 31",
        f"31    {t + 0.109:.6f} +++ exited with 0 +++",
        f"30    {t + 0.110:.6f} +++ exited with 0 +++",
    ]
    return "\n".join(lines) + "\n"


def test_a_payload_swapped_into_place_by_rename_exchange_is_still_dropped_and_run() -> None:
    """``renameat2(b, a, RENAME_EXCHANGE)`` swaps two names: b now holds what a held.
    Both recorders modelled every rename as a one-way move a → b, so the name that
    received the dropped payload (b, the source) was never "written" and exec'ing it
    gave no PS004: clean."""
    tmp = f"/tmp/.{random.Random().randrange(16**6):06x}"
    for exchange in (False, True):
        parsed = parse_strace(_exchange_trace(tmp, exchange), Phase.IMPORT)
        assert parsed.unparsed == 0
        events, procs = classify(
            list(parsed.events), list(parsed.processes), [], VENV, f"{HOME}/project", owned=True
        )
        o = Observation(
            events=tuple(events),
            processes=tuple(procs),
            phases=(PhaseResult(phase=Phase.IMPORT, status=PhaseStatus.OK, duration=1.0),),
            home=HOME,
            venv=VENV,
        )
        found = [f for f in evaluate(o, load_profile("default")) if f.rule_id == "PS004"]
        assert any(f.severity is Severity.HIGH for f in found), (exchange, found)


# ---------------------------------------------------------------- PS005 start-up files


@pytest.mark.parametrize(
    "rel",
    [
        ".bash_aliases",  # sourced by Debian's and Ubuntu's .bashrc
        ".zlogout",
        ".xsession",
        ".vimrc",
        ".gdbinit",
        ".config/nvim/init.lua",
        ".ipython/profile_default/startup/00-init.py",  # IPython runs these at every start
        ".ipython/profile_default/ipython_config.py",
        ".jupyter/jupyter_server_config.py",  # Python the server runs at start
        ".config/pip/pip.conf",  # the index every later pip install trusts
        ".pip/pip.conf",
        ".pydistutils.cfg",
        ".local/bin/git",  # first on a login shell's PATH: shadows a command
    ],
)
def test_a_start_up_file_a_developer_tool_runs_is_persistence(rel: str) -> None:
    """Each of these runs (or points every later install at) what the candidate wrote
    the next time the user starts a shell, an editor, IPython, Jupyter, pip or a
    command: on main a write there was only PS020 (LOW): clean."""
    phase = random.choice([Phase.IMPORT, Phase.STARTUP, Phase.EXERCISE])
    w = ev(EventKind.FILE_WRITE, "openat", phase=phase, path=f"{HOME}/{rel}", flags="O_WRONLY|O_CREAT", seq=1)
    found = [f for f in evaluate(obs([w])) if f.rule_id == "PS005"]
    assert found and found[0].severity is Severity.HIGH, (
        rel,
        [(f.rule_id, f.severity) for f in evaluate(obs([w]))],
    )


def test_ipython_s_own_profile_files_are_not_persistence() -> None:
    """IPython makes its profile folder at first start (a README in startup/, its
    history database): a library that starts it is not planting anything."""
    for rel in (".ipython/profile_default/startup/README", ".ipython/profile_default/history.sqlite"):
        w = ev(EventKind.FILE_WRITE, "openat", path=f"{HOME}/{rel}", flags="O_RDWR|O_CREAT", seq=1)
        assert not [f for f in evaluate(obs([w])) if f.rule_id == "PS005"], rel


# ---------------------------------------------------------------- PS005 another package's code

SITE = f"{VENV}/lib/python3.11/site-packages"


@pytest.mark.parametrize(
    "target",
    [
        f"{SITE}/requests/__init__.py",  # runs at the user's next `import requests`
        f"{SITE}/charset_normalizer/md.cpython-311-x86_64-linux-gnu.so",
        f"{VENV}/bin/pip",  # runs at the next `pip install`
        f"{VENV}/bin/python",
    ],
)
def test_rewriting_another_installed_package_or_a_venv_command_is_persistence(target: str) -> None:
    """The venv was the candidate's to write (no PS020 there), so rewriting another
    package's module, or ``bin/pip``, gave no finding at all, though it runs whenever
    that package or command does and stays after the candidate is uninstalled."""
    own = Randomised().name("pkg")
    inv = Inventory(site_packages=SITE, modules=(own, f"{own}.util"))
    phase = random.choice([Phase.IMPORT, Phase.STARTUP, Phase.EXERCISE, Phase.EXECUTE])
    w = ev(EventKind.FILE_WRITE, "openat", phase=phase, path=target, flags="O_WRONLY|O_TRUNC", seq=1)
    found = [f for f in evaluate(obs([w], inventory=inv)) if f.rule_id == "PS005"]
    assert found and found[0].severity is Severity.HIGH, target
    # the package's own files, bytecode caches and pip's own install stay quiet
    quiet = [
        ev(EventKind.FILE_WRITE, "openat", phase=phase, path=f"{SITE}/{own}/cache.py", seq=2),
        ev(EventKind.FILE_WRITE, "openat", phase=phase, path=f"{SITE}/requests/__pycache__/api.pyc", seq=3),
    ]
    if not target.startswith(f"{VENV}/bin/"):  # setup.py install writes its dependencies' code
        quiet.append(ev(EventKind.FILE_WRITE, "openat", phase=Phase.INSTALL, path=target, seq=4))
    else:  # but never pip or the interpreter (s27: rewritten at install, no finding before)
        at_install = ev(EventKind.FILE_WRITE, "openat", phase=Phase.INSTALL, path=target, seq=4)
        assert [f for f in evaluate(obs([at_install], inventory=inv)) if f.rule_id == "PS005"], target
        tool = ev(EventKind.FILE_WRITE, "openat", phase=Phase.INSTALL, path=f"{VENV}/bin/{own}-cli", seq=5)
        quiet.append(tool)
    assert not [f for f in evaluate(obs(quiet, inventory=inv)) if f.rule_id == "PS005"]


def test_a_line_added_to_an_installed_distribution_s_record_is_tampering() -> None:
    """Hostile read (s27): setup.py wrote a .pth at install and added it to pip's
    RECORD; the snapshot diff took it for a wheel's own file (PS009 info), and it
    outlives the candidate's uninstall. Only pip writes a RECORD, in any phase."""
    own = Randomised().name("pkg")
    inv = Inventory(site_packages=SITE, modules=(own,))
    record = f"{SITE}/pip-23.0.1.dist-info/RECORD"
    for phase in (Phase.INSTALL, Phase.IMPORT):
        w = ev(EventKind.FILE_WRITE, "openat", phase=phase, path=record, flags="O_WRONLY|O_APPEND", seq=1)
        found = [f for f in evaluate(obs([w], inventory=inv)) if f.rule_id == "PS005"]
        assert found and found[0].severity is Severity.HIGH, phase
    # a wheel being built (bdist_wheel's own dist-info, in a build folder) is no RECORD of the venv
    build = ev(
        EventKind.FILE_WRITE,
        "openat",
        phase=Phase.INSTALL,
        path=f"/tmp/pip-wheel-x/{own}-1.0.dist-info/RECORD",
    )
    assert not [f for f in evaluate(obs([build], inventory=inv)) if f.rule_id == "PS005"]


# ---------------------------------------------------------------- clone(CLONE_UNTRACED)

_CLONE_PROBE = r"""
import ctypes, os, sys
sys.path.insert(0, sys.argv[1])
from sandbox.agent import guard
guard.install_io_uring_deny()
libc = ctypes.CDLL(None, use_errno=True)
nr = {"x86_64": 56, "aarch64": 220}[os.uname().machine]
# CLONE_UNTRACED | SIGCHLD, no new stack: fork-like when allowed
r = libc.syscall(nr, 0x00800000 | 17, 0, 0, 0, 0)
if r == 0:
    os._exit(0)
if r > 0:
    os.waitpid(r, 0)
print(r, ctypes.get_errno())
"""


def test_an_untraced_clone_is_refused_by_the_agent_s_filter() -> None:
    """``clone(CLONE_UNTRACED)`` makes a child strace -f never attaches to: under runsc
    (no Docker seccomp profile, no ``--seccomp-bpf``) it ran whatever it liked with no
    trace line. The filter every step inherits refuses the flag (glibc never sets it);
    a plain fork still works."""
    root = str(Path(__file__).resolve().parents[2])
    out = subprocess.run(
        [sys.executable, "-c", _CLONE_PROBE, root], capture_output=True, text=True, timeout=30
    )
    assert out.stdout.split() == ["-1", "1"], (out.stdout, out.stderr)  # EPERM
    plain = _CLONE_PROBE.replace("0x00800000 | 17", "17")
    out = subprocess.run([sys.executable, "-c", plain, root], capture_output=True, text=True, timeout=30)
    assert int(out.stdout.split()[0]) > 0, (out.stdout, out.stderr)


def test_the_container_profile_refuses_an_untraced_clone() -> None:
    (rule,) = [s for s in seccomp_profile(traced=False)["syscalls"] if s["names"] == ["clone"]]
    mask = rule["args"][0]["value"]
    assert mask & 0x00800000 and rule["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
    # and CLONE_PARENT (s27): the eBPF decoder took such a child's cwd and fds from its
    # grandparent (its records came first, naming that parent)
    assert mask & 0x00008000 and not mask & 0x00004000  # CLONE_VFORK stays (posix_spawn)


# ---------------------------------------------------------------- harness pip and the cwd


def test_a_module_left_in_the_project_folder_does_not_run_inside_a_harness_pip(tmp_path: Path) -> None:
    """The harness's pips run in the project folder, and ``-m`` puts the working
    directory first on sys.path: pip imports ``typing`` before it drops it, so a
    ``typing.py`` the candidate wrote there ran inside a process labelled harness,
    its credential reads unjudged. Harness pips run with ``-P``. (Runs this test
    suite's own interpreter on a marker-writing module: no candidate code.)"""
    marker = tmp_path / "ran"
    (tmp_path / "typing.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "import sys\ndel sys.modules['typing']\nsys.path.pop(0)\nimport typing  # the real one\n"
    )
    plan = {"venv": str(Path(sys.executable).parent.parent)}
    py, *safe = rounds.harness_python(plan)
    assert safe == ["-P"] and rounds.pip_install_argv(plan, tmp_path, ["x"])[:4] == [py, "-P", "-m", "pip"]
    subprocess.run([py, "-m", "pip", "--version"], cwd=tmp_path, capture_output=True, timeout=60)
    assert marker.exists()  # what the old argv did
    marker.unlink()
    subprocess.run([py, *safe, "-m", "pip", "--version"], cwd=tmp_path, capture_output=True, timeout=60)
    assert not marker.exists()


# ---------------------------------------------------------------- a credential read through a hard link


def test_a_credential_hard_linked_under_a_client_configuration_name_is_no_client_configuration() -> None:
    """A hard link to ``~/.ssh/id_rsa`` named ``~/.config/gcloud/<x>``: the link's
    evidence reads "<link> -> <target>", and the client-configuration pattern matched
    the link's half, so the key's theft was calmed like gcloud reading its own
    configuration (LOW: clean). Every half must be client configuration."""
    name = f"/home/dev/.config/gcloud/{Randomised().name('l')}.db"
    for phase in (Phase.EXERCISE, Phase.IMPORT):
        link = ev(EventKind.FILE_LINK, "linkat", phase=phase, path=name, path2="/home/dev/.ssh/id_rsa", seq=1)
        read = ev(EventKind.FILE_READ, "openat", phase=phase, path=name, seq=2)
        sev = [f.severity for f in evaluate(obs([link, read])) if f.rule_id == "PS001"]
        assert sev and Severity.LOW not in sev, (phase, sev)


def test_a_planted_file_read_through_a_hard_link_is_a_honeytoken_read(tmp_path: Path) -> None:
    """strace names an open by the name it was opened with: a hard link's. A planted
    key or chat token read through one was no honeytoken read (no PS012)."""
    rng = random.Random()
    tokens = make_honeytokens(rng)
    planted = rng.choice(sorted(tokens.paths(HOME)))
    alias = f"{HOME}/.cache/{Randomised().name('x')}"
    argv = (f"{HOME}/project/.venv/bin/python", "-c", "import x")
    link = Event(
        phase=Phase.IMPORT,
        seq=1,
        pid=42,
        time=T0 + 1,
        syscall="linkat",
        kind=EventKind.FILE_LINK,
        path=alias,
        path2=planted,
    )
    events = [link, _open(alias, "O_RDONLY|O_CLOEXEC", 2)]
    procs = [ProcessInfo(pid=42, ppid=1, phase=Phase.IMPORT, argv=argv, exe=argv[0], start=T0)]
    net = network_capture(tmp_path, events, procs, {Phase.IMPORT: (T0 - 1, T0 + 30)}, tokens, HOME)
    assert [r.path for r in net.honeytoken_reads] == [planted], net.honeytoken_reads


def test_a_round_s_pip_installing_its_wheels_is_no_tampering_but_a_pip_the_candidate_starts_is() -> None:
    """A round's pip step (its root process runs the venv's pip install from the stage)
    writes the staged wheels into site-packages; when it read a .pyc the candidate's
    imports cached it is relabelled candidate (judge/hooks.py), and its writes must
    not read as tampering. A pip the candidate itself starts has the candidate's
    process above it."""
    own = Randomised().name("pkg")
    inv = Inventory(site_packages=SITE, modules=(own,))
    pip = tuple(rounds.pip_install_argv({"venv": VENV}, Path("/stage/artifacts"), ["x"]))
    target = f"{SITE}/sortedcontainers/__init__.py"
    step = proc(50, pip, Phase.IMPORT)
    child = proc(51, pip, Phase.IMPORT, ppid=50)
    w = ev(EventKind.FILE_WRITE, "openat", pid=51, path=target, flags="O_WRONLY|O_CREAT|O_TRUNC", seq=1)
    assert not [f for f in evaluate(obs([w], [step, child], inventory=inv)) if f.rule_id == "PS005"]
    importer = proc(40, (f"{VENV}/bin/python", "-c", f"import {own}"), Phase.IMPORT)
    spawned = proc(50, pip, Phase.IMPORT, ppid=40)
    w = ev(EventKind.FILE_WRITE, "openat", pid=50, path=target, flags="O_WRONLY|O_CREAT|O_TRUNC", seq=1)
    assert [f for f in evaluate(obs([w], [importer, spawned], inventory=inv)) if f.rule_id == "PS005"]


# ---------------------------------------------------------------- the Windows pass's static hint

_STEALER = """
def _sync():
    base = os.path.join(os.environ["LOCALAPPDATA"], "Google", "Chrome", "User Data")
    key = open(os.path.join(base, "Local State")).read()
    rows = open(os.path.join(base, "Default", "Login Data"), "rb").read()
    send(key, rows)
"""


@pytest.mark.parametrize(
    "gate",
    [
        'os.name == "nt"',
        'platform.system() == "Windows"',
        "getattr(__import__('o'+'s'),'na'+'me') == 'n'+'t'",
        "sys.platform.startswith('win')",
    ],
)
def test_a_windows_gated_browser_stealer_in_a_module_calls_the_windows_pass(
    tmp_path: Path, gate: str
) -> None:
    """On Linux the gate is false, nothing fails, and no kept rule matched a plain
    stealer posting to its own host: the Windows pass never ran and the run was clean.
    A file holding a Windows gate and a browser, messenger or wallet store now calls it
    (a pass, never a finding)."""
    name = Randomised().name("w")
    src = f"import os, platform, sys\n{_STEALER}\nif {gate}:\n    _sync()\n"
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    assert pass_hint(whl), gate
    # a Windows-only path lookup of an ordinary library's own folder calls nothing
    plain = "import os\nif os.name == 'nt':\n    CONF = os.path.join(os.environ['APPDATA'], 'mytool')\n"
    (tmp_path / "b").mkdir()
    whl = build_wheel(tmp_path / "b", name, "1.0", {f"{name}/__init__.py": plain})
    assert not pass_hint(whl)


# ---------------------------------------------------------------- the time pass's static hint


@pytest.mark.parametrize(
    "gate",
    [
        "import time\nif time.time() > 1790000000:\n    go()\n",
        "from datetime import datetime\nif datetime.now() > datetime(2026, 3, 1):\n    go()\n",
        "import datetime\nif datetime.date.today() >= datetime.date(2026, 3, 1): go()\n",
        "import time\nif 1790000000 < time.time(): go()\n",
    ],
)
def test_a_date_gate_calls_the_time_pass(tmp_path: Path, gate: str) -> None:
    """The time pass ran only when the default pass timed out, left a process behind
    or probed for a sandbox: an import that checks the date and returns at once left a
    "not before" payload dormant. A clock compared with a literal date now calls it."""
    name = Randomised().name("t")
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": gate})
    hint = time_hint(whl)
    assert hint.startswith(TIME_PREFIX) and hint.startswith(passes.STATIC_PREFIXES), hint
    static = tmp_path / "static.json"
    static.write_text(json.dumps({"hint": "", "ci": "", "time": hint}))
    plan = {
        "passes": {"time": {"when": "auto", "trigger": "time", "static_hint": True}},
        "recorder": "strace",
    }
    assert passes.should_run(plan, "time", tmp_path, static) == hint
    # an ordinary date constant or a timestamp calls nothing
    plain = "import time, datetime\nEPOCH = datetime.datetime(2000, 1, 1)\nSTART = time.time()\n"
    (tmp_path / "b").mkdir()
    assert time_hint(build_wheel(tmp_path / "b", name, "1.0", {f"{name}/__init__.py": plain})) == ""


def test_the_agent_knows_the_hosts_new_hint_prefixes() -> None:
    assert WINDOWS_STORE_PREFIX in passes.STATIC_PREFIXES and TIME_PREFIX in passes.STATIC_PREFIXES


# ---------------------------------------------------------------- the ci hint through aliases


@pytest.mark.parametrize(
    "lookup",
    [
        "import os as o\nif o.environ.get(n): go()\n",
        "import os as o\nif o.environ[n]: go()\n",
        "from os import environ as E\nif E.get(n): go()\n",
        "import os\ng = os.getenv\nif g(n): go()\n",
        "from os import getenv as g\nif g(n): go()\n",
        "import os\ne = {**os.environ}\nif e.get(n): go()\n",
    ],
)
def test_a_computed_environment_lookup_through_an_alias_calls_the_ci_pass(
    tmp_path: Path, lookup: str
) -> None:
    """A CI variable's name decoded at run time (``bytes([71, 73, …]).decode()``) and
    looked up through an alias of os, of its environ or of getenv, or a copy made with
    ``{**os.environ}``, called no ci pass: the payload stayed dormant."""
    name = Randomised().name("c")
    src = "n = bytes([71, 73, 84, 72, 85, 66, 95, 65, 67, 84, 73, 79, 78, 83]).decode()\n" + lookup
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    assert ci_hint(whl).startswith(CI_COMPUTED_PREFIX), lookup


def test_a_lossy_phase_s_record_and_bin_writes_are_no_proof_of_tampering() -> None:
    """CI (s27): an eBPF run whose tiny test ring lost records at install lost a harness
    pip's fork or exec, so pip read as the candidate and its own RECORD write was
    PS005: malicious, and auto kept that answer instead of vetting again under strace.
    In a phase whose trace is incomplete these writes prove nothing (the run is never
    clean: incomplete)."""
    own = Randomised().name("pkg")
    inv = Inventory(site_packages=SITE, modules=(own,))
    w = ev(EventKind.FILE_WRITE, "openat", phase=Phase.INSTALL, path=f"{SITE}/{own}-1.0.dist-info/RECORD")
    pip = ev(EventKind.FILE_WRITE, "openat", phase=Phase.INSTALL, path=f"{VENV}/bin/pip", seq=2)
    lossy = obs([w, pip], inventory=inv).model_copy(
        update={
            "phases": (
                PhaseResult(phase=Phase.INSTALL, status=PhaseStatus.OK, duration=1.0, trace_complete=False),
            )
        }
    )
    assert not [f for f in evaluate(lossy) if f.rule_id == "PS005"]
    whole = lossy.model_copy(
        update={"phases": (PhaseResult(phase=Phase.INSTALL, status=PhaseStatus.OK, duration=1.0),)}
    )
    assert [f for f in evaluate(whole) if f.rule_id == "PS005"]
