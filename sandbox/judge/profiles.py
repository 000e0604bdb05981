"""Profiles: phases, limits, honeytokens and allowlist exceptions, validated by pydantic.

A profile is a TOML file (``profiles/*.toml`` ships ``default``, ``strict``, ``build``);
``extends`` names a shipped profile or a path, and the child overrides scalars while
allow lists are concatenated. A bad profile is an :class:`~sandbox.errors.ProfileError`
(exit 2) naming the key and the file.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from sandbox.errors import ProfileError
from sandbox.models import Event, EventKind, Frozen, Phase, Severity

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Access = Literal["read", "write", "stat", "list", "delete", "rename", "chmod", "create"]
ACCESS_OF: dict[EventKind, Access] = {
    EventKind.FILE_READ: "read",
    EventKind.FILE_WRITE: "write",
    EventKind.FILE_STAT: "stat",
    EventKind.FILE_LIST: "list",
    EventKind.FILE_DELETE: "delete",
    EventKind.FILE_RENAME: "rename",
    EventKind.FILE_CHMOD: "chmod",
    EventKind.FILE_LINK: "create",
    EventKind.DIR_CREATE: "create",
}


class PhasesConf(Frozen):
    run: tuple[Phase, ...] = (Phase.INSTALL, Phase.STARTUP, Phase.IMPORT, Phase.EXERCISE)
    # What the execute phase's calls prove: "all" judges them like any phase (deep: an
    # investigation); "proof" keeps only what proves harm (sandbox/judge/calls.py), as the
    # calls use made-up arguments and a library asked to fetch a URL fetches it.
    execute_evidence: Literal["all", "proof"] = "all"


class LimitsConf(Frozen):
    install_timeout: float = Field(600.0, gt=0)
    startup_timeout: float = Field(60.0, gt=0)
    import_timeout: float = Field(300.0, gt=0)
    exercise_timeout: float = Field(60.0, gt=0)
    execute_timeout: float = Field(300.0, gt=0)
    module_timeout: float = Field(30.0, gt=0)
    call_timeout: float = Field(10.0, gt=0)
    window: float = Field(5.0, gt=0)
    memory_mb: int = Field(3072, ge=256)
    # a staged closure too big for the default HOME grows HOME and memory up to this
    # (and within the host's budget, see sandbox/runner/sizing.py); beyond it the run
    # ends incomplete
    max_memory_mb: int = Field(16384, ge=256)
    pids: int = Field(512, ge=32)
    cpus: float = Field(1.5, gt=0)


PassWhen = Literal["auto", "always", "never"]


class PassesConf(Frozen):
    """Extra passes of startup and import after the default ones (``auto``: when the
    default pass shows the pass's trigger; see sandbox/agent/passes.py)."""

    windows: PassWhen = "auto"  # Windows-stealer emulation: stubs, APPDATA honey tree
    time: PassWhen = "auto"  # time travel: the clock 30 to 180 days ahead, sleeps shortened
    ci: PassWhen = "auto"  # a GitHub Actions job: CI variables, runner tokens (canaries)
    # the env honeytokens redrawn, then the run's own again (control): when the default
    # pass reached out, what the phases send that follows the secrets (PS031)
    secrets: PassWhen = "auto"


class SandboxConf(Frozen):
    """Where the candidate runs: ``runc`` (Docker's default runtime, the host kernel
    behind namespaces and seccomp) or ``runsc`` (gVisor's user-space kernel; strace
    inside it records, eBPF cannot see in). ``--runtime`` overrides it."""

    runtime: Literal["runc", "runsc"] = "runc"


class HoneytokenConf(Frozen):
    enabled: bool = True


class FileRule(Frozen):
    path: str  # glob: ``*`` within a segment, ``**`` across, ``{a,b}``, ``~`` = HOME, ``{site}``
    access: tuple[Access, ...] = ("read", "stat", "list")
    phases: tuple[Phase, ...] = ()
    comment: str = ""


class ProcessRule(Frozen):
    exe: str  # glob on the executable path
    argv: str = "*"  # glob on the argv joined by spaces
    parent: str = ""  # glob on the parent's executable, when set
    phases: tuple[Phase, ...] = ()
    comment: str = ""


class NetworkRule(Frozen):
    host: str  # glob on the IP address or the DNS name
    port: str = "*"
    phases: tuple[Phase, ...] = ()
    comment: str = ""


class PthRule(Frozen):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    comment: str = ""


class AllowConf(Frozen):
    files: tuple[FileRule, ...] = ()
    processes: tuple[ProcessRule, ...] = ()
    network: tuple[NetworkRule, ...] = ()
    pth: tuple[PthRule, ...] = ()


class RulesConf(Frozen):
    disabled: tuple[str, ...] = ()
    severity: dict[str, Severity] = {}


class Profile(Frozen):
    """A resolved profile (``extends`` already applied)."""

    name: str
    description: str = ""
    extends: str = ""
    phases: PhasesConf = PhasesConf()
    limits: LimitsConf = LimitsConf()
    honeytokens: HoneytokenConf = HoneytokenConf()
    passes: PassesConf = PassesConf()
    sandbox: SandboxConf = SandboxConf()
    allow: AllowConf = AllowConf()
    rules: RulesConf = RulesConf()
    source: str = ""

    def digest(self) -> str:
        """A stable hash of everything that changes a verdict (for caches and reports)."""
        data = self.model_dump(mode="json", exclude={"source", "description"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def profiles_dir() -> Path:
    here = Path(__file__).resolve().parents[2] / "profiles"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[1] / "data" / "profiles"


def shipped_profiles() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.toml"))


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ProfileError(
            f"profile not found: {path}", advice=f"shipped: {', '.join(shipped_profiles())}"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror}") from exc


def _locate(ref: str, relative_to: Path | None = None) -> Path:
    if ref.endswith(".toml") or "/" in ref:
        p = Path(ref).expanduser()
        if not p.is_absolute() and relative_to is not None:
            p = relative_to.parent / p
        return p
    path = profiles_dir() / f"{ref}.toml"
    if not path.exists():
        raise ProfileError(
            f"no shipped profile named {ref!r}", advice=f"shipped: {', '.join(shipped_profiles())}"
        )
    return path


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in child.items():
        if key == "allow" and isinstance(value, dict):
            merged = dict(out.get("allow", {}))
            for k, v in value.items():
                # an explicit empty list clears the parent's exceptions (strict does this)
                merged[k] = list(v) if v == [] else [*merged.get(k, []), *v]
            out["allow"] = merged
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_profile(ref: str = "default") -> Profile:
    """Load a shipped profile by name or a profile file by path, resolving ``extends``."""
    return _load(ref, None, 0)


@lru_cache(maxsize=32)
def _load_cached(path: str) -> dict[str, Any]:
    return _read(Path(path))


def _load(ref: str, relative_to: Path | None, depth: int) -> Profile:
    if depth > 5:
        raise ProfileError(f"profile {ref}: 'extends' nests too deep (a cycle?)")
    path = _locate(ref, relative_to)
    raw = dict(_load_cached(str(path.resolve())) if path.exists() else _read(path))
    parent_ref = raw.get("extends", "")
    if parent_ref:
        if not isinstance(parent_ref, str):
            raise ProfileError(f"{path}: extends: must be a profile name or path")
        parent = _load(parent_ref, path, depth + 1)
        base = parent.model_dump(mode="json", exclude={"source"})
        raw = _merge(base, raw)
    raw["source"] = str(path)
    try:
        return Profile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ProfileError(f"{path}: {loc}: {first['msg']}") from exc


# ---------------------------------------------------------------------- matching


def _expand_braces(pattern: str) -> list[str]:
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m or m.group(0) == "{site}":
        return [pattern]
    out = []
    for alt in m.group(1).split(","):
        out.extend(_expand_braces(pattern[: m.start()] + alt + pattern[m.end() :]))
    return out


@lru_cache(maxsize=1024)
def glob_regex(pattern: str, home: str, site: str) -> re.Pattern[str]:
    """``*`` within a path segment, ``**`` across segments, ``?``, ``{a,b}``, ``~``, ``{site}``."""
    alts = []
    for pat in _expand_braces(pattern):
        if pat.startswith("~"):
            pat = home + pat[1:]
        pat = pat.replace("{site}", site)
        rx = ""
        i = 0
        while i < len(pat):
            if pat.startswith("**", i):
                rx += ".*"
                i += 2
            elif pat[i] == "*":
                rx += "[^/]*"
                i += 1
            elif pat[i] == "?":
                rx += "[^/]"
                i += 1
            else:
                rx += re.escape(pat[i])
                i += 1
        alts.append(rx)
    return re.compile("^(?:" + "|".join(alts) + ")$")


def _in_phase(phases: tuple[Phase, ...], phase: Phase) -> bool:
    return not phases or phase in phases


class Allowlist:
    """The profile's exceptions, compiled for one sandbox layout."""

    def __init__(self, profile: Profile, home: str, site: str) -> None:
        self.profile = profile
        self.home = home
        self.site = site

    def _rx(self, pattern: str) -> re.Pattern[str]:
        return glob_regex(pattern, self.home, self.site)

    def file_allowed(self, ev: Event) -> bool:
        access = ACCESS_OF.get(ev.kind)
        paths = [p for p in (ev.path, ev.path2) if p]
        if access is None or not paths:
            return False
        for rule in self.profile.allow.files:
            if (
                access in rule.access
                and _in_phase(rule.phases, ev.phase)
                and all(self._rx(rule.path).match(p) for p in paths)
            ):
                return True
        return False

    def exec_allowed(self, ev: Event, parent_exe: str | None) -> bool:
        if ev.kind is not EventKind.EXEC or not ev.path:
            return False
        argv = " ".join(ev.argv or ())
        for rule in self.profile.allow.processes:
            if not _in_phase(rule.phases, ev.phase) or not self._rx(rule.exe).match(ev.path):
                continue
            if not glob_regex(rule.argv.replace("/", "\0"), "", "").match(argv.replace("/", "\0")):
                continue
            if rule.parent and not (parent_exe and self._rx(rule.parent).match(parent_exe)):
                continue
            return True
        return False

    def network_allowed(self, ev: Event, name: str | None = None) -> bool:
        a = ev.address
        if a is None or a.family not in ("inet", "inet6"):
            return False
        for rule in self.profile.allow.network:
            hosts = [a.host] + ([name] if name else [])
            host_rx = glob_regex(rule.host.replace("/", "\0"), "", "")
            if not _in_phase(rule.phases, ev.phase) or not any(host_rx.match(h) for h in hosts):
                continue
            if rule.port == "*" or str(a.port) == rule.port:
                return True
        return False

    def pth_allowed(self, sha256: str) -> bool:
        return any(r.sha256 == sha256 for r in self.profile.allow.pth)
