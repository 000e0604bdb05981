"""A second opinion for code that never ran: GuardDog's YARA source rules (and a few
of ours, ``yara/pkgsandbox/``) over the candidate's own files, read in memory on the
host (nothing is unpacked or executed).

Used when a run could not look (verdict ``incomplete``), and, with only the rules that
stay silent on benign code (:data:`SPEAKS_ALONE`), for a clean run whose installed
sources hide packed code or a collector's secret. A hit raises the run to
``suspicious`` with evidence marked ``static`` (``syscall="(static)"``), never to
``malicious``: a pattern in source is not behaviour. The rules and why these ones:
``sandbox/judge/yara/README.md``.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sandbox.agent.protocol import TEST_PART
from sandbox.errors import InputError
from sandbox.fetch.archive import iter_text_members
from sandbox.judge.layers import readable
from sandbox.models import Evidence, Finding, Phase, Severity

RULES_DIR = Path(__file__).parent / "yara" / "guarddog"
OWN_RULES_DIR = Path(__file__).parent / "yara" / "pkgsandbox"  # ours, same meta keys
RULE_ID = "PS040"
MAX_HITS = 20
_SOURCE = re.compile(r"\.(?:py|pyi|pyx|pth)$")
# Rules that matched 2 or more of 295 benign files (the sdist and a wheel of each of the
# 150 most-downloaded projects; benchmarks/bench_static.py, 2026-12-01): they describe
# what popular code does too (reading files, network calls, unicode, hooks), so they do
# not speak for a run that could not look. Every rule kept matched at most one.
NOISY_ON_BENIGN = frozenset(
    {
        "threat_filesystem_read",  # 43 benign files
        "threat_runtime_obfuscation_unicode",  # 24
        "threat_network_exfiltration",  # 20
        "threat_process_download_exec",  # 11
        "threat_filesystem_autostart",  # 8
        "threat_network_outbound_shady_links",  # 7
        "threat_runtime_obfuscation_steganography",  # 7
        "threat_process_hooks",  # 6
        "threat_runtime_dynamic_loader",  # 5
        "threat_process_memory",  # 5
        "threat_runtime_enumeration",  # 3
        "threat_filesystem_destruction",  # 2
    }
)


# What speaks against the bait stage's word (judge/report.py): a downloader that decodes
# or unwraps its answer before running it, and a setup.py that reaches the network at
# install (the classic install-time beacon; a PoC that only GETs shows nothing else).
DECODE_RULES = frozenset(
    {
        "threat_setup_network_in_install",
        "threat_runtime_obfuscation_base64exec",
        "threat_runtime_obfuscation_general",
        "threat_runtime_obfuscation_import_exec",
        "threat_runtime_obfuscation_chr",
        "threat_runtime_obfuscation_api",
        "threat_runtime_obfuscation_pyarmor",
        "threat_process_powershell_encoded",
        "pkgsandbox_packed_exec",
        "pkgsandbox_escaped_builtin",
        "pkgsandbox_decode_exec",
    }
)
# The rules precise enough to speak for a run that looked and saw nothing (report.py
# ``_hidden_from_the_run``): code packed to hide it from review, and a collector's
# secret (a webhook's, a bot's) in the sources. A payload kept in a function the calls
# hand the wrong argument, or gated on a machine we do not emulate, shows nothing
# when it runs; these say it is there. Each matched no installed file outside a test
# suite of the 1000 most-downloaded projects (sdist and wheel, 1907 files;
# benchmarks/bench_static.py --paths, 2026-12-03). GuardDog's base64exec did (a
# b64decode anywhere and an eval( anywhere: playwright's page.py, a "$eval()" comment):
# ours wants both on one line.
SPEAKS_ALONE = frozenset(
    {
        "threat_runtime_obfuscation_import_exec",
        "pkgsandbox_decode_exec",
        "pkgsandbox_packed_exec",
        "pkgsandbox_escaped_builtin",
        "pkgsandbox_messenger_secret",
    }
)


@dataclass(frozen=True)
class StaticHit:
    """One rule matching one file of the candidate."""

    rule: str
    description: str
    severity: str
    path: str
    excerpt: str


@dataclass(frozen=True)
class _Rule:
    name: str
    description: str
    severity: str
    include: tuple[str, ...]


_RULE_NAME = re.compile(r"^rule\s+(\w+)", re.MULTILINE)


@cache
def _compiled(only: frozenset[str] | None = None) -> tuple[Any, dict[str, _Rule]]:
    """The rules (the files defining those in *only*, when given: a clean run's opinion
    then scans with five rules, not forty)."""
    import yara  # a maintained engine for exactly this; imported only when a run needs it

    # by file: their `include "x.meta"` lines resolve next to them
    files = sorted([*RULES_DIR.glob("*.yar"), *OWN_RULES_DIR.glob("*.yar")])
    if only is not None:
        files = [p for p in files if set(_RULE_NAME.findall(p.read_text())) & only]
    rules = yara.compile(filepaths={p.stem: str(p) for p in files})
    meta: dict[str, _Rule] = {}
    for r in rules:
        m = r.meta
        if "identifies" not in m:
            continue  # a shared private pattern (*.meta), not a verdict of its own
        meta[r.identifier] = _Rule(
            name=r.identifier,  # several rules share one "identifies"; the name is unique
            description=str(m.get("description", "")),
            severity=str(m.get("severity", "medium")),
            include=tuple(g.strip() for g in str(m.get("path_include", "*.py")).split(",") if g.strip()),
        )
    return rules, meta


def _included(path: str, globs: tuple[str, ...]) -> bool:
    base = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(path, g) or fnmatch.fnmatchcase(base, g) for g in globs)


Sources = list[tuple[str, bytes]]


def sources(artifact: Path) -> Sources:
    """The Python sources of a wheel or sdist (``setup.py`` included), read in memory:
    once per run, for every scan of them."""
    return list(iter_text_members(artifact, lambda n: bool(_SOURCE.search(n))))


def scan(
    artifact: Path,
    *,
    all_rules: bool = False,
    read: Sources | None = None,
    only: frozenset[str] | None = None,
) -> list[StaticHit]:
    """Rule hits in the Python sources of a wheel or sdist (``setup.py`` included; *read*
    when :func:`sources` already has them); the rules noisy on benign code only with
    *all_rules* (to measure them); with *only*, those rules (and what shares their files)."""
    rules, meta = _compiled(only)
    hits: list[StaticHit] = []
    for name, data in sources(artifact) if read is None else read:
        for match in rules.match(data=data, timeout=10):
            info = meta.get(match.rule)
            if info is None or not _included(name, info.include):
                continue
            if not all_rules and info.name in NOISY_ON_BENIGN:
                continue
            excerpt = ""
            for s in match.strings[:1]:
                for inst in s.instances[:1]:
                    excerpt = bytes(inst.matched_data[:160]).decode("utf-8", "replace")
            hits.append(StaticHit(info.name, info.description, info.severity, name, excerpt))
    return hits


def module_of(member: str) -> str:
    """The dotted module a wheel member is (``pkg/sub/__init__.py`` → ``pkg.sub``)."""
    parts = member.rsplit(".", 1)[0].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def in_test_suite(member: str) -> bool:
    """Whether a file of the archive sits in a test suite below its top (``pkg/tests/``,
    ``pkg/test_x.py``): what the import phase never imports, capped or not."""
    parts = module_of(member).split(".")
    return any(TEST_PART.match(p) for p in parts[1:])


def installed_as(member: str, modules: frozenset[str]) -> bool:
    """Whether an archive member is one of the installed *modules* (an sdist's
    ``name-1.0/src/pkg/mod.py`` is ``pkg.mod``), or the sdist's own ``setup.py``, which
    install ran: not a tool, test runner or example that ships beside the package
    (Cython's sdist has a ``runtests.py`` at its root)."""
    parts = module_of(member).split(".")
    if len(parts) == 2 and parts[1] == "setup":
        return True
    return any(".".join(parts[i:]) in modules for i in range(len(parts)))


def second_opinion(
    artifact: Path,
    only: frozenset[str] | None = None,
    ran: frozenset[str] = frozenset(),
    *,
    suites: bool = True,
    what: str = "code that never ran",
    within: frozenset[str] | None = None,
) -> tuple[Finding | None, str]:
    """A MEDIUM finding (static evidence) when the rules (those in *only*, if given)
    hit in a file other than the modules that *ran* (imported: judged by what they did)
    — and, without *suites*, other than a test suite's —, and a note on what was
    scanned; (None, note) when nothing hit or the archive could not be read. With
    *within*, only the files install put in place as those modules (and setup.py)."""
    try:
        hits = [
            h
            for h in scan(artifact, only=only)
            if (only is None or h.rule in only)
            and module_of(h.path) not in ran
            and (suites or not in_test_suite(h.path))
            and (within is None or installed_as(h.path, within))
        ]
    except InputError as exc:
        return None, f"static second opinion: not scanned ({exc.message})"
    except Exception as exc:  # a rule engine failure must not lose the run's report
        return None, f"static second opinion: failed ({type(exc).__name__}: {exc})"
    if not hits:
        return None, f"static second opinion: no rule matched {artifact.name}"
    ranked = sorted(hits, key=lambda h: (h.severity != "high", h.rule, h.path))
    evidence = tuple(
        Evidence(
            phase=Phase.INSTALL,
            pid=0,
            time=0.0,
            syscall="(static)",
            path=h.path,
            data=h.excerpt or None,
            detail=f"static: {h.rule} ({h.severity}): {h.description}",
        )
        for h in ranked[:MAX_HITS]
    )
    rules = sorted({h.rule for h in hits})
    finding = Finding(
        rule_id=RULE_ID,
        title="static second opinion",
        severity=Severity.MEDIUM,
        phase=Phase.INSTALL,
        message=f"{what} matches {len(rules)} source rule(s): {', '.join(rules[:6])}",
        evidence=evidence,
    )
    return finding, f"static second opinion: {len(hits)} hit(s) in {artifact.name}"


# Code that only Windows runs: ``if os.name == "nt":``, ``sys.platform == "win32"`` …
_WINDOWS_GATE = re.compile(
    rb"""\bos\.name\s*==\s*['"]nt['"]|['"]nt['"]\s*==\s*os\.name"""
    rb"""|\bsys\.platform\s*(?:==\s*['"]win32['"]|\.startswith\(\s*['"]win)"""
    rb"""|\bplatform\.system\(\)\s*==\s*['"]Windows['"]"""
)
# The noisy rules that speak for a Windows-gated setup.py: it downloads and runs
# something, or installs an autostart there (a benign build script gated on Windows
# compiles and copies files; one that fetches a prebuilt library does not run it).
GATED_SETUP_RULES = frozenset({"threat_process_download_exec", "threat_filesystem_autostart"})


def _gated_setups(artifact: Path) -> set[str]:
    """The candidate's top-level setup.py files that hold code gated on Windows."""

    def want(name: str) -> bool:
        return name.rsplit("/", 1)[-1] == "setup.py" and name.count("/") <= 1

    return {name for name, data in iter_text_members(artifact, want) if _WINDOWS_GATE.search(data)}


# A Windows gate in any spelling once literals are joined (``'n'+'t'``): a comparison
# with the platform's names, a ``win`` prefix test, a winreg import; and in the same
# file a store a Windows stealer takes (browser profiles, Discord's leveldb, wallets,
# Telegram's tdata). Gate and store together are a stealer that only a Windows box wakes:
# none of 13,831 files (two site-packages with numpy, pandas, prompt_toolkit …, Debian's
# dist-packages, the stdlib) holds both.
_ANY_WINDOWS_GATE = re.compile(
    rb"""(?:==|!=)\s*['"](?:nt|win32|Windows)['"]|['"](?:nt|win32|Windows)['"]\s*(?:==|!=)"""
    rb"""|\.startswith\(\s*['"][Ww]in|^\s*import\s+_?winreg\b|^\s*from\s+_?winreg\s+import""",
    re.M,
)
_WINDOWS_STORE = re.compile(
    rb"Local State|Login Data|Local Storage|leveldb|Web Data|Exodus|Electrum|\btdata\b|[Dd]iscord"
    rb"|BraveSoftware|Opera Software|\.ROBLOSECURITY|\bwallet|Cookies['\"\\/]"
)


WINDOWS_STORE_PREFIX = "the candidate's sources gate a browser, messenger or wallet store on Windows"
TIME_PREFIX = "the candidate's sources compare the clock with a date"


@functools.lru_cache(maxsize=512)
def _layers(raw: bytes) -> tuple[bytes, ...]:
    """:func:`readable` of one source, decoded once for every hint of the run (the
    Windows, ci and time hints read the same sources while install runs)."""
    return tuple(readable(raw))


def _windows_stealer(read: Sources) -> str:
    """The first source file (or what a literal blob in it decodes to) that holds both
    a Windows gate and a Windows stealer's store ("" when none does)."""
    for name, raw in read:
        for depth, data in enumerate(_layers(raw)):
            if _ANY_WINDOWS_GATE.search(data) and _WINDOWS_STORE.search(data):
                return name if depth == 0 else f"{name} (decoded)"
    return ""


def pass_hint(artifact: Path, read: Sources | None = None) -> str:
    """Why the sources call for the Windows pass even when the default pass saw
    nothing ("" when they do not): a kept rule matched (obfuscated exec, exfiltration
    to a messenger …), and such code is often gated on ``os.name == "nt"``; or a
    setup.py gated on Windows downloads and runs something there (rules too noisy on
    benign code to speak alone, not in a build script only Windows runs)."""
    try:
        hits = scan(artifact, all_rules=True, read=read)
        kept = sorted({h.rule for h in hits if h.rule not in NOISY_ON_BENIGN})
        if kept:
            return f"static rules matched the candidate's sources ({', '.join(kept[:4])})"
        gated = _gated_setups(artifact) if any(h.rule in GATED_SETUP_RULES for h in hits) else set()
        stealer = _windows_stealer(sources(artifact) if read is None else read)
    except Exception:
        return ""
    if stealer:
        return f"{WINDOWS_STORE_PREFIX} ({stealer})"
    rules = sorted({h.rule for h in hits if h.rule in GATED_SETUP_RULES and h.path in gated})
    if not rules:
        return ""
    return f"static rules matched the candidate's sources (setup.py gated on Windows: {', '.join(rules[:4])})"


# A CI job's variables, named by code that means to act only inside one (a CI payload
# steals the job's tokens there): the providers' markers and tokens, any variable of the
# families the ci pass sets (``GITHUB_*``, ``RUNNER_*``, ``ACTIONS_*``: a gate on
# ``RUNNER_OS`` wakes there as well as one on ``GITHUB_ACTIONS``) spelt as a string or a
# shell ``$NAME`` (a constant named ``GITHUB_URL`` is no variable), and ``CI`` read from
# the environment (a bare "CI" string is everywhere).
_CI_VARIABLE = re.compile(
    rb"\b(GITHUB_ACTIONS|ACTIONS_RUNTIME_TOKEN|ACTIONS_ID_TOKEN_REQUEST(?:_TOKEN|_URL)?|GITHUB_TOKEN"
    rb"|GITLAB_CI|CI_JOB_TOKEN|CIRCLECI|TRAVIS|JENKINS_URL|BUILDKITE|TF_BUILD)\b"
    rb"""|(?:['"]|\$\{?)((?:GITHUB|RUNNER|ACTIONS)_[A-Z0-9_]+)\b"""
    rb"""|environ\.get\(\s*['"](CI)['"]|environ\[\s*['"](CI)['"]\s*\]|getenv\(\s*['"](CI)['"]"""
    rb"""|['"](CI)['"]\s+(?:not\s+)?in\s+(?:os\.)?environ\b"""
)
# Code that asks the environment for a name it computes, or walks the whole of it, can
# look for a CI job without spelling a variable (``"GITHUB_" + "ACTIONS"``, a decoded
# name, a prefix test over ``os.environ``): a lookup whose key is not one plain string
# literal (f-strings and concatenations count as computed), iteration over the mapping, or the process's
# raw environment block. Broad on benign code too, which costs a pass, never a finding.
_ENV_COMPUTED = re.compile(
    rb"""(\bos\.)?\b(?:environb?\.get|getenvb?|environb?\.pop|environb?\.setdefault)\("""
    rb"""(?!\s*[rbuRBU]{0,2}(['"])[^'"\\\n]*\2\s*[,)])"""
    rb"""|(\bos\.)?\benvironb?\[(?!\s*[rbuRBU]{0,2}(['"])[^'"\\\n]*\4\s*\])"""
    rb"""|(\bos\.)?\benvironb?\.(?:items|keys|values)\(\s*\)"""
    rb"""|\bfor[ \t]+[\w \t,()]+\bin[ \t]+(?:os\.)?environb?\b"""
    rb"""|/proc/(?:self|thread-self|\d+)/environ"""
)
# The same reach by other routes: os's namespace read reflectively (``getattr(os, name)``
# with a computed name or "environ"/"getenv", ``vars(os)``, ``os.__dict__``), os.environ
# handed whole to a function or walked by one (``dict(os.environ)`` then a computed
# ``.get``, ``filter(f, os.environ)``, ``str(os.environ)``), a membership test of a
# computed name, the environment block's path assembled from parts, or a program that
# prints the environment. Plain ``dict(os.environ, LANG="C")`` and ``os.environ.copy()``
# (a child's environment, everywhere in benign code) only count by what is then looked
# up in the copy (:func:`_computed_env` follows names bound to them).
_ENV_REFLECTIVE = re.compile(
    rb"""\bgetattr\(\s*os\s*,(?!\s*[rbuRBU]{0,2}(['"])(?!(?:environb?|getenvb?)['"])[^'"\\\n]*\1\s*[,)])"""
    rb"""|\bvars\(\s*os\s*\)|\bos\.__dict__"""
    rb"""|\b(?:str|repr|list|tuple|set|sorted|iter|filter|map|any|all|next|json\.dumps)\([^()\n]*"""
    rb"""\bos\.environb?\s*\)"""
    rb"""|\b(?:map|filter)\([^\n]*,\s*os\.environb?\s*\)|\bin[ \t]+\w+\(\s*os\.environb?\s*\)"""
    rb"""|\bos\.environb?\.__\w+__\b|\b(?:import_module|__import__)\(\s*['"]os['"]"""
    rb"""|['"](?:[^'"\n]*(?:%[sd]|\{[\w.]*\}))?/environ['"]|['"]/proc(?:/(?:self|thread-self))?/?['"]"""
    rb"""|\b(?:check_output|getoutput|getstatusoutput|run|Popen|call|check_call|popen|system)\("""
    rb"""\s*\[?\s*[rbuRBU]{0,2}['"](?:/usr/bin/|/bin/)?(?:printenv|env|set)(?:\s*[|;&>]|['"]\s*(?:\]\s*[,)]|\)))"""
    rb"""|['"](?:printenv|env)\s*[|>]"""
)
# ``k in os.environ``: computed unless the left side is one plain string literal
_MEMBER = re.compile(rb"""\bin[ \t]+(os\.)?environb?\b(?!\s*[.\[(])""")
_PLAIN_LEFT = re.compile(
    rb"""(?:^|[(\[,=:]|\b(?:if|elif|while|and|or|not|return|assert))"""
    rb"""\s*[rbuRBU]{0,2}(['"])[^'"\\\n]*\1\s*(?:not\s+)?$"""
)
# a name bound to a copy of os.environ: ``env = dict(os.environ)``, ``e = os.environ.copy()``
_ALIAS = re.compile(
    rb"""^[ \t]*(\w+)[ \t]*=[ \t]*(?:dict\([ \t]*)?(?:os\.)?environb?(?:\.copy\(\s*\))?"""
    rb"""[ \t]*\)?[ \t]*(?:#.*)?$""",
    re.M,
)
# a bare ``environ`` is os's only where the file imports it so (WSGI's is a dict)
_FROM_OS_ENVIRON = re.compile(rb"^\s*from\s+os\s+import\s[^\n]*\benvironb?\b", re.M)


def _lookups(name: bytes) -> re.Pattern[bytes]:
    """Computed lookups in a copy of the environment bound to *name*."""
    n = re.escape(name)
    return re.compile(
        rb"\b" + n + rb"""\.(?:get|pop|setdefault)\((?!\s*[rbuRBU]{0,2}(['"])[^'"\\\n]*\1\s*[,)])"""
        rb"|\b" + n + rb"""\[(?!\s*[rbuRBU]{0,2}(['"])[^'"\\\n]*\2\s*\])"""
        rb"|\b" + n + rb"""\.(?:items|keys|values)\(\s*\)"""
        rb"""|\bfor[ \t]+[\w \t,()]+\bin[ \t]+""" + n + rb"\b"
    )


_OS_AS = re.compile(rb"^[ \t]*import[ \t]+(?:[\w.]+[ \t]*,[ \t]*)*os[ \t]+as[ \t]+(\w+)", re.M)
_FROM_OS_AS = re.compile(
    rb"^[ \t]*from[ \t]+os[ \t]+import[^\n]*\b(environb?|getenvb?)[ \t]+as[ \t]+(\w+)", re.M
)
_GETENV_AS = re.compile(rb"^[ \t]*(\w+)[ \t]*=[ \t]*os\.(getenvb?)[ \t]*(?:#.*)?$", re.M)
_SPREAD = re.compile(rb"\{\s*\*\*\s*os\.(environb?)\s*\}")


def _canonical_env(data: bytes) -> bytes:
    """*data* with os's aliases spelt as os's own names (``import os as o``, ``from os
    import environ as E``, ``g = os.getenv``) and ``{**os.environ}`` as ``dict(os.environ)``,
    so the environment lookups below see through them."""
    for m in _OS_AS.finditer(data):
        data = re.sub(rb"\b" + re.escape(m.group(1)) + rb"\.(?=environ|getenv)", b"os.", data)
    renames = [(m.group(1), m.group(2)) for m in _FROM_OS_AS.finditer(data)]
    renames += [(m.group(2), m.group(1)) for m in _GETENV_AS.finditer(data)]
    for what, name in renames:  # the binding lines themselves are followed by no . ( [
        data = re.sub(rb"(?<!\.)\b" + re.escape(name) + rb"\b(?=\s*[.(\[])", b"os." + what, data)
    return _SPREAD.sub(rb"dict(os.\1)", data)


def _computed_env(data: bytes) -> str:
    """The first environment lookup by a computed name in *data* ("" when none)."""
    data = _canonical_env(data)
    bare_ok: bool | None = None
    for m in _ENV_COMPUTED.finditer(data):
        text = m.group(0)
        bare = m.group(1) is None and m.group(3) is None and m.group(5) is None
        if bare and not text.startswith((b"/proc", b"for")) and b"getenv" not in text:
            if bare_ok is None:
                bare_ok = _FROM_OS_ENVIRON.search(data) is not None
            if not bare_ok:
                continue
        return _shown(text)
    reflective = _ENV_REFLECTIVE.search(data)
    if reflective:
        return _shown(reflective.group(0))
    for m in _MEMBER.finditer(data):
        if m.group(1) or _FROM_OS_ENVIRON.search(data):
            shown = _member(data, m)
            if shown:
                return shown
    for alias in _ALIAS.finditer(data):
        name = alias.group(1)
        if name in (b"environ", b"environb"):
            continue
        member = re.compile(rb"\bin[ \t]+" + re.escape(name) + rb"\b(?!\s*[.\[(])")
        for m in member.finditer(data, alias.end()):
            shown = _member(data, m)
            if shown:
                return shown
        for m in _lookups(name).finditer(data, alias.end()):
            if m.group(0).endswith(b"[") and _STORE.match(data, m.end()):
                continue  # ``env[name] = value``: a child's environment being built
            return _shown(alias.group(0).strip() + b"; " + m.group(0))
    return ""


def _member(data: bytes, m: re.Match[bytes]) -> str:
    """``X in <environment>`` at *m*, shown, when X is not one plain string literal."""
    start = data.rfind(b"\n", 0, m.start()) + 1
    left = data[start : m.start()].rstrip()
    if not left or _PLAIN_LEFT.search(left) or left.count(b"'") % 2 or left.count(b'"') % 2:
        return ""  # a plain literal's membership, or words inside a string
    return _shown(data[start : m.end()].strip())


_STORE = re.compile(rb"[^\]\n]*\]\s*=(?!=)")


def _shown(text: bytes) -> str:
    """What the hint quotes of a match: one line, 40 characters."""
    return " ".join(text.decode("utf-8", "replace").split())[:40]


CI_PREFIX = "the candidate's sources name CI variables"
CI_COMPUTED_PREFIX = "the candidate's sources read the environment by computed names"


def ci_hint(artifact: Path, read: Sources | None = None) -> str:
    """Why the ``ci`` pass runs: the candidate's sources (read in memory, or *read*) name
    a CI job's variable, or read the environment by a computed name ("" when neither,
    or the archive could not be read). Obfuscated code (kept static rules, the Windows
    pass's hint) does not run it: 109 of the 150 real releases match those, each would
    pay one more startup, import and exercise (an sdist a re-install), and the test
    suite's hostile fixtures with them. A gate inside ``exec`` of a literal blob is read
    decoded (:func:`sandbox.judge.layers.readable`); one decrypted or fetched at run
    time stays unseen."""
    found: dict[str, str] = {}
    computed = ""
    try:
        for name, raw in sources(artifact) if read is None else read:
            # literals joined ("GITHUB_" + "ACTIONS"), then what blobs decode to: a gate
            # inside exec(b64decode(…)) is read as the code it is (sandbox/judge/layers.py)
            for depth, data in enumerate(_layers(raw)):
                where = name if depth == 0 else f"{name} (decoded)"
                for m in _CI_VARIABLE.finditer(data):
                    var = next(g for g in m.groups() if g).decode()
                    found.setdefault(var, where)
                if not computed:
                    hit = _computed_env(data)
                    computed = f"{hit} in {where}" if hit else ""
    except Exception:
        return ""
    if found:
        shown = ", ".join(f"{v} in {found[v]}" for v in sorted(found)[:3])
        return f"{CI_PREFIX} ({shown})"
    if computed:
        return f"{CI_COMPUTED_PREFIX} ({computed})"
    return ""


# The clock compared with a literal date: ``time.time() > 1790000000``,
# ``datetime.now() > datetime(2026, 3, 1)``, ``date.today() >= date(2026, 3, 1)`` (either
# side first). None of 13,831 benign files (two site-packages, Debian's, the stdlib) does.
_NOW = rb"(?:time\.time\(\)|(?:datetime\.)?(?:datetime\.)?(?:now|today|utcnow)\([^()]*\)|date\.today\(\))"
_DATE = rb"(?:\d{9,10}(?:\.\d+)?|(?:datetime\.)?(?:datetime|date)\(\s*20\d\d\s*,)"
_DATE_BEFORE = rb"(?:\d{9,10}(?:\.\d+)?|(?:datetime\.)?(?:datetime|date)\(\s*20\d\d\s*,[^\n]{0,20}\))"
_DATE_GATE = re.compile(_NOW + rb"\s*[<>]=?\s*" + _DATE + rb"|" + _DATE_BEFORE + rb"\s*[<>]=?\s*" + _NOW)


def time_hint(artifact: Path, read: Sources | None = None) -> str:
    """Why the time pass runs: the candidate's sources (or what a literal blob in them
    decodes to) compare the clock with a literal date, a payload's "not before" gate
    ("" when none does). The pass moves the clock 30-180 days on."""
    try:
        for name, raw in sources(artifact) if read is None else read:
            for depth, data in enumerate(_layers(raw)):
                m = _DATE_GATE.search(data)
                if m:
                    where = name if depth == 0 else f"{name} (decoded)"
                    shown = _shown(m.group(0))
                    return f"{TIME_PREFIX} ({shown} in {where})"
    except Exception:
        return ""
    return ""


def write_pass_hint(
    artifact: Path, stage: Path, *, windows: bool = True, ci: bool = False, time: bool = False
) -> None:
    """``stage/static.json`` for the agent (always written, atomically: the agent
    waits for it before it decides on the extra passes): ``hint`` for the Windows
    pass, ``ci`` for the ci pass, ``time`` for the time pass (each scanned only when
    asked)."""
    read: Sources | None = None
    if windows + ci + time > 1:
        try:  # the scans read the same sources: the archive is read once
            read = sources(artifact)
        except Exception:
            read = []  # unreadable: no hint, as each scan alone would say
    hints = {
        "hint": pass_hint(artifact, read) if windows else "",
        "ci": ci_hint(artifact, read) if ci else "",
        "time": time_hint(artifact, read) if time else "",
    }
    tmp = stage / ".static.json.tmp"
    tmp.write_text(json.dumps(hints))
    os.chmod(tmp, 0o000)  # the agent's alone, like plan.json (runner/docker_backend.py AGENT_ONLY)
    os.replace(tmp, stage / "static.json")
