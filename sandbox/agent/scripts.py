"""Source of the tiny drivers that run as the candidate user inside the venv.

They are written to ``/usr/local/lib/devtools/run/`` at image build time (a directory that
holds nothing else, so ``sys.path[0]`` adds no module the candidate could pick up).
Each reports progress as JSON lines on fd 3, a pipe to the agent; the candidate can
write there too, which only affects progress bookkeeping, never the syscall record.
"""

from .protocol import RUN_DIR

# Keeps the interpreter alive while any other thread of it exists, so that daemon
# threads started by .pth hooks or imports get the chance to act (a real program
# would live on). The agent's observation window bounds how long this can last.
# The wait backs off (50 ms doubling to 0.5 s, under watch.LONG_WAIT_SECONDS) and is a
# select, not time.sleep (the time pass shortens that to 0.1 s): this loop runs on the
# main thread of the process the window judges by its CPU and its waits, and a 50 ms
# poll makes ~100 traced wake-ups a window (more work under libfaketime).
LINGER = r"""
def _dt_linger(_ls=__import__("os").listdir, _sel=__import__("select").select):
    # bound when the driver starts, before any candidate code: a patched os.listdir or
    # select.select cannot run in this loop (the agent ends the window early when every
    # other thread is parked for good and this loop is all that still wakes)
    wait = 0.05
    while True:
        try:
            n = len(_ls("/proc/self/task"))
        except OSError:
            return
        if n <= 1:
            return
        _sel([], [], [], wait)
        wait = min(wait * 2, 0.5)
"""


# Progress reports to the agent: JSON lines on fd 3 (kept out of the candidate's children).
PROGRESS = r"""
def _dt_progress():
    import json, os
    try:
        ctl = os.fdopen(3, "w", buffering=1)
        os.set_inheritable(3, False)
    except OSError:
        ctl = None

    def say(**kw):
        if ctl is None:
            return
        try:
            ctl.write(json.dumps(kw) + "\n")
            ctl.flush()
        except Exception:
            pass

    return say
"""

# A long-running program: it has nothing of its own to do. When start-up hooks left
# threads behind it says so at once, so the observation window starts and judges them
# (without threads it just exits: the window then starts at its exit, as for any step).
KEEP = (
    LINGER
    + PROGRESS
    + r"""
import os as _dt_os
if len(_dt_os.listdir("/proc/self/task")) > 1:
    _dt_progress()(ev="done")
_dt_linger()
"""
)

IMPORTER = (
    LINGER
    + PROGRESS
    + r"""
def _dt_main():
    import importlib, json, os, sys, time, traceback
    say = _dt_progress()

    modules = sys.argv[1:]
    del sys.argv[1:]
    for name in modules:
        say(ev="start", m=name, t=time.time())
        try:
            importlib.import_module(name)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from a module count too
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            say(ev="end", m=name, ok=False, err=last[:500], t=time.time())
        else:
            say(ev="end", m=name, ok=True, t=time.time())
    say(ev="done", t=time.time())
    _dt_linger()

_dt_main()
"""
)

# Calls the public functions and classes of the candidate's modules with mock
# arguments, one at a time, reporting each call on fd 3 so behaviour can be
# attributed to the call that caused it. Coroutines are awaited, generators
# drained (bounded); each call also gets a SIGALRM deadline.
CALLS_STATE = f"{RUN_DIR}/calls-state.json"  # the agent's budget and skip list for the caller
MIN_SLICE = 0.5  # seconds every call gets however many there are (a send takes a fraction)
CALLER = (
    LINGER
    + PROGRESS
    + f"CALLS_STATE = {CALLS_STATE!r}\nMIN_SLICE = {MIN_SLICE!r}\n"
    + r'''
def _dt_main():
    import asyncio, importlib, inspect, json, os, signal, sys, time, traceback
    say = _dt_progress()

    per_call = float(sys.argv[1])
    hex_secret, _, text_secret = sys.argv[2].partition(":")
    modules = sys.argv[3:]
    del sys.argv[1:]
    import random, re
    # the agent's word (root-owned): the seconds left of the phase, and the calls an
    # earlier caller of this phase already made (it ended early: one of them exited)
    try:
        with open(CALLS_STATE) as fh:
            state = json.load(fh)
    except (OSError, ValueError):
        state = {}
    budget_end = time.monotonic() + float(state.get("budget") or per_call * 6)
    skip = set(state.get("skip") or ())
    real_sleep = time.sleep

    def short_sleep(secs):
        # a function that waits before it acts (or decoys that wait to spend the calls'
        # budget) acts within its slice; waits are not what the calls look for
        real_sleep(min(max(float(secs), 0.0), 0.05))
    secret_name = re.compile(
        r"(?:^|_)(?:pass(?:word|wd|phrase)?|pwd|secret|token|key|seed|mnemonic|credentials?|cookie|auth)(?:_|$)"
        r"|apikey|privkey|privatekey|secretkey|passwd|password"
    )

    def secret_for(name):
        """The run's canary for a parameter or attribute named like a secret (None
        otherwise): a key-shaped hex string for wallets and signing keys, a token else.
        Where the call sends it is the host's question (PS032)."""
        n = name.lower()
        if n.startswith("__") or not secret_name.search(n):
            return None
        if any(w in n for w in ("priv", "seed", "mnemonic", "wallet", "signing")):
            return hex_secret or None
        return text_secret or None

    class Mock:
        """Stands in for any argument: callable, iterable, attribute-rich, stringable."""
        def __getattr__(self, name):
            secret = secret_for(name)
            if secret is not None:
                return secret
            return Mock()
        def __call__(self, *a, **k):
            return Mock()
        def __iter__(self):
            return iter(())
        def __str__(self):
            return "test"
        def __bool__(self):
            return True
        def __len__(self):
            return 0
        def __fspath__(self):
            return "/tmp/mock"

    samples = {str: "test", int: 1, float: 1.0, bool: True, bytes: b"test", list: [], dict: {}, tuple: ()}

    def mock_for(param):
        secret = secret_for(param.name)
        ann = param.annotation
        try:
            sample = samples.get(ann)
        except TypeError:  # an unhashable annotation (`tags: [str]`)
            sample = None
        if secret is not None and (ann is str or sample is None):
            return secret
        if sample is not None:
            return sample
        name = param.name.lower()
        if "path" in name or "file" in name or "dir" in name:
            return "/tmp/mock"
        if "url" in name or "host" in name:
            return "http://example.invalid/"
        if name in ("n", "count", "size", "num", "number", "timeout", "port"):
            return 1
        return Mock()

    def args_for(fn):
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            return [], {}
        args, kwargs = [], {}
        for p in sig.parameters.values():
            if p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.kind is p.KEYWORD_ONLY:
                kwargs[p.name] = mock_for(p)
            else:
                args.append(mock_for(p))
        return args, kwargs

    class Deadline(BaseException):
        pass

    def on_alarm(signum, frame):
        raise Deadline()

    signal.signal(signal.SIGALRM, on_alarm)
    # the time pass shortens signal.setitimer for the candidate: our deadlines are not its
    setitimer = getattr(signal.setitimer, "__wrapped__", signal.setitimer)

    def settle(result, slice_s):
        if inspect.iscoroutine(result):
            return asyncio.run(asyncio.wait_for(result, slice_s))
        if inspect.isgenerator(result):
            for i, _ in enumerate(result):
                if i >= 1000:
                    break
        return result

    todo = []
    for modname in modules:
        try:
            mod = importlib.import_module(modname)
        except BaseException:
            continue
        # __all__ first, then every other public name the module defines: a payload kept
        # out of __all__ (a helper the README tells the user to call) is called too
        public = [n for n in dir(mod) if not n.startswith("_")]
        listed = getattr(mod, "__all__", None)
        listed = [n for n in listed if isinstance(n, str)] if isinstance(listed, (list, tuple)) else []
        names = list(dict.fromkeys([*listed, *public]))
        for name in names:
            try:
                obj = getattr(mod, name)
            except BaseException:
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.iscoroutinefunction(obj)):
                continue
            if not str(getattr(obj, "__module__", "")).startswith(modname.split(".")[0]):
                continue  # imported from elsewhere (os.system, json.dumps …): not the candidate's API
            label = modname + "." + name
            if label not in skip:
                todo.append((label, obj))
    # Every call gets a fair slice of what is left (at most per_call, at least
    # MIN_SLICE), in an order drawn per run: decoys that wait or spin cannot spend the
    # budget before a payload kept in the last function of the last module.
    random.Random(hex_secret or None).shuffle(todo)
    time.sleep = short_sleep
    called = 0  # calls started (the rest the budget did not reach)
    for label, obj in todo:
        left = budget_end - time.monotonic()
        if left <= 0:
            break
        slice_s = max(MIN_SLICE, min(per_call, left / (len(todo) - called)))
        called += 1
        say(ev="start", m=label, t=time.time())
        setitimer(signal.ITIMER_REAL, slice_s)
        try:
            a, k = args_for(obj)
            settle(obj(*a, **k), slice_s)
        except Deadline:
            say(ev="end", m=label, ok=False, err="timeout", t=time.time())
            continue
        except BaseException as exc:
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            say(ev="end", m=label, ok=False, err=last[:300], t=time.time())
            continue
        finally:
            setitimer(signal.ITIMER_REAL, 0)
        say(ev="end", m=label, ok=True, t=time.time())
    time.sleep = real_sleep
    say(ev="done", t=time.time(), unreached=len(todo) - called)
    # the deadlines were ours: a SIGALRM handler left in place reads as an armed
    # clock when the window judges what lingers (watch.armed_timers)
    setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    _dt_linger()

_dt_main()
'''
)

# Runs one of the candidate's modules the way `python -m MODULE --help` would (the
# exercise phase): a package's `__main__`, else the module itself under
# `__name__ == "__main__"` (a package's `__init__` too, which `-m` refuses: its
# submodules still import relative to it). SystemExit is the command's own ending.
MAIN = (
    LINGER
    + PROGRESS
    + r"""
def _dt_main():
    import importlib.util, runpy, sys
    say = _dt_progress()
    name = sys.argv[1]
    del sys.argv[1]
    try:
        spec = importlib.util.find_spec(name)
        if spec is None:
            raise ModuleNotFoundError("No module named " + repr(name))
        main_spec = None
        if spec.submodule_search_locations is not None:
            main_spec = importlib.util.find_spec(name + ".__main__")
        if spec.submodule_search_locations is None or main_spec is not None:
            runpy.run_module(name, run_name="__main__", alter_sys=True)
        else:
            mod = importlib.util.module_from_spec(spec)
            code = spec.loader.get_code(name)
            sys.modules[name] = mod
            sys.modules["__main__"] = mod
            sys.argv[0] = spec.origin or name
            mod.__dict__["__name__"] = "__main__"
            exec(code, mod.__dict__)
    except SystemExit:
        pass
    except BaseException:  # the command failed: its traceback, as `python -m` prints it
        import traceback
        traceback.print_exc()
        say(ev="done")
        _dt_linger()
        sys.exit(1)
    say(ev="done")
    _dt_linger()

_dt_main()
"""
)

# `python setup.py install` of a legacy sdist, as a developer types it (the install
# phase, for a setup.py gated on that command: sandbox/agent/legacy.py). It unpacks
# the sdist into a fresh temporary folder (regular files and folders only, no path
# leaving it), then execs the interpreter on setup.py with argv exactly
# ["setup.py", "install"], setuptools imported first (as pip's legacy path did, for
# a distutils-only setup.py); the install's options come from DIST_EXTRA_CONFIG: an
# externally managed install into a throwaway root, nothing fetched.
SETUP = r"""
import os, sys, tarfile, tempfile, zipfile

def _dt_unpack(sdist, dest):
    def inside(name):
        full = os.path.realpath(os.path.join(dest, name))
        return full.startswith(os.path.realpath(dest) + os.sep)
    if sdist.lower().endswith(".zip"):
        with zipfile.ZipFile(sdist) as zf:
            for info in zf.infolist()[:20000]:
                if inside(info.filename) and not info.is_dir():
                    os.makedirs(os.path.dirname(os.path.join(dest, info.filename)), exist_ok=True)
                    with zf.open(info) as src, open(os.path.join(dest, info.filename), "wb") as out:
                        out.write(src.read())
        return
    with tarfile.open(sdist) as tf:
        for m in tf:
            if not inside(m.name):
                continue
            if m.isdir():
                os.makedirs(os.path.join(dest, m.name), exist_ok=True)
            elif m.isfile():
                os.makedirs(os.path.dirname(os.path.join(dest, m.name)), exist_ok=True)
                with tf.extractfile(m) as src, open(os.path.join(dest, m.name), "wb") as out:
                    out.write(src.read())

def _dt_main():
    work = tempfile.mkdtemp(prefix="pip-install-")
    src = os.path.join(work, "src")
    os.makedirs(src)
    _dt_unpack(sys.argv[1], src)
    found = [os.path.join(src, "setup.py")] + [
        os.path.join(src, d, "setup.py") for d in sorted(os.listdir(src))
    ]
    setup = next((f for f in found if os.path.isfile(f)), None)
    if setup is None:
        print("no setup.py in the sdist", file=sys.stderr)
        sys.exit(2)
    cfg = os.path.join(work, "install.cfg")
    with open(cfg, "w") as fh:
        fh.write("[install]\nsingle_version_externally_managed = 1\n")
        fh.write("root = " + os.path.join(work, "root") + "\n")
        fh.write("record = " + os.path.join(work, "record.txt") + "\n")
    os.environ["DIST_EXTRA_CONFIG"] = cfg
    os.chdir(os.path.dirname(setup))
    os.environ["PWD"] = os.getcwd()
    shim = (
        "import os, sys, setuptools, tokenize; sys.argv[0] = 'setup.py'; "
        "__file__ = os.path.abspath('setup.py'); sys.path.insert(0, os.getcwd()); "
        "exec(compile(tokenize.open(__file__).read(), __file__, 'exec'))"
    )
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-c", shim, "install"])

_dt_main()
"""

SCRIPTS = {
    "keepalive.py": KEEP,
    "import_all.py": IMPORTER,
    "call_all.py": CALLER,
    "run_main.py": MAIN,
    "setup_build.py": SETUP,
}
