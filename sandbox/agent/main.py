"""Agent entry point: ``agent {setup,phase NAME,collect,probe}`` (runs as root in the sandbox).

The command dispatcher only: setup's helpers live in :mod:`home`, one traced step in
:mod:`steps`, the phases in :mod:`phases`, what they share in :mod:`common`."""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from . import checkout, detach, fsdiff, guard, init, passes, persist, reset, sinkhole, tells
from .common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, OUT, candidate_env, emit, load_plan, site_packages
from .exercise import entry_point_scripts
from .home import (
    HOME_FILES,
    _chown_tree,
    _git_checkout,
    _write,
    copy_venv,
    look_like_a_workstation,
    patch_venv_bundles,
    planted_inodes,
    start_venv_copy,
    trust_ca,
)
from .modlist import modules_from_record
from .phases import PHASES, inventory
from .steps import Capture, ImportRun, StepRun, _first_child, privilege_drop

# What other code and the tests took from this module before it was split by concern.
__all__ = [
    "PHASES",
    "Capture",
    "ImportRun",
    "StepRun",
    "_first_child",
    "copy_venv",
    "emit",
    "entry_point_scripts",
    "inventory",
    "load_plan",
    "look_like_a_workstation",
    "main",
    "modules_from_record",
]


def cmd_setup(plan: dict[str, Any]) -> int:
    """Prepare the trace directory, a lived-in HOME and the project's venv."""
    OUT.mkdir(parents=True, exist_ok=True)
    OUT.chmod(0o700)
    # The sinkhole first: its rules install in the background while HOME and the
    # venv are prepared below, and nothing of the candidate runs before setup ends.
    net = sinkhole.Setup(plan, OUT) if plan.get("sinkhole", {}).get("enabled") else None
    home = Path(plan["home"])
    project = Path(plan["project"])
    ident = plan.get("identity", {})
    fmt = {
        "name": ident.get("full_name", "Alex Morgan"),
        "user": plan["user"],
        "domain": ident.get("domain", "example.com"),
    }
    for name, text in HOME_FILES.items():
        _write(home / name, text.format(**fmt) if "{" in text else text)
    for extra in (".cache", ".local/bin", ".config", "Downloads", "Documents"):
        (home / extra).mkdir(parents=True, exist_ok=True)
    project.mkdir(parents=True, exist_ok=True)
    venv_copy = start_venv_copy(Path(plan["venv"]))  # the longest part of setup: in the background
    _write(project / "README.md", "# service\n\nInternal API service.\n")
    _write(project / "requirements.txt", "flask==3.0.3\nrequests==2.32.3\n")
    _git_checkout(project, fmt)
    # Honeytokens (generated per run on the host): credential files relative to
    # HOME (the project's .env included), mode 0600 like the real ones.
    for rel, content in plan.get("home_files", {}).items():
        target = home / rel
        _write(target, content, 0o600)
    for rel, b64 in plan.get("home_blobs", {}).items():  # binary honeytokens (SQLite, leveldb)
        target = home / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(b64))
        target.chmod(0o600)
    passes.install_stubs()
    passes.make_pass_dirs(plan)  # %TEMP% and co exist on a real Windows box
    for private in (".ssh", ".aws", ".kube", ".docker", ".gnupg"):
        if (home / private).is_dir():
            (home / private).chmod(0o700)
    copy_venv(Path(plan["venv"]), venv_copy)
    if net is not None and net.tls and "pid" in net.info:
        try:
            trust_ca(net, Path(plan["venv"]))
        except Exception as exc:  # TLS capture is a bonus: never the reason setup fails
            net.info.setdefault("tls", {}).setdefault("problems", []).append(f"{type(exc).__name__}: {exc}")
    home.chmod(0o750)  # before chown: root has no CAP_FOWNER here
    _chown_tree(home, plan["uid"], plan["gid"])
    look_like_a_workstation(plan)
    if plan.get("evidence"):
        fsdiff.save(OUT, fsdiff.snapshot())
    persist.save(OUT, persist.snapshot(plan["home"], plan["venv"]))
    emit("setup", ok=True, venv=plan["venv"], sinkhole=net.wait() if net else {})
    return EXIT_OK


def cmd_run(names: list[str]) -> int:
    """Run several phases in one exec (saves a round trip per phase); stops after a
    failed install. The plan is re-read: the host writes the candidate's part late.
    ``--pass NAME`` first: an extra pass (see :mod:`passes`) of startup and import.
    ``--collect`` first: after ``done``, the output directory as with ``collect``."""
    pass_name = "default"
    collect = names[:1] == ["--collect"]
    if collect:
        names = names[1:]
    if names[:1] == ["--pass"] and len(names) >= 2:
        pass_name, names = names[1], names[2:]
        if pass_name != "default" and not passes.pass_conf(load_plan(), pass_name):
            emit("error", msg=f"unknown pass {pass_name}")
            return EXIT_USAGE
        if set(names) - set(PASS_PHASES):
            emit("error", msg="an extra pass re-runs startup, import, exercise and execute only")
            return EXIT_USAGE
    installed = True
    for name in names:
        plan = load_plan()
        code = cmd_phase(plan, name, pass_name)
        if code != EXIT_OK:
            return code
        if name == "install":
            res = json.loads((OUT / "install.result.json").read_text())
            if res.get("status") == "ok" and pass_name == "default":
                reset.save(plan)  # what the fresh passes (windows, ci, secrets, control) start from
            if res.get("status") != "ok":
                installed = False
                if "import" in names:
                    code = import_checkout(pass_name)
                    if code != EXIT_OK:
                        return code
                break
    if pass_name == "default" and "import" in names:
        code = run_extra_passes(installed)
        if code != EXIT_OK:
            return code
    emit("done")
    if collect:
        # The traces follow on the same stream (one exec and one agent start fewer
        # per run): a "collect" line, then the tar until EOF (see cmd_collect).
        emit("collect")
        return cmd_collect()
    return EXIT_OK


# what an extra pass re-runs (exercise only where the profile runs it; execute only
# in a pass that asks for it, where the profile runs it: the public API's calls under
# another clock or OS, where a payload kept in a function can wake)
PASS_PHASES = ("startup", "import", "exercise", "execute")


def run_extra_passes(installed: bool) -> int:
    """The extra passes the plan asks for, after the default phases: each re-runs
    startup and import when its trigger fired (or always). When the default install
    failed, only the Windows pass runs, and it re-runs install first (a setup.py that
    imports ``ctypes.windll`` or reads ``%USERPROFILE%`` stops on Linux), then
    startup and import if that install worked."""
    plan = load_plan()
    # time first (the same machine later: it must find the default pass's files), then
    # the fresh passes (each starts from the files install left, see _fresh_state)
    order = sorted(plan.get("passes") or {}, key=lambda n: bool(passes.pass_conf(plan, n).get("fresh")))
    for extra in order:
        if not installed and passes.pass_conf(plan, extra).get("trigger") != "windows":
            continue
        why = passes.should_run(plan, extra, OUT)
        if not why:
            continue
        first = _fresh_state(plan, extra) if installed else {}
        # the static hint points at code that may be gated at build time too: an sdist
        # is built again under the pass (a wheel's install runs nothing of it)
        # (a setup.py gated on CI runs only in the job's install step)
        again = installed and why.startswith(passes.STATIC_PREFIXES) and _candidate_is_sdist(plan)
        if not installed or again:
            code = cmd_phase({**load_plan(), **first, "_why": why, "_reinstall": again}, "install", extra)
            first = {}
            if code != EXIT_OK:
                return code
            res = json.loads((OUT / f"{extra}.install.result.json").read_text())
            if res.get("status") != "ok" and not again:
                code = import_checkout(extra, why)
                if code != EXIT_OK:
                    return code
                continue
        only = passes.compared_phases(plan, extra, OUT)
        for name in PASS_PHASES:
            if name in ("exercise", "execute") and name not in (plan.get("phases") or {}):
                continue
            if name == "execute" and not passes.pass_conf(plan, extra).get("execute"):
                continue
            if only is not None and name not in only:
                continue
            code = cmd_phase({**load_plan(), **first, "_why": why}, name, extra)
            first = {}
            if code != EXIT_OK:
                return code
    return EXIT_OK


def _fresh_state(plan: dict[str, Any], name: str) -> dict[str, Any]:
    """Before a pass that stands for another machine or first session (``fresh``), the
    candidate's files as install left them (:mod:`reset`); what the pass's first phase
    is told: the restoring process (the agent's, not the candidate's) and any problem."""
    if not passes.pass_conf(plan, name).get("fresh"):
        return {}
    pid, problem = reset.restore(plan)
    # the persistence and evidence diffs of the pass start from the restored state
    with contextlib.suppress(Exception):
        persist.save(OUT, persist.snapshot(plan["home"], plan["venv"]))
    if plan.get("evidence"):
        with contextlib.suppress(Exception):
            fsdiff.save(OUT, fsdiff.snapshot())
    first: dict[str, Any] = {"_agent_pids": [pid] if pid is not None else []}
    if problem:
        first["_reset_problem"] = f"the candidate's files were not reset to after install: {problem}"
    return first


def import_checkout(pass_name: str, why: str = "") -> int:
    """After a failed install of an sdist: its import phase from the unpacked sources
    (see :mod:`checkout`), unpacked once and shared by every pass."""
    plan = load_plan()
    pids: list[int] = []
    inv = checkout.load() if pass_name != "default" else checkout.prepare(plan, pids)
    if inv is None:
        return EXIT_OK
    emit("status", phase="import", msg=f"install failed: importing the unpacked sdist in {inv['checkout']}")
    extra = {"_why": why} if why else {}
    return cmd_phase(
        {**plan, **extra, "_checkout": inv["checkout"], "_agent_pids": pids}, "import", pass_name
    )


def _candidate_is_sdist(plan: dict[str, Any]) -> bool:
    staged = [a for a in plan.get("install_args") or [] if a.startswith("/stage/artifacts/")]
    return any(not a.endswith(".whl") for a in staged)


def cmd_phase(plan: dict[str, Any], name: str, pass_name: str = "default") -> int:
    if name not in PHASES:
        emit("error", msg=f"unknown phase {name}")
        return EXIT_USAGE
    conf = plan["phases"].get(name) or plan["phases"].get("import") or {"timeout": 60}
    extra = pass_name != "default"
    if extra and name == "install":
        # a re-install in an extra pass spends what the default startup and import
        # (which never ran) would have: within the host's budget for the exec
        spare = float((plan["phases"].get("import") or {"timeout": 60})["timeout"])
        conf = {**conf, "timeout": min(float(conf["timeout"]), spare)}
    if extra and name == "import":
        inv = OUT / (checkout.INVENTORY if plan.get("_checkout") else f"{pass_name}.inventory.json")
        inv = inv if inv.exists() else OUT / "inventory.json"
        with contextlib.suppress(OSError, ValueError):
            passes.write_own(plan, pass_name, list(json.loads(inv.read_text()).get("modules") or []))
    guard.become_subreaper()
    # NET_ADMIN was for setup's sinkhole rules only: nothing that runs in a phase keeps it.
    guard.drop_capabilities({guard.CAP_NET_ADMIN})
    tag = f"{pass_name}:{name}" if extra else name
    with contextlib.suppress(OSError):
        sinkhole.PHASE_FILE.write_text(tag)  # the sinkhole tags what it captures with it
    if name != "install":
        patch_venv_bundles(plan)
    shift = float(passes.pass_conf(plan, pass_name).get("clock_shift") or 0)
    passes.set_clock(shift)  # the sinkhole's NTP and HTTP Date answers agree with the pass's clock
    seeded = bool(passes.pass_conf(plan, pass_name).get("seed")) and passes.faketime_library() is not None
    if seeded:
        # each phase of a seeded pass starts from the same clock
        passes.reset_clock_state(passes.clock_files(passes.pass_conf(plan, pass_name)))
    planted = planted_inodes(plan)  # before any of the phase's candidate code runs
    started = time.time()
    emit("phase", phase=name, **({"pass": pass_name} if extra else {}))
    try:
        result = PHASES[name](
            {**plan, "_pass": pass_name}, float(conf["timeout"]), float(plan.get("window", 5.0))
        )
    except Exception as exc:
        emit("error", phase=name, msg=f"{type(exc).__name__}: {exc}")
        return EXIT_FAIL
    finally:
        passes.set_clock(0)
    if extra:
        result["pass"] = pass_name
        result["pass_note"] = str(plan.get("_why") or "")
        result["seeded"] = seeded
    if plan.get("_agent_pids"):  # the agent's candidate-uid processes before it (checkout, reset)
        result["agent_pids"] = sorted({*(result.get("agent_pids") or []), *plan["_agent_pids"]})
    if plan.get("_reset_problem"):
        result.setdefault("problems", []).append(plan["_reset_problem"])
    result["started"] = started
    result["inodes"] = planted
    result["duration"] = round(time.time() - started, 3)
    try:
        site = site_packages(Path(plan["venv"]))
    except RuntimeError:
        site = None
    tag_file = f"{pass_name}-{name}" if extra else name
    try:  # every run: the host judges persistence files that appeared (PS005, from the diff)
        installed = fsdiff.recorded_files(site) if name == "install" else set()
        persist.after_phase(OUT, tag_file, plan["home"], plan["venv"], installed)
    except Exception as exc:
        result.setdefault("problems", []).append(f"persistence diff: {type(exc).__name__}: {exc}")
    if plan.get("evidence"):
        fsdiff.save(
            OUT, fsdiff.diff_and_keep(OUT, f"{pass_name}-{name}" if extra else name, fsdiff.load(OUT), site)
        )
    (OUT / f"{pass_name + '.' if extra else ''}{name}.result.json").write_text(json.dumps(result))
    emit("result", **result)
    return EXIT_OK


def cmd_collect() -> int:
    """Write a tar of the output directory to stdout (the host reads it from the exec stream).

    The sinkhole daemon is stopped first so that it writes the flows still open."""
    sinkhole.stop(out=OUT)
    sys.stdout.flush()
    sink: Any = detach.Chunked(sys.stdout.buffer) if detach.active else sys.stdout.buffer
    with tarfile.open(fileobj=sink, mode="w|") as tar:
        for path in sorted(OUT.iterdir()):
            tar.add(path, arcname=path.name)
    if detach.active:
        sink.close()  # the end of the chunks (the stream itself goes on)
    sys.stdout.buffer.flush()
    return EXIT_OK


def cmd_probe(plan: dict[str, Any]) -> int:
    """Report what a process running exactly like the candidate sees (for doctor)."""
    code = (
        "import json,os,socket\n"
        "st={k:v.strip() for k,v in (l.split(':',1) for l in open('/proc/self/status') if ':' in l)}\n"
        "def can_write(p):\n"
        "    try:\n"
        "        f=open(p,'w'); f.close(); os.unlink(p); return True\n"
        "    except OSError: return False\n"
        "def rd(p):\n"
        "    try: return open(p).read().strip()\n"
        "    except OSError: return None\n"
        "def can_connect():\n"
        "    s=socket.socket(); s.settimeout(1)\n"
        "    try: s.connect(('192.0.2.1',80)); return True\n"
        "    except OSError as e: return str(e)\n"
        "r={'uid':os.getuid(),'gid':os.getgid(),'groups':os.getgroups(),"
        "'CapEff':st.get('CapEff'),'CapPrm':st.get('CapPrm'),'CapBnd':st.get('CapBnd'),"
        "'CapAmb':st.get('CapAmb'),'NoNewPrivs':st.get('NoNewPrivs'),'Seccomp':st.get('Seccomp'),"
        "'root_writable':can_write('/pkgsandbox-probe'),'home_writable':can_write(os.path.expanduser('~/.probe')),"
        "'connect':can_connect(),'ifaces':sorted(os.listdir('/sys/class/net')),"
        "'docker_sock':os.path.exists('/var/run/docker.sock'),'kill_init':None,"
        "'pids_max':rd('/sys/fs/cgroup/pids/pids.max'),"
        "'memory_limit':rd('/sys/fs/cgroup/memory/memory.limit_in_bytes'),"
        "'cpu_quota':rd('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'),'cpu_period':rd('/sys/fs/cgroup/cpu/cpu.cfs_period_us'),"
        "'etc_writable':can_write('/etc/pkgsandbox-probe'),'usr_writable':can_write('/usr/pkgsandbox-probe'),"
        "'dockerenv':os.path.exists('/.dockerenv'),'cgroup':open('/proc/self/cgroup').read()[:300]}\n"
        "try:\n    os.kill(1,0); r['kill_init']='allowed'\nexcept OSError as e: r['kill_init']=e.strerror\n"
        # gVisor's /proc/self/status (a 4.4 kernel's) has no NoNewPrivs or CapAmb line: ask prctl
        "import ctypes\nlibc=ctypes.CDLL(None)\n"
        "if r['NoNewPrivs'] is None: r['NoNewPrivs']=str(libc.prctl(39,0,0,0,0))\n"
        "if r['CapAmb'] is None:\n"
        "    r['CapAmb']='%016x'%sum(1<<c for c in range(41) if libc.prctl(47,1,c,0,0)==1)\n"
        "print(json.dumps(r))\n"
    )
    argv = [*privilege_drop(plan), "python3", "-c", code]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=30,
        env=candidate_env(plan),
        cwd="/",
        preexec_fn=guard.recorder_preexec,
    )
    try:
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        emit("error", msg=f"probe failed: {proc.stderr.strip()[:300]}")
        return EXIT_FAIL
    emit("probe", **seen)
    return EXIT_OK


def cmd_tells(plan: dict[str, Any]) -> int:
    """Report what a process started exactly like a step (recorder in front, privilege
    drop, the candidate's environment and directory) reads about where it runs."""
    trace = OUT / "tells.strace"
    strace = [a.replace("{output}", str(trace)) for a in plan.get("strace", [])]
    argv = [*strace, *(["--"] if strace else []), *privilege_drop(plan), "python3", "-c", tells.PROBE]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        env=candidate_env(plan),
        cwd=plan["project"],
        preexec_fn=guard.recorder_preexec,
    )
    with contextlib.suppress(OSError):
        trace.unlink()
    try:
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        emit("error", msg=f"tells probe failed: {proc.stderr.strip()[:300]}")
        return EXIT_FAIL
    emit("tells", **seen)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``agent [--detach] CMD ...`` (see :mod:`detach`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != ["init"]:
        detach.await_placement()  # before anything is forked
    if args[:1] != ["--detach"]:
        return _dispatch(args)
    if not detach.detach():
        return EXIT_OK  # the exec'd process: the command goes on as PID 1's child
    code = EXIT_FAIL
    try:
        code = _dispatch(args[1:])
    finally:
        emit("exit", code=code)
    return code


def _dispatch(args: list[str]) -> int:
    if not args:
        emit("error", msg="usage: agent {init SECONDS,setup,phase NAME,run PHASES,collect,probe,tells}")
        return EXIT_USAGE
    cmd = args[0]
    if cmd == "init" and len(args) == 2:
        return init.run(float(args[1]))
    if cmd == "collect":
        return cmd_collect()
    plan = load_plan()
    if cmd == "setup":
        return cmd_setup(plan)
    if cmd == "phase" and len(args) == 2:
        return cmd_phase(plan, args[1])
    if cmd == "run" and len(args) >= 2:
        return cmd_run(args[1:])
    if cmd == "probe":
        return cmd_probe(plan)
    if cmd == "tells":
        return cmd_tells(plan)
    emit("error", msg=f"unknown command {' '.join(args)}")
    return EXIT_USAGE
