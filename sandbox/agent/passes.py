"""Extra passes: startup and import re-run in the same container under a changed
environment (runs inside the sandbox only; standard library only).

A pass is named by the host in the plan (``plan["passes"][NAME]``): extra
environment for the candidate, a root-owned directory put first on its
PYTHONPATH (stub modules and a ``sitecustomize`` that only *adds* compatibility:
recording stays strace's), and libfaketime preloaded into the candidate's
processes only (strace's ``-E`` sets it for the tracee, never for strace or the
agent). Shipped passes:

- ``windows``: Windows-only modules (``winreg``, ``win32crypt``, ``win32api`` …)
  and ``ctypes.windll`` importable and working enough that typical stealer code
  proceeds to read the honey tree under ``%APPDATA%``/``%LOCALAPPDATA%`` (planted
  at setup, honeytokens) and send it; backslash paths are translated to slashes.
- ``time``: the wall clock moved forward by the host's offset (libfaketime, with
  the monotonic clock left alone: waits and timeouts keep working), and Python's
  ``time.sleep`` and ``threading.Event.wait`` (``threading.Timer``) shortened
  (libfaketime's own sleep interception fails with EINVAL when the monotonic clock
  is not faked).
- ``ci``: a GitHub Actions job on a Linux runner (``CI``, ``GITHUB_ACTIONS``, the
  run's ids, ``GITHUB_WORKSPACE`` = the project, the runner tokens as honeytokens,
  ``GITHUB_ENV``/``GITHUB_PATH``/``GITHUB_OUTPUT`` naming files under a runner temp
  dir created at setup). Triggered by the host's scan of the sources for a CI
  variable or an environment lookup by a computed name (sandbox/judge/static.py
  ``ci_hint``).
- ``replay``, ``secrets`` and ``control``: the run's own values again (``replay``), the
  environment's honeytokens replaced by a second set
  drawn for the same names (``secrets``), then the run's own values again
  (``control``, the same session again; each from the files install left, see
  :mod:`reset`). A stealer that reads ``os.environ`` (no
  syscall) and sends the value in any encoding sends different requests in the two;
  the host compares them (PS031). Triggered by the default pass reaching out: a DNS
  question, connection or datagram the sinkhole recorded in its startup, import or
  exercise (:func:`reached_out`); control runs when secrets did.
"""

from __future__ import annotations

import compileall
import contextlib
import functools
import glob
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from .common import emit
from .disguise import DISGUISE, disguise_config
from .protocol import METADATA_ADDRESSES, PROBES_NAME, STAGE
from .winpass import WIN_SITECUSTOMIZE, WIN_STUBS

STUB_ROOT = Path("/usr/local/lib/devtools/passes")
CLOCK_FILE = Path("/var/lib/devtools/clock")  # seconds the sinkhole adds to its clock answers
FAKETIME_GLOB = "/usr/lib/*/faketime/libfaketime.so.1"

# --------------------------------------------------------------------------- time

# libfaketime shifts the wall clock of every candidate process; this only
# replaces Python's time.sleep (whose clock_nanosleep call libfaketime answers
# with EINVAL when the monotonic clock is left real) with a shortened one, and
# shortens threading.Event.wait's timeout the same way: threading.Timer waits on
# an Event (`threading.Timer(600, payload).start()` at import, and
# `Event().wait(600)` used as a sleep, outlast any window otherwise); and so are
# signal.setitimer (ITIMER_REAL), alarm and sigtimedwait.
# time.sleep on select (libfaketime answers its clock_nanosleep with EINVAL while the
# monotonic clock is left real), for the time and seeded passes' sitecustomize: each
# defines ``shorter`` first (how long a requested sleep lasts).
SLEEP_ON_SELECT = r"""
    def sleep(secs):
        secs = float(secs)
        if secs < 0:
            raise ValueError("sleep length must be non-negative")
        end = time.monotonic() + shorter(secs)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            select.select([], [], [], left)
    time.sleep = sleep
"""

TIME_SITECUSTOMIZE = (
    r"""
def _dt_time():
    import select, threading, time
    def shorter(secs):
        return secs if secs <= 0.1 else min(max(0.1, secs / 30.0), 2.0)
"""
    + SLEEP_ON_SELECT[1:]
    + r"""    event_wait = threading.Event.wait
    def wait(self, timeout=None):
        if timeout is not None:
            timeout = shorter(float(timeout))
        return event_wait(self, timeout)
    wait.__doc__ = event_wait.__doc__
    threading.Event.wait = wait
    import signal
    # the clocks a payload arms without sleeping on them (the window judges them,
    # watch.armed_timers): an interval timer or alarm delivering SIGALRM, a wait for a
    # signal that never comes. The originals stay reachable as __wrapped__ (the deep
    # profile's caller times each call with its own deadline).
    setitimer, alarm, sigtimedwait = signal.setitimer, signal.alarm, signal.sigtimedwait
    def _setitimer(which, seconds, interval=0.0):
        if which == signal.ITIMER_REAL and seconds > 0:
            seconds = shorter(float(seconds))
        return setitimer(which, seconds, interval)
    def _alarm(secs):
        return alarm(max(1, round(shorter(float(secs))))) if secs > 0 else alarm(secs)
    def _sigtimedwait(sigset, timeout):
        return sigtimedwait(sigset, shorter(float(timeout)) if timeout > 0 else timeout)
    for new, old in ((_setitimer, setitimer), (_alarm, alarm), (_sigtimedwait, sigtimedwait)):
        new.__wrapped__ = old
        new.__doc__ = old.__doc__
    signal.setitimer, signal.alarm, signal.sigtimedwait = _setitimer, _alarm, _sigtimedwait

try:
    _dt_time()
except Exception:
    pass
del _dt_time
"""
)


# The replay, secrets and control passes' libfaketime (a clock that counts its reads,
# the monotonic one left real): the same sleep on select, not shortened.
SEEDED_SITECUSTOMIZE = (
    r"""
def _dt_sleep():
    import select, time
    def shorter(secs):
        return secs
"""
    + SLEEP_ON_SELECT[1:]
    + r"""
try:
    _dt_sleep()
except Exception:
    pass
del _dt_sleep
"""
)


def make_pass_dirs(plan: dict[str, Any]) -> None:
    """Create the directories the passes' path variables name under HOME (``TEMP`` has
    no honey file in it, yet a Windows stealer mkdirs and writes below it), and the
    empty files a pass lists in ``files`` (the ci pass's ``GITHUB_ENV`` and co, which
    the runner creates before every step). Setup chowns HOME to the candidate after."""
    for conf in (plan.get("passes") or {}).values():
        files = {str(f) for f in conf.get("files") or ()}
        for value in (conf.get("env") or {}).values():
            if not str(value).startswith("{home}/"):
                continue
            path = Path(str(value).replace("{home}", plan["home"]))
            if str(value) in files:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            else:
                path.mkdir(parents=True, exist_ok=True)


def write_own(plan: dict[str, Any], name: str, modules: list[str], root: Path = STUB_ROOT) -> None:
    """Tell pass *name*'s stubs which top-level names under site-packages are the
    candidate's own (only its code is shown Windows; see WIN_SITECUSTOMIZE)."""
    stubs = pass_conf(plan, name).get("stubs")
    if not stubs or not (root / stubs).is_dir():
        return
    tops = sorted({m.split(".")[0] for m in modules if m})
    target = root / stubs / "own.txt"
    target.write_text("".join(f"{t}\n" for t in tops))
    target.chmod(0o644)


def install_stubs(root: Path = STUB_ROOT, rng: Any = None) -> None:
    """Write the passes' stub directories (root-owned, read-only to the candidate)."""
    disguise = DISGUISE.replace("__CFG__", repr(disguise_config(rng)))
    files = {
        "windows": {"sitecustomize.py": WIN_SITECUSTOMIZE, **WIN_STUBS},
        "time": {"sitecustomize.py": TIME_SITECUSTOMIZE + disguise},
        "seeded": {"sitecustomize.py": SEEDED_SITECUSTOMIZE},
    }
    for name, content in files.items():
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for fname, text in content.items():
            (d / fname).write_text(text)
            (d / fname).chmod(0o644)
        # Compiled now, as root: the candidate's interpreter would otherwise try to
        # write __pycache__ here at every start (denied, and an event of its own).
        compileall.compile_dir(str(d), quiet=1)
        for item in [d, *d.rglob("*")]:
            item.chmod(0o755 if item.is_dir() else 0o644)
    root.chmod(0o755)


def faketime_library() -> str | None:
    """Path of libfaketime in the image (Debian package ``faketime``), or None."""
    found = sorted(glob.glob(FAKETIME_GLOB))
    return found[0] if found else None


def pass_conf(plan: dict[str, Any], name: str) -> dict[str, Any]:
    """The plan's settings of pass *name* (empty for the default pass)."""
    if name in ("", "default"):
        return {}
    conf: dict[str, Any] = (plan.get("passes") or {}).get(name) or {}
    return conf


def pass_env(plan: dict[str, Any], name: str, env: dict[str, str]) -> dict[str, str]:
    """The candidate's environment for pass *name*: *env* plus the pass's overlay
    (``HOME``-relative values expanded) and its stub directory first on PYTHONPATH."""
    conf = pass_conf(plan, name)
    if not conf:
        return env
    out = dict(env)
    for key, value in (conf.get("env") or {}).items():
        out[str(key)] = str(value).replace("{home}", plan["home"])
    stubs = conf.get("stubs")
    if stubs:
        path = str(STUB_ROOT / stubs)
        out["PYTHONPATH"] = path + (os.pathsep + out["PYTHONPATH"] if out.get("PYTHONPATH") else "")
    return out


def tracee_env(plan: dict[str, Any], name: str) -> dict[str, str]:
    """Variables set for the tracee only (strace ``-E``): libfaketime's preload and
    settings. Never in strace's or the agent's own environment."""
    conf = pass_conf(plan, name)
    shift, seed = conf.get("clock_shift"), conf.get("seed")
    if not shift and not seed:
        return {}
    lib = faketime_library()
    if lib is None:
        return {}
    env = {
        "LD_PRELOAD": lib,
        "FAKETIME": f"+{int(shift or 0)}",
        # A faked monotonic clock hangs every timed wait libfaketime does not wrap
        # (sem_clockwait: Python's lock timeouts); the wall clock is what matters.
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        # Without it the first preloaded process (setpriv, still root) creates a
        # semaphore the candidate uid cannot open, and every candidate process exits 1.
        "FAKETIME_SHARED": shared_clock_state(clock_files(conf)),
    }
    if seed:
        # The replay, secrets and control passes (PS031): getrandom/getentropy drawn
        # from the seed, and a wall clock that starts where the first of them started
        # and moves 1 ms per read, not with time: what a payload mixes the secret with
        # (a key from os.urandom, uuid4, the time) is then the same in the three, and
        # only what follows the secret differs. The count is shared by the pass's
        # processes and starts again at every phase (reset_clock_state).
        env["FAKERANDOM_SEED"] = str(seed)
        env["FAKETIME"] = f"@{_pinned_start()} i0.001"
    return env


@functools.cache
def _pinned_start() -> str:
    """The seeded passes' clock start: the agent's clock when the first of them began
    (one agent process runs them all), as libfaketime's absolute format (local time)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())


def clock_files(conf: dict[str, Any]) -> tuple[str, str]:
    """libfaketime's shared semaphore and state for a pass: the run's own names (secret,
    in the root-only plan, named like a desktop's: ``sem.mp-…`` as Python's
    multiprocessing makes, ``pulse-shm-…`` as PulseAudio does), else the old fixed ones."""
    names = conf.get("clock_files") or (SHM_SEM, SHM_STATE)
    return str(names[0]), str(names[1])


def reset_clock_state(files: tuple[str, str]) -> None:
    """Before each phase of a seeded pass: libfaketime's shared state (the count of
    clock reads of an ``i`` clock) back to zero, so that each starts from the same
    clock, and its semaphore released if a process was killed holding it (every read
    of a counted clock takes it). Made by root before the pass's first step
    (:func:`shared_clock_state`) under the run's secret names, so a candidate cannot
    make them first; rewritten in place, never made again."""
    import ctypes

    sem_name, state_name = files
    shared_clock_state(files)
    with contextlib.suppress(OSError):
        fd = os.open(Path("/dev/shm") / state_name[1:], os.O_RDWR | os.O_NOFOLLOW)
        try:
            os.pwrite(fd, bytes(os.fstat(fd).st_size), 0)
        finally:
            os.close(fd)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.sem_open.restype = ctypes.c_void_p
        sem = libc.sem_open(sem_name.encode(), 0)
        if sem:
            value = ctypes.c_int(1)
            if libc.sem_getvalue(ctypes.c_void_p(sem), ctypes.byref(value)) == 0 and value.value < 1:
                libc.sem_post(ctypes.c_void_p(sem))
            libc.sem_close(ctypes.c_void_p(sem))


SHM_SEM, SHM_STATE = "/dt_ft_sem", "/dt_ft_shm"  # plans from before clock_files


def shared_clock_state(files: tuple[str, str]) -> str:
    """Create libfaketime's shared semaphore and state (once) so that root (setpriv)
    and the candidate uid both open them: ``FAKETIME_SHARED`` names them. Made when
    the first pass that preloads libfaketime starts: the default pass sees no such
    file in ``/dev/shm``."""
    import ctypes

    sem_name, state_name = files
    state = Path("/dev/shm") / state_name[1:]
    if not state.exists():
        old = os.umask(0)
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.sem_open.restype = ctypes.c_void_p
            sem = libc.sem_open(sem_name.encode(), os.O_CREAT, ctypes.c_uint(0o666), ctypes.c_uint(1))
            if sem:
                libc.sem_close(ctypes.c_void_p(sem))
            fd = os.open(state, os.O_CREAT | os.O_RDWR, 0o666)
            os.ftruncate(fd, 4096)
            os.close(fd)
        finally:
            os.umask(old)
    return f"{sem_name} {state_name}"


def set_clock(shift: float) -> None:
    """Tell the sinkhole how far to move its clock answers (NTP, HTTP Date)."""
    try:
        if shift:
            CLOCK_FILE.write_text(str(float(shift)))
        else:
            CLOCK_FILE.unlink(missing_ok=True)
    except OSError:
        pass


def clock_shift(path: Path = CLOCK_FILE) -> float:
    """The current clock shift (0 outside a time-travel pass)."""
    try:
        return float(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0.0


# --------------------------------------------------------------------------- triggers

# A first pass that failed on a Windows-only import: the payload never ran.
_WINDOWS_ONLY = re.compile(
    r"No module named '(?:winreg|_winreg|win32crypt|win32api|win32con|win32gui|win32process|pywintypes|"
    r"_winapi|msvcrt|wmi|win32com)[.']"
    r"|cannot import name '(?:windll|WinDLL|oledll|WINFUNCTYPE)' from 'ctypes'"
    r"|cannot import name '(?:CREATE_NO_WINDOW|DETACHED_PROCESS|CREATE_NEW_CONSOLE|STARTUPINFO"
    r"|STARTF_USESHOWWINDOW|SW_HIDE)' from 'subprocess'"
    r"|module 'subprocess' has no attribute '(?:CREATE_NO_WINDOW|DETACHED_PROCESS|CREATE_NEW_CONSOLE"
    r"|STARTUPINFO|STARTF_USESHOWWINDOW|SW_HIDE)'"
    # os.getlogin() needs a terminal on Linux (ENXIO; the import driver keeps only the
    # last line); Windows answers it from the session. In a setup.py command, distutils
    # reports it as "error: [Errno 6] …"
    r"|(?:OSError|error): \[Errno 6\] No such device or address"
    r"|module 'ctypes' has no attribute '(?:windll|WinDLL|oledll|WINFUNCTYPE|FormatError|GetLastError)'"
    # os.environ["USERPROFILE"] and friends: variables only Windows sets
    r"|KeyError: '(?i:USERPROFILE|APPDATA|LOCALAPPDATA|PROGRAMDATA|PROGRAMFILES|SYSTEMROOT|WINDIR"
    r"|HOMEDRIVE|HOMEPATH|SYSTEMDRIVE|COMPUTERNAME|USERDOMAIN)'"
    # os.getenv("APPDATA") is None there: os.path.join/open of it, or a path built
    # with + on it, fail on the None
    r"|TypeError: expected str, bytes or os\.PathLike object, not NoneType"
    r"|TypeError: unsupported operand type\(s\) for \+: 'NoneType' and 'str'"
    r"|TypeError: can only concatenate str \(not \"NoneType\"\) to str"
    # path.replace("_Local", os.getenv("LOCALAPPDATA")), "".join([..., None])
    r"|TypeError: replace\(\) argument \d must be str, not None"
    r"|TypeError: sequence item \d+: expected str instance, NoneType found"
    # Popen("python -m pip install x") without a shell: a command line only Windows runs
    r"|FileNotFoundError: \[Errno 2\] No such file or directory: '[^' ]+ -[^']*'"
)


def _default_results(out: Path, phases: tuple[str, ...] = ("startup", "import")) -> list[dict[str, Any]]:
    found = []
    for phase in phases:
        try:
            found.append(json.loads((out / f"{phase}.result.json").read_text()))
        except (OSError, ValueError):
            continue
    return found


def windows_trigger(results: list[dict[str, Any]]) -> str:
    """Why the Windows pass should run after these default-pass results ("" when not)."""
    for res in results:
        texts = [str(m.get("detail", "")) for m in res.get("modules") or []]
        texts += [str(s.get("output", ""))[-20000:] for s in res.get("steps") or []]
        for text in texts:
            m = _WINDOWS_ONLY.search(text)
            if m:
                hit = m.group(0)
                variable = hit.startswith(("KeyError", "TypeError"))
                what = "variable" if variable else "call" if "Errno 6" in hit else "import"
                return f"the default pass failed on a Windows-only {what} ({' '.join(hit.split())[:80]})"
    return ""


STATIC_FILE = Path("/stage/static.json")
STATIC_PREFIX = "static rules matched"
# the host's static hints (sandbox/judge/static.py pass_hint, ci_hint, time_hint) start so
STATIC_PREFIXES = (
    STATIC_PREFIX,
    "the candidate's sources name CI variables",
    "the candidate's sources read the environment by computed names",
    "the candidate's sources gate a browser, messenger or wallet store on Windows",
    "the candidate's sources compare the clock with a date",
)


def static_hint(path: Path = STATIC_FILE, wait: float = 30.0, key: str = "hint") -> str:
    """The host's static hint for the Windows pass (``hint``), the ci pass (``ci``) or
    the time pass (``time``):
    it scans the candidate's sources while install runs and always writes the file;
    "" when none came in *wait* s."""
    import time

    end = time.monotonic() + wait
    while True:
        try:
            return str(json.loads(path.read_text()).get(key) or "")
        except (OSError, ValueError):
            if time.monotonic() >= end:
                return ""
            time.sleep(0.1)


def time_trigger(results: list[dict[str, Any]]) -> str:
    """Why the time-travel pass should run: a step or module timed out, or a process
    was still alive (sleeping or waiting) when the observation window closed."""
    for res in results:
        for m in res.get("modules") or []:
            if m.get("status") == "timeout":
                return f"import of {m.get('name')} timed out in the default pass"
        for s in res.get("steps") or []:
            if s.get("status") == "timeout":
                return f"{res.get('phase')} step {s.get('tag')} timed out in the default pass"
            if any(lg.get("active", True) for lg in s.get("lingering") or []):
                return f"a process of {res.get('phase')} outlived its step in the default pass"
    return ""


# Reads that look for a sandbox or a debugger, as strace writes them (the literal
# argument): numeric /proc/N/status reads are left out, setpriv makes those.
_PROBE = re.compile(
    rb'"(/\.dockerenv|/run/\.containerenv|/proc/1/(?:cgroup|sched|mountinfo|mounts|cmdline|comm|environ)'
    rb"|/proc/(?:self|thread-self|\d+)/cgroup|/proc/(?:self|thread-self)(?:/task/\d+)?/status)\""
    rb"|PTRACE_TRACEME"
)
PROBE_SCAN_CAP = 64 << 20  # bytes of each trace looked at


def probe_trigger(out: Path) -> str:
    """Why the time pass should run: the default pass's startup or import looked for a
    sandbox (environment-aware code goes dormant there; the time pass hides the tells
    from Python and moves the clock).  A read of the process's own status alone does
    not count: numpy and friends read it at import, and a pass costs as much as the
    import; with a second kind of look it does.  Reads the strace recorder's traces;
    the eBPF recorder's are on the host, which answers the same question
    (:func:`host_probe_hint`)."""
    seen: dict[str, str] = {}  # kind → what, in which phase
    for trace in sorted([*out.glob("startup.*.strace"), *out.glob("import.*.strace")]):
        try:
            with trace.open("rb") as fh:
                left = PROBE_SCAN_CAP
                while left > 0:
                    chunk = fh.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    chunk += fh.readline()
                    left -= len(chunk)
                    for m in _PROBE.finditer(chunk):
                        what = (m.group(1) or m.group(0)).decode("utf-8", "replace")
                        kind = "status" if what.endswith("/status") else what
                        seen.setdefault(kind, f"{what} in {trace.name.split('.')[0]}")
                    if set(seen) - {"status"}:
                        shown = ", ".join(sorted(seen.values())[:3])
                        return f"the default pass probed for a sandbox ({shown})"
        except OSError:
            continue
    return ""


PROBES_FILE = Path(STAGE) / PROBES_NAME


def host_probe_hint(path: Path | None = None, wait: float = 30.0) -> str:
    """The host's answer to "did the default pass probe for a sandbox?" under the eBPF
    recorder, whose trace only the host holds (it writes the file once the default
    import's record reaches it; "" when none came in *wait* s)."""
    return static_hint(path or PROBES_FILE, wait)


def should_run(plan: dict[str, Any], name: str, out: Path, static: Path | None = None) -> str:
    """Why extra pass *name* runs now ("" when it does not): ``when`` is ``always``,
    ``never`` or ``auto`` (the pass's own trigger on the default pass's results)."""
    conf = pass_conf(plan, name)
    when = conf.get("when", "auto")
    if when == "never" or not conf:
        return ""
    if when == "always":
        return "always run by the profile"
    trigger = conf.get("trigger", name)
    if trigger == "windows":
        why = windows_trigger(_default_results(out, ("install", "startup", "import", "exercise")))
        if not why and conf.get("static_hint"):
            why = static_hint(static or STATIC_FILE)
            sent = sent_out(out) if why and conf.get("skip_if_sent") else ""
            if sent:
                skipped(name, f"{why}; not run: the default pass already sent {sent}")
                return ""
        return why
    if trigger == "time":
        why = time_trigger(_default_results(out))
        if not why and conf.get("static_hint"):
            why = static_hint(static or STATIC_FILE, key="time")  # a date gate in the sources
        if why:
            return why
        return host_probe_hint() if plan.get("recorder") == "ebpf" else probe_trigger(out)
    if trigger == "ci" and conf.get("static_hint"):
        return static_hint(static or STATIC_FILE, key="ci")
    if trigger in ("secrets", "replay"):
        return reached_out(out)
    if trigger == "control" and any(out.glob("secrets.*.result.json")):
        return "the secrets pass ran: the same session again with the run's own values (PS031 compares them)"
    return ""


NET_LOG = "net.jsonl"  # the sinkhole's record of every attempt (sinkhole/record.py Recorder)
NET_SCAN_CAP = 16 << 20  # bytes of it looked at


def _net_records(out: Path, phases: tuple[str, ...]) -> list[dict[str, Any]]:
    """The sinkhole's records (the first :data:`NET_SCAN_CAP` bytes of them) of the
    default pass's *phases*: its records carry the bare phase, an extra pass's
    ``pass:phase``."""
    try:
        with (out / NET_LOG).open("rb") as fh:
            lines = fh.read(NET_SCAN_CAP).splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("phase") in phases:
            found.append(rec)
    return found


def _default_attempts(out: Path) -> tuple[dict[str, int], bool]:
    """The default pass's outbound attempts the sinkhole recorded, counted by
    ``phase:kind``, and whether any of them was cut (a flow past its bytes, a record
    past the budget)."""
    counts: dict[str, int] = {}
    cut = False
    for rec in _net_records(out, ("startup", "import", "exercise")):
        if rec.get("kind") in ("dns", "tcp", "udp"):
            key = f"{rec['phase']}:{rec['kind']}"
            counts[key] = counts.get(key, 0) + 1
            cut = cut or bool(rec.get("truncated") or rec.get("slim"))
    return counts, cut


def compared_phases(plan: dict[str, Any], name: str, out: Path) -> set[str] | None:
    """The phases the secrets and control passes re-run: those in which the default pass
    reached out. PS031 compares a phase's requests with the default pass's, so a phase
    that sent nothing there can show nothing (litellm's exercise: a minute a pass).
    None for every other pass (all of its phases)."""
    conf = pass_conf(plan, name)
    if conf.get("trigger") not in ("secrets", "control", "replay") or conf.get("when") == "always":
        return None  # always (the deep profile): every phase, for what a later session does
    return {key.split(":")[0] for key in _default_attempts(out)[0]}


def reached_out(out: Path) -> str:
    """Why the secrets pass runs: the sinkhole recorded an outbound attempt of the default
    pass's startup, import or exercise. "" when none: a phase that sent nothing cannot
    have sent a secret, and the pass costs as much as the import. "" too when a capture
    of the default pass was cut: such a phase is never an accounted fetch (its findings
    stay HIGH), and two more passes of it would only spend the capture's budgets that
    the default pass is judged by."""
    counts, cut = _default_attempts(out)
    if not counts or cut:
        return ""
    words = {"dns": "DNS question(s)", "tcp": "connection(s)", "udp": "datagram(s)"}
    order = {"startup": 0, "import": 1, "exercise": 2, "dns": 0, "tcp": 1, "udp": 2}
    ranked = sorted(counts.items(), key=lambda kv: [order[x] for x in kv[0].split(":")])
    said = ", ".join(f"{n} {words[k.split(':')[1]]} in {k.split(':')[0]}" for k, n in ranked)
    return f"the default pass reached out ({said}): do its requests follow the secrets?"


# A request no accounting lowers (sandbox/judge/rules/accounted.py keeps its findings
# HIGH): anything but a plain GET or HEAD without a query or a body.
_PLAIN_METHODS = ("GET", "HEAD")
SENT_PHASES = ("install", "startup", "import")  # the candidate's own doing (exercise is ours)


def _metadata_ping(rec: dict[str, Any]) -> bool:
    """A plain ``GET /`` of a cloud metadata address: the judge accounts it (MEDIUM at
    most), so it proves nothing the Windows pass could add to."""
    host = str(rec.get("dst") or "").rsplit(":", 1)[0].strip("[]")
    reqs = rec.get("http") or []
    return (
        host in METADATA_ADDRESSES
        and bool(reqs)
        and all(
            r.get("method") in _PLAIN_METHODS and r.get("target") == "/" and not r.get("body_bytes")
            for r in reqs
        )
    )


def skipped(name: str, why: str) -> None:
    """Tell the host that extra pass *name* was called for and not run, and why (a note
    of the report: a user who wants it anyway runs the deep profile)."""
    emit("skipped", **{"pass": name, "why": why})


def sent_out(out: Path) -> str:
    """What the default pass's install, startup or import sent out that the judge keeps
    HIGH whatever else it sees ("" when nothing): a connection to an address no DNS
    answer gave (hard-coded), a request with a body or a query, a method other than GET
    or HEAD, bytes of a protocol other than HTTP or TLS, or a datagram. The Windows pass
    a static hint asks for is skipped then (see :func:`should_run`): the verdict already
    rests on the default pass, and a pass costs as much as the install."""
    for rec in _net_records(out, SENT_PHASES):
        dst = str(rec.get("dst") or "?")
        if rec.get("kind") == "udp":
            return f"a datagram to {dst} in {rec['phase']}"
        if rec.get("kind") != "tcp" or rec.get("transport") == "dns":
            continue
        if not rec.get("name") and not _metadata_ping(rec):
            return f"a connection to {dst} in {rec['phase']}, an address no DNS answer gave"
        for req in rec.get("http") or ():
            method, target = str(req.get("method", "")), str(req.get("target", ""))
            if method not in _PLAIN_METHODS or req.get("body_bytes") or "?" in target:
                return f"{method} {rec['name']}{target[:60]} in {rec['phase']}"
        if int(rec.get("bytes") or 0) and rec.get("proto") not in ("http", "https", "tls", "empty"):
            what = rec.get("proto") or "data"
            return f"{rec.get('bytes')} bytes of {what} to {rec['name']} in {rec['phase']}"
    return ""
