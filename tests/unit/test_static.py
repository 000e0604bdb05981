"""The static second opinion: GuardDog's YARA rules over sources read in memory, and
how it may (only) raise an incomplete run to suspicious."""

from __future__ import annotations

import base64
import time
from pathlib import Path

from sandbox.judge.profiles import load_profile
from sandbox.judge.report import with_static_opinion
from sandbox.judge.static import RULE_ID, scan
from sandbox.models import Inventory, Report, Verdict
from tests.fixtures.builders import Randomised, build_wheel, setuptools_sdist


def _hidden_exec_sdist(tmp_path: Path) -> Path:
    r = Randomised()
    payload = base64.b64encode(f"open('/tmp/m-{r.name()}', 'w')".encode()).decode()
    body = f"import base64\nexec(base64.b64decode('{payload}'))\n"
    return setuptools_sdist(tmp_path, r.name("hid"), "1.0", r.name("mod"), "X = 1\n", setup_body=body)


def _report(verdict: Verdict, reason: str = "import phase error", modules: tuple[str, ...] = ()) -> Report:
    now = time.time()
    return Report(
        tool_version="t",
        target="x",
        started=now,
        finished=now,
        profile="default",
        image=None,
        artifacts=(),
        phases=(),
        summary=(),
        processes=(),
        events=(),
        findings=(),
        verdict=verdict,
        verdict_reason=reason,
        inventory=Inventory(modules=modules),
    )


def test_decoded_exec_in_setup_py_is_found_in_memory(tmp_path: Path) -> None:
    hits = scan(_hidden_exec_sdist(tmp_path))
    assert any(
        h.rule == "threat_runtime_obfuscation_base64exec" and h.path.endswith("setup.py") for h in hits
    )


def test_plain_code_has_no_hit(tmp_path: Path) -> None:
    r = Randomised()
    whl = build_wheel(tmp_path, r.name("ok"), "1.0", {"ok/__init__.py": "def add(a, b):\n    return a + b\n"})
    assert scan(whl) == []


def test_incomplete_run_with_a_hit_becomes_suspicious_with_static_evidence(tmp_path: Path) -> None:
    report = with_static_opinion(
        _report(Verdict.INCOMPLETE), _hidden_exec_sdist(tmp_path), load_profile("default")
    )
    assert report.verdict is Verdict.SUSPICIOUS
    (finding,) = [f for f in report.findings if f.rule_id == RULE_ID]
    assert all(e.syscall == "(static)" and e.detail.startswith("static: ") for e in finding.evidence)
    assert "import phase error" in report.verdict_reason  # why it could not look stays said


def test_static_leaves_a_plain_run_that_looked_and_obeys_a_profile_that_disables_it(tmp_path: Path) -> None:
    sdist = _hidden_exec_sdist(tmp_path)
    clean = _report(Verdict.CLEAN, "no finding")
    plain = build_wheel(
        tmp_path, "plain", "1.0", {"plain/__init__.py": "import base64\nX = base64.b64decode('')\n"}
    )
    assert with_static_opinion(clean, plain, load_profile("default")) is clean
    profile = load_profile("default").model_copy(deep=True)
    profile = profile.model_copy(update={"rules": profile.rules.model_copy(update={"disabled": (RULE_ID,)})})
    incomplete = _report(Verdict.INCOMPLETE)
    assert with_static_opinion(incomplete, sdist, profile).verdict is Verdict.INCOMPLETE
    assert with_static_opinion(clean, sdist, profile) is clean


def test_rules_noisy_on_benign_code_stay_silent_unless_measured(tmp_path: Path) -> None:
    from sandbox.judge.static import NOISY_ON_BENIGN

    whl = build_wheel(tmp_path, "uni", "1.0", {"uni/__init__.py": "HOST = 'p\u0430ypal'\n"})
    measured = {h.rule for h in scan(whl, all_rules=True)}
    assert measured & NOISY_ON_BENIGN, measured  # the rule exists and matches this file
    assert scan(whl) == []  # but does not speak for a run


def test_a_capped_import_gets_no_static_opinion_from_a_test_suite(tmp_path: Path) -> None:
    # sglang's wheel: its cap left 1023 deep modules out and a test helper under
    # sglang/test/ posts the hostname; the import phase never imports a test suite,
    # capped or not, so that file is no "code that never ran because of the cap"
    from sandbox.models import Phase, PhaseResult, PhaseStatus

    r = Randomised()
    name = r.name("big")
    code64 = base64.b64encode(b"X = 1").decode()
    payload = f"import base64\nexec(base64.b64decode('{code64}'))\n"
    capped = _report(Verdict.CLEAN, "no finding").model_copy(
        update={
            "phases": (
                PhaseResult(phase=Phase.IMPORT, status=PhaseStatus.OK, duration=1.0, modules_capped=9),
            )
        }
    )
    in_suite = build_wheel(
        tmp_path, name, "1.0", {f"{name}/__init__.py": "", f"{name}/test/helpers.py": payload}
    )
    assert with_static_opinion(capped, in_suite, load_profile("default")).verdict is Verdict.CLEAN
    deep = tmp_path / "deep"
    deep.mkdir()
    beyond = build_wheel(deep, name, "1.0", {f"{name}/__init__.py": "", f"{name}/zz/deep.py": payload})
    assert with_static_opinion(capped, beyond, load_profile("default")).verdict is Verdict.SUSPICIOUS
    # a run that could not look still hears the test suite's sources
    incomplete = _report(Verdict.INCOMPLETE)
    assert with_static_opinion(incomplete, in_suite, load_profile("default")).verdict is Verdict.SUSPICIOUS


def _packed(r: Randomised) -> str:
    """A module as packers write it (mevguard, dccsx): the decoders reached through
    ``__import__`` in a lambda, the blob reversed, run through a variable."""
    import zlib

    code = f"open('/tmp/m-{r.name()}', 'w')\n".encode() + r.name().encode() * 400
    blob = base64.b64encode(zlib.compress(code, 0))[::-1].decode()
    return (
        "_ = lambda __ : __import__('zlib').decompress(__import__('base64').b64decode(__[::-1]));"
        f"exec((_)(b'{blob}'))\n"
    )


def test_a_clean_run_whose_module_runs_packed_code_is_suspicious_on_static_evidence(tmp_path: Path) -> None:
    # the import ran it and it did nothing we could see (mevguard's payload waits for a
    # 64-hex private key): the packing is what a reviewer would stop at
    r = Randomised()
    name = r.name("pk")
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": _packed(r)})
    assert "threat_runtime_obfuscation_import_exec" not in {h.rule for h in scan(whl)}  # GuardDog's misses it
    report = with_static_opinion(_report(Verdict.CLEAN, "no finding", (name,)), whl, load_profile("default"))
    assert report.verdict is Verdict.SUSPICIOUS
    (finding,) = [f for f in report.findings if f.rule_id == RULE_ID]
    assert "pkgsandbox_packed_exec" in finding.message
    assert all(e.syscall == "(static)" and e.path == f"{name}/__init__.py" for e in finding.evidence)
    assert "saw no harm" in report.verdict_reason


def test_packed_code_in_a_test_suite_does_not_speak_for_a_clean_run(tmp_path: Path) -> None:
    # a scanner's or an obfuscator's own test fixtures: never imported by the run
    r = Randomised()
    name = r.name("pk")
    files = {f"{name}/__init__.py": "", f"{name}/tests/test_unpack.py": _packed(r)}
    whl = build_wheel(tmp_path, name, "1.0", files)
    clean = _report(Verdict.CLEAN, "no finding", (name, f"{name}.tests.test_unpack"))
    assert with_static_opinion(clean, whl, load_profile("default")) is clean
    # the same file as a module of the package speaks
    deep = tmp_path / "deep"
    deep.mkdir()
    whl = build_wheel(deep, name, "1.0", {f"{name}/__init__.py": "", f"{name}/unpack.py": _packed(r)})
    clean = _report(Verdict.CLEAN, "no finding", (name, f"{name}.unpack"))
    assert with_static_opinion(clean, whl, load_profile("default")).verdict is Verdict.SUSPICIOUS


def test_only_what_install_put_in_place_speaks_for_a_clean_run(tmp_path: Path) -> None:
    # Cython's sdist ships runtests.py (base64 and exec) at its root, beside the package:
    # install never puts it in place, the run never imports it
    import io
    import tarfile

    r = Randomised()
    name = r.name("tool")
    hidden = b"import base64\nexec(base64.b64decode('WCA9IDE='))\n"
    sdist = setuptools_sdist(tmp_path, name, "1.0", name, "X = 1\n")
    with tarfile.open(sdist) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()]  # type: ignore[union-attr]
    root = members[0][0].name.split("/")[0]
    with tarfile.open(sdist, "w:gz") as tar:
        for m, data in members:
            tar.addfile(m, io.BytesIO(data) if m.isfile() else None)
        extra = tarfile.TarInfo(f"{root}/runtests.py")
        extra.size = len(hidden)
        tar.addfile(extra, io.BytesIO(hidden))
    clean = _report(Verdict.CLEAN, "no finding", (name,))
    assert with_static_opinion(clean, sdist, load_profile("default")) is clean
    # the same file installed as a module speaks
    runner = _report(Verdict.CLEAN, "no finding", (name, "runtests"))
    assert with_static_opinion(runner, sdist, load_profile("default")).verdict is Verdict.SUSPICIOUS


def test_escaped_builtin_names_are_found(tmp_path: Path) -> None:
    # Hyperion's tail: globals()['\x65\x76\x61\x6c'](...) — no reader sees "eval"
    r = Randomised()
    name = r.name("hy")
    body = "X = globals()['" + "".join(f"\\x{ord(c):02x}" for c in "eval") + "']\n"
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": body})
    assert "pkgsandbox_escaped_builtin" in {h.rule for h in scan(whl)}
    report = with_static_opinion(_report(Verdict.INCOMPLETE), whl, load_profile("default"))
    assert report.verdict is Verdict.SUSPICIOUS


def test_a_hard_coded_webhook_secret_speaks_but_a_docstring_example_does_not(tmp_path: Path) -> None:
    import random
    import string

    r = Randomised()
    name = r.name("hook")
    hook_id = "".join(random.choices(string.digits, k=19))
    secret = "".join(random.choices(string.ascii_letters + string.digits + "_-", k=68))
    live = f'URL = "https://discord.com/api/webhooks/{hook_id}/{secret}"\n'
    doc = '"""Example: Webhook.from_url("https://discord.com/api/webhooks/123456/abcdef")"""\n'
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": doc, f"{name}/core.py": live})
    hits = [h for h in scan(whl) if h.rule == "pkgsandbox_messenger_secret"]
    assert [h.path for h in hits] == [f"{name}/core.py"]
    report = with_static_opinion(
        _report(Verdict.CLEAN, "no finding", (name, f"{name}.core")), whl, load_profile("default")
    )
    assert report.verdict is Verdict.SUSPICIOUS


def test_decode_and_run_on_one_line_speaks_but_apart_in_a_file_does_not(tmp_path: Path) -> None:
    # playwright's page.py: base64.b64decode of a screenshot, and a "$eval()" comment;
    # GuardDog's base64exec matches that file, which would make a top-1000 project suspicious
    r = Randomised()
    name = r.name("pw")
    apart = (
        "import base64\n\n# $eval() has the strict option\n"
        "def shot(result):\n    return base64.b64decode(result['binary'])\n"
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": apart})
    assert "threat_runtime_obfuscation_base64exec" in {h.rule for h in scan(whl, all_rules=True)}
    clean = _report(Verdict.CLEAN, "no finding", (name,))
    assert with_static_opinion(clean, whl, load_profile("default")) is clean
    for i, line in enumerate(
        (
            "p = base64.b64decode(S); exec(p)\n",
            "exec(compile(zlib.decompress(base64.b64decode(S)), '<s>', 'exec'))\n",
        )
    ):
        d = tmp_path / str(i)
        d.mkdir()
        one = build_wheel(d, name, "1.0", {f"{name}/__init__.py": f"import base64, zlib\nS = b''\n{line}"})
        judged = with_static_opinion(clean, one, load_profile("default"))
        assert judged.verdict is Verdict.SUSPICIOUS and "pkgsandbox_decode_exec" in judged.verdict_reason, (
            line
        )
