"""The Windows pass's look-alike (runs inside the sandbox only; standard library only):
the ``sitecustomize`` that gives the candidate's own frames a Windows view, and the stub
modules (``winreg``, ``win32crypt``, ``win32api`` …) put first on its PYTHONPATH.
:mod:`sandbox.agent.passes` writes them out; see its docstring for the passes."""

from __future__ import annotations

WIN_SITECUSTOMIZE = r'''
"""Windows look-alike for this interpreter (a developer's Windows box, seen from Python)."""
DPAPI = b"\x01\x00\x00\x00\xd0\x8c\x9d\xdf"  # a DPAPI blob's version and provider GUID start


def _dt_windows():
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
    trusted = (*lib, os.path.join(here, ""), "/usr/local/lib/devtools/")
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
            return lambda: sys.__dict__["_dt_winver"]

    import collections
    sys._dt_winver = collections.namedtuple(
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
    _dt_windows()
except Exception:
    pass
del _dt_windows
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
