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
"""

from __future__ import annotations

import compileall
import glob
import json
import os
import re
from pathlib import Path
from typing import Any

from .disguise import DISGUISE, disguise_config
from .protocol import PROBES_NAME, STAGE

STUB_ROOT = Path("/opt/pkgsandbox/passes")
CLOCK_FILE = Path("/var/lib/pkgsandbox/clock")  # seconds the sinkhole adds to its clock answers
FAKETIME_GLOB = "/usr/lib/*/faketime/libfaketime.so.1"

# --------------------------------------------------------------------------- windows

WIN_SITECUSTOMIZE = r'''
"""Windows look-alike for this interpreter (a developer's Windows box, seen from Python)."""
DPAPI = b"\x01\x00\x00\x00\xd0\x8c\x9d\xdf"  # a DPAPI blob's version and provider GUID start


def _pkgsandbox_windows():
    import builtins, ctypes, io, os, platform, sys

    home = os.environ.get("USERPROFILE", os.path.expanduser("~"))
    drive = os.path.dirname(os.path.dirname(home.rstrip("/")))  # ~/.wine/drive_c

    real_lstat, real_listdir = os.lstat, os.listdir

    def lexists(p):
        try:
            real_lstat(p)
        except (OSError, ValueError):
            return False
        return True

    def fix(p):
        if not isinstance(p, str):
            return p
        if "%" in p:
            p = expandvars(p)
        if "\\" in p or (len(p) >= 2 and p[1] == ":" and p[0].isalpha()):
            q = p.replace("\\", "/")
            if len(q) >= 2 and q[1] == ":" and q[0].isalpha():
                q = drive + q[2:]
            while "//" in q:
                q = q.replace("//", "/")
            p = q
        if p.startswith(drive + "/") and not lexists(p):
            p = nocase(p)
        return p

    def nocase(p):
        # NTFS ignores case: %APPDATA%\\Discord is the "discord" folder; what does not
        # exist yet (a file being created) keeps its spelling below the last match
        parts = [x for x in p[len(drive) + 1 :].split("/") if x]
        cur = drive
        for i, part in enumerate(parts):
            nxt = os.path.join(cur, part)
            if not lexists(nxt):
                low = part.lower()
                try:
                    nxt = os.path.join(cur, next(n for n in real_listdir(cur) if n.lower() == low))
                except (OSError, StopIteration):
                    return os.path.join(cur, *parts[i:])
            cur = nxt
        return cur

    real_expandvars = os.path.expandvars

    def expandvars(p):
        if isinstance(p, str) and "%" in p:
            import re
            p = re.sub(r"%([A-Za-z_][A-Za-z0-9_]*)%", lambda m: os.environ.get(m.group(1), m.group(0)), p)
        return real_expandvars(p)

    def wrap(fn):
        def inner(p=".", *a, **k):
            return fn(fix(p), *a, **k)
        inner.__name__ = getattr(fn, "__name__", "f")
        inner.__doc__ = getattr(fn, "__doc__", None)
        return inner

    builtins.open = io.open = wrap(io.open)
    for name in ("open", "listdir", "scandir", "stat", "lstat", "access", "mkdir", "makedirs",
                 "remove", "unlink", "chdir", "rmdir", "chmod", "utime", "startfile"):
        if hasattr(os, name):
            setattr(os, name, wrap(getattr(os, name)))
    for name in ("rename", "replace"):
        real2 = getattr(os, name)
        setattr(os, name, (lambda r: lambda s, d, *a, **k: r(fix(s), fix(d), *a, **k))(real2))
    os.path.expandvars = expandvars
    try:
        import sqlite3
        sqlite3.connect = wrap(sqlite3.connect)
    except Exception:
        pass
    import shutil
    for name in ("copy", "copy2", "copyfile"):
        real = getattr(shutil, name)
        setattr(shutil, name, (lambda r: lambda s, d, *a, **k: r(fix(s), fix(d), *a, **k))(real))

    # Windows is what the candidate's own code sees (its setup.py, its modules, code it
    # exec()s); the interpreter's library and the installer tools keep seeing Linux, so
    # pip, subprocess and pathlib keep working in this pass. "Own" = not the standard
    # library, not these stubs, not the harness, and in site-packages only the
    # candidate's top-level names (own.txt, written by the agent before each phase).
    import sysconfig
    here = os.path.dirname(os.path.abspath(__file__))
    paths = sysconfig.get_paths()
    lib = tuple(sorted({os.path.join(paths[k], "") for k in ("stdlib", "platstdlib")}))
    trusted = (*lib, os.path.join(here, ""), "/opt/pkgsandbox/")
    try:
        with io.open(os.path.join(here, "own.txt")) as fh:
            own = frozenset(ln.strip() for ln in fh if ln.strip())
    except OSError:
        own = frozenset()
    seen = {}

    def candidate(depth=2, through=()):
        # the frame *depth* up, past frames of the modules in *through* (os.getenv's)
        try:
            frame = sys._getframe(depth)
        except ValueError:
            return False
        while frame is not None and frame.f_code.co_filename in through:
            frame = frame.f_back
        if frame is None:
            return False
        fname = frame.f_code.co_filename
        hit = seen.get(fname)
        if hit is None:
            # site-packages first: in a venv "platstdlib" is the venv's lib/pythonX.Y,
            # which holds site-packages, so a trusted-prefix test alone would take the
            # candidate's installed modules for the library
            mark = next((m for m in ("/site-packages/", "/dist-packages/") if m in fname), None)
            if fname.startswith("<frozen"):
                hit = False
            elif mark is not None:
                top = fname.split(mark, 1)[1].split("/", 1)[0]
                hit = (top[:-3] if top.endswith(".py") else top) in own
            else:
                hit = not fname.startswith(trusted)
            seen[fname] = hit
        return hit

    names = ("system", "release", "version", "win32_ver", "platform", "uname")
    linux = {k: getattr(platform, k) for k in names}
    fake = {
        "system": lambda: "Windows",
        "release": lambda: "10",
        "version": lambda: "10.0.19045",
        "win32_ver": lambda *a, **k: ("10", "10.0.19045", "SP0", "Multiprocessor Free"),
        "platform": lambda *a, **k: "Windows-10-10.0.19045-SP0",
        "uname": lambda: platform.uname_result(
            "Windows", linux["uname"]().node, "10", "10.0.19045", "AMD64"
        ),
    }

    def both(name):
        def inner(*a, **k):
            return (fake if candidate() else linux)[name](*a, **k)
        inner.__name__ = name
        inner.__doc__ = linux[name].__doc__
        return inner

    for name in linux:
        setattr(platform, name, both(name))

    class WinOs(type(os)):
        @property
        def name(self):
            return "nt" if candidate() else self.__dict__["name"]

    class WinSys(type(sys)):
        @property
        def platform(self):
            return "win32" if candidate() else self.__dict__["platform"]

        @property
        def getwindowsversion(self):
            if not candidate():
                raise AttributeError("getwindowsversion")
            return lambda: sys.__dict__["_pkgsandbox_winver"]

    import collections
    sys._pkgsandbox_winver = collections.namedtuple(
        "getwindowsversion", "major minor build platform service_pack"
    )(10, 0, 19045, 2, "")
    os.__class__ = WinOs
    sys.__class__ = WinSys

    # %APPDATA% and friends read as Windows paths (C:\\Users\\dev\\AppData\\Roaming) by
    # the candidate, which then splits and joins them with backslashes; fix() maps them
    # back onto the honey tree. The library (tempfile, pip) keeps the real paths.
    import _collections_abc
    through = {
        "<frozen os>", "<frozen _collections_abc>", os.__file__, _collections_abc.__file__,
    }
    winvars = {"USERPROFILE", "APPDATA", "LOCALAPPDATA", "TEMP", "TMP"}

    def winpath(value):
        if not (isinstance(value, str) and value.startswith(drive + "/")):
            return value
        parts = value[len(drive) + 1 :].split("/")
        if parts and parts[0] == "users":
            parts[0] = "Users"
        return "C:\\" + "\\".join(parts)

    class WinEnviron(type(os.environ)):
        def __getitem__(self, key):
            mine = candidate(2, through)
            if mine and isinstance(key, str) and self.encodekey(key) not in self._data:
                key = key.upper()  # Windows variable names ignore case
            value = super().__getitem__(key)
            if mine and isinstance(key, str) and key.upper() in winvars:
                return winpath(value)
            return value

    os.environ.__class__ = WinEnviron

    # Windows-only Popen arguments would raise ValueError here before anything ran.
    import subprocess
    real_init = subprocess.Popen.__init__
    via_run = {subprocess.__file__}  # subprocess.run/call/check_output → Popen

    def popen_init(self, *a, **k):
        k.pop("creationflags", None)
        k.pop("startupinfo", None)
        args = a[0] if a else k.get("args")
        if isinstance(args, str) and not k.get("shell") and " " in args and candidate(2, via_run):
            # Windows runs a command line given as one string (CreateProcess parses it)
            import shlex

            try:
                split = shlex.split(args)
            except ValueError:
                split = args.split()
            a = (split, *a[1:]) if a else a
            if not a:
                k["args"] = split
        return real_init(self, *a, **k)

    subprocess.Popen.__init__ = popen_init

    # Windows answers os.getlogin() from the session (no terminal needed); Linux without
    # a controlling terminal raises ENXIO, and a stealer building C:\Users\<login> paths
    # stops there.
    real_getlogin = os.getlogin

    def getlogin():
        if candidate():
            return os.environ.get("USERNAME") or os.path.basename(home.rstrip("/")) or "user"
        return real_getlogin()

    os.getlogin = getlogin

    # Windows-only names stealers import from subprocess to hide their windows
    # (Popen drops the flags above); integers and a plain holder, as on Windows.
    class STARTUPINFO:
        def __init__(self, *, dwFlags=0, hStdInput=None, hStdOutput=None, hStdError=None,
                     wShowWindow=0, lpAttributeList=None):
            self.dwFlags, self.wShowWindow = dwFlags, wShowWindow
            self.hStdInput, self.hStdOutput, self.hStdError = hStdInput, hStdOutput, hStdError
            self.lpAttributeList = lpAttributeList or {}

    winconst = {
        "CREATE_NO_WINDOW": 0x08000000, "DETACHED_PROCESS": 0x8, "CREATE_NEW_CONSOLE": 0x10,
        "CREATE_NEW_PROCESS_GROUP": 0x200, "CREATE_BREAKAWAY_FROM_JOB": 0x01000000,
        "STARTF_USESHOWWINDOW": 0x1, "STARTF_USESTDHANDLES": 0x100, "SW_HIDE": 0,
        "HIGH_PRIORITY_CLASS": 0x80, "BELOW_NORMAL_PRIORITY_CLASS": 0x4000,
        "STARTUPINFO": STARTUPINFO,
    }
    for key, value in winconst.items():
        if not hasattr(subprocess, key):
            setattr(subprocess, key, value)

    kept = []  # buffers CryptUnprotectData handed out (a real one would LocalAlloc them)

    def unwrap(data):
        # the honey tree's DPAPI blobs: the header, then the secret in clear
        return data[len(DPAPI):] if data.startswith(DPAPI) else data

    results = {
        "IsDebuggerPresent": 0, "CheckRemoteDebuggerPresent": 0, "GetLastError": 0,
        "GetSystemMetrics": 1920, "GetTickCount": 86400000, "GetTickCount64": 86400000,
        "GetFileAttributesW": 0x20, "GetCurrentProcessId": os.getpid(), "GetUserDefaultUILanguage": 1033,
    }

    class Fn:
        def __init__(self, name):
            self.__name__ = name
            self.argtypes = self.restype = self.errcheck = None
        def __call__(self, *args, **kw):
            if self.__name__ == "CryptUnprotectData":
                blobs = [getattr(a, "_obj", a) for a in args if hasattr(getattr(a, "_obj", a), "cbData")]
                if len(blobs) >= 2:
                    src, dst = blobs[0], blobs[-1]
                    data = unwrap(ctypes.string_at(src.pbData, src.cbData))
                    buf = ctypes.create_string_buffer(data, max(1, len(data)))
                    kept.append(buf)
                    dst.cbData = len(data)
                    dst.pbData = ctypes.cast(buf, type(src.pbData))
            return results.get(self.__name__, 1)

    class Dll:
        def __init__(self, name="", *a, **k):
            self._name = name
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            fn = Fn(name)
            setattr(self, name, fn)
            return fn
        def __getitem__(self, name):
            return getattr(self, name)

    class Loader:
        def __init__(self, cls=Dll):
            self._cls = cls
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            dll = Dll(name)
            setattr(self, name, dll)
            return dll
        def LoadLibrary(self, name):
            return Dll(name)

    ctypes.windll = ctypes.oledll = Loader()

    class CLoader(ctypes.LibraryLoader):
        # cdll.msvcrt and friends: the real library when there is one, else a stub
        def __getattr__(self, name):
            try:
                return ctypes.LibraryLoader.__getattr__(self, name)
            except OSError:
                dll = Dll(name)
                setattr(self, name, dll)
                return dll

    ctypes.cdll = CLoader(ctypes.CDLL)
    ctypes.WinDLL = ctypes.OleDLL = Dll
    ctypes.WINFUNCTYPE = getattr(ctypes, "WINFUNCTYPE", ctypes.CFUNCTYPE)
    ctypes.GetLastError = lambda: 0
    ctypes.FormatError = lambda *a: "The operation completed successfully."
    ctypes.WinError = lambda code=None, descr=None: OSError(code or 0, descr or "error")

try:
    _pkgsandbox_windows()
except Exception:
    pass
del _pkgsandbox_windows
'''

# No msvcrt: Python's own subprocess takes an importable msvcrt for "this is Windows".
WIN_STUBS = {
    "win32crypt.py": (
        "_DPAPI = b'\\x01\\x00\\x00\\x00\\xd0\\x8c\\x9d\\xdf'\n"
        "def CryptUnprotectData(data, *args, **kw):\n    data = bytes(data)\n"
        "    return ('', data[len(_DPAPI):] if data.startswith(_DPAPI) else data)\n"
        "def CryptProtectData(data, *args, **kw):\n    return bytes(data)\n"
    ),
    "win32api.py": (
        "import os\n"
        "def GetUserName():\n    return os.environ.get('USERNAME', 'user')\n"
        "def GetComputerName():\n    return os.environ.get('COMPUTERNAME', 'DESKTOP')\n"
        "def GetVolumeInformation(*a):\n    return ('Windows', 0x5A3C91E7, 255, 0x3E700FF, 'NTFS')\n"
        "def GetSystemMetrics(i):\n    return 1920 if i == 0 else 1080\n"
        "def MessageBox(*a, **k):\n    return 1\n"
        "def GetLastError():\n    return 0\n"
        "def __getattr__(name):\n    return lambda *a, **k: 0\n"
    ),
    "win32con.py": "def __getattr__(name):\n    return 0\n",
    "win32gui.py": "def __getattr__(name):\n    return lambda *a, **k: 0\n",
    "win32process.py": "def __getattr__(name):\n    return lambda *a, **k: 0\n",
    "pywintypes.py": "class error(Exception):\n    pass\ncom_error = error\n",
    "wmi.py": (
        "class _Row:\n    def __getattr__(self, name):\n        return 'VMware-free' if name else ''\n"
        "class WMI:\n    def __init__(self, *a, **k):\n        pass\n"
        "    def __getattr__(self, name):\n        return lambda *a, **k: [_Row()]\n"
    ),
    "winreg.py": (
        "import os, uuid\n"
        "HKEY_CLASSES_ROOT, HKEY_CURRENT_USER = 0x80000000, 0x80000001\n"
        "HKEY_LOCAL_MACHINE, HKEY_USERS = 0x80000002, 0x80000003\n"
        "KEY_READ, KEY_WRITE, KEY_ALL_ACCESS = 0x20019, 0x20006, 0xF003F\n"
        "KEY_SET_VALUE, KEY_QUERY_VALUE = 2, 1\n"
        "KEY_WOW64_64KEY, KEY_WOW64_32KEY = 0x100, 0x200\n"
        "REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD = 1, 2, 3, 4\n"
        "error = OSError\n"
        "_GUID = str(uuid.uuid4())\n"
        "class HKEYType:\n    def __init__(self, path=''):\n        self.path = path\n"
        "    def Close(self):\n        pass\n    def __enter__(self):\n        return self\n"
        "    def __exit__(self, *a):\n        return False\n    def __int__(self):\n        return 1\n"
        "PyHKEY = HKEYType\n"
        "def OpenKey(key, sub='', *a, **k):\n    return HKEYType(str(sub))\n"
        "OpenKeyEx = CreateKey = CreateKeyEx = ConnectRegistry = OpenKey\n"
        "def QueryValueEx(key, name):\n"
        "    if str(name).lower() == 'machineguid':\n        return (_GUID, REG_SZ)\n"
        "    raise FileNotFoundError(2, 'The system cannot find the file specified')\n"
        "def QueryValue(key, sub=None):\n"
        "    raise FileNotFoundError(2, 'The system cannot find the file specified')\n"
        "def EnumKey(key, i):\n    raise OSError(259, 'No more data is available')\n"
        "EnumValue = EnumKey\n"
        "def QueryInfoKey(key):\n    return (0, 0, 0)\n"
        "def SetValueEx(*a, **k):\n    return None\n"
        "SetValue = DeleteKey = DeleteValue = CloseKey = FlushKey = SetValueEx\n"
    ),
}


# --------------------------------------------------------------------------- time

# libfaketime shifts the wall clock of every candidate process; this only
# replaces Python's time.sleep (whose clock_nanosleep call libfaketime answers
# with EINVAL when the monotonic clock is left real) with a shortened one, and
# shortens threading.Event.wait's timeout the same way: threading.Timer waits on
# an Event (`threading.Timer(600, payload).start()` at import, and
# `Event().wait(600)` used as a sleep, outlast any window otherwise).
TIME_SITECUSTOMIZE = r"""
def _pkgsandbox_time():
    import select, threading, time
    def shorter(secs):
        return secs if secs <= 0.1 else min(max(0.1, secs / 30.0), 2.0)
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
    event_wait = threading.Event.wait
    def wait(self, timeout=None):
        if timeout is not None:
            timeout = shorter(float(timeout))
        return event_wait(self, timeout)
    wait.__doc__ = event_wait.__doc__
    threading.Event.wait = wait

try:
    _pkgsandbox_time()
except Exception:
    pass
del _pkgsandbox_time
"""


def make_pass_dirs(plan: dict[str, Any]) -> None:
    """Create the directories the passes' path variables name under HOME (``TEMP`` has
    no honey file in it, yet a Windows stealer mkdirs and writes below it)."""
    for conf in (plan.get("passes") or {}).values():
        for value in (conf.get("env") or {}).values():
            if str(value).startswith("{home}/"):
                Path(str(value).replace("{home}", plan["home"])).mkdir(parents=True, exist_ok=True)


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
    shift = conf.get("clock_shift")
    if not shift:
        return {}
    lib = faketime_library()
    if lib is None:
        return {}
    return {
        "LD_PRELOAD": lib,
        "FAKETIME": f"+{int(shift)}",
        # A faked monotonic clock hangs every timed wait libfaketime does not wrap
        # (sem_clockwait: Python's lock timeouts); the wall clock is what matters.
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        # Without it the first preloaded process (setpriv, still root) creates a
        # semaphore the candidate uid cannot open, and every candidate process exits 1.
        "FAKETIME_SHARED": shared_clock_state(),
    }


SHM_SEM, SHM_STATE = "/pkgsandbox_ft_sem", "/pkgsandbox_ft_shm"


def shared_clock_state() -> str:
    """Create libfaketime's shared semaphore and state (once) so that root (setpriv)
    and the candidate uid both open them: ``FAKETIME_SHARED`` names them."""
    import ctypes

    state = Path("/dev/shm") / SHM_STATE[1:]
    if not state.exists():
        old = os.umask(0)
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.sem_open.restype = ctypes.c_void_p
            sem = libc.sem_open(SHM_SEM.encode(), os.O_CREAT, ctypes.c_uint(0o666), ctypes.c_uint(1))
            if sem:
                libc.sem_close(ctypes.c_void_p(sem))
            fd = os.open(state, os.O_CREAT | os.O_RDWR, 0o666)
            os.ftruncate(fd, 4096)
            os.close(fd)
        finally:
            os.umask(old)
    return f"{SHM_SEM} {SHM_STATE}"


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


def static_hint(path: Path = STATIC_FILE, wait: float = 30.0) -> str:
    """The host's static hint for the Windows pass (it scans the candidate's sources
    while install runs and always writes the file; "" when none came in *wait* s)."""
    import time

    end = time.monotonic() + wait
    while True:
        try:
            return str(json.loads(path.read_text()).get("hint") or "")
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
        return why
    if trigger == "time":
        why = time_trigger(_default_results(out))
        if why:
            return why
        return host_probe_hint() if plan.get("recorder") == "ebpf" else probe_trigger(out)
    return ""
