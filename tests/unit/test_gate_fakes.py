"""A fake vet for gate tests, built on the real interface: real Observations judged by the real rules.

``FakeVet(spec) -> Report`` behaves like :func:`sandbox.vet.vet` without a sandbox:
the behaviour of a package is chosen by name, and the report comes out of
:func:`sandbox.judge.report.judge`, so findings, verdicts and evidence are the real ones.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

from packaging.utils import parse_wheel_filename

from sandbox.errors import FetchError
from sandbox.fetch import StagedSet
from sandbox.fetch.spec import parse_spec
from sandbox.judge.report import judge
from sandbox.models import (
    Address,
    Artifact,
    ArtifactKind,
    ArtifactRole,
    Event,
    EventKind,
    ImageInfo,
    Lingering,
    Observation,
    Phase,
    PhaseResult,
    PhaseStatus,
    ProcessInfo,
    Report,
)

try:  # the profiles issue turned judge()'s profile from a name into a Profile
    from sandbox.judge.profiles import load_profile

    PROFILE: object = load_profile("default")
except ImportError:  # pragma: no cover
    PROFILE = "default"

IMAGE = ImageInfo(
    tag="pkgsandbox-sandbox:test",
    id="sha256:" + "ab" * 32,
    base="python:3.12-slim",
    python="3.12",
    platforms=("manylinux_2_36_x86_64", "linux_x86_64"),
)


def fake_sha(name: str, version: str) -> str:
    return hashlib.sha256(f"{name}-{version}".encode()).hexdigest()


def observation(behaviour: str) -> Observation:
    """An observation that the real rules judge as *behaviour* (clean, malicious, suspicious, incomplete)."""
    phases = []
    for p in Phase:
        status = PhaseStatus.TIMEOUT if behaviour == "incomplete" and p is Phase.IMPORT else PhaseStatus.OK
        lingering = ()
        if behaviour == "suspicious" and p is Phase.IMPORT:
            lingering = (Lingering(pid=77, ppid=1, argv=("python", "-c", "import x"), threads=2, status="S"),)
        phases.append(PhaseResult(phase=p, status=status, duration=0.5, lingering=lingering, window=5.0))
    events: list[Event] = []
    processes = [
        ProcessInfo(
            pid=42,
            ppid=1,
            phase=Phase.STARTUP,
            argv=("python", "-c", "pass"),
            exe="/usr/local/bin/python3",
            start=1.0,
        )
    ]
    if behaviour == "malicious":
        events = [
            Event(
                phase=Phase.STARTUP,
                seq=1,
                pid=42,
                time=1.1,
                syscall="openat",
                kind=EventKind.FILE_READ,
                path="/home/dev/.ssh/id_rsa",
                result=3,
            ),
            Event(
                phase=Phase.STARTUP,
                seq=2,
                pid=42,
                time=1.2,
                syscall="connect",
                kind=EventKind.CONNECT,
                address=Address(family="inet", host="192.0.2.7", port=443),
                result=-1,
                errno="ENETUNREACH",
            ),
        ]
    return Observation(events=tuple(events), processes=tuple(processes), phases=tuple(phases))


def make_report(
    spec: str,
    behaviour: str = "clean",
    *,
    name: str | None = None,
    version: str | None = None,
    sha256: str | None = None,
) -> Report:
    """A real report (real rules, real verdict) for a package behaving as *behaviour*."""
    name = name or "pkg"
    version = version or "1.0"
    filename = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    art = Artifact(
        name=name,
        version=version,
        filename=filename,
        sha256=sha256 or fake_sha(name, version),
        kind=ArtifactKind.WHEEL,
        role=ArtifactRole.CANDIDATE,
        size=1234,
        source="pip",
    )
    staged = StagedSet(
        directory="/stage", artifacts=(art,), candidate=art, install_target=filename, requested=spec
    )
    return judge(
        observation(behaviour), target=spec, started=time.time(), image=IMAGE, staged=staged, profile=PROFILE
    )  # type: ignore[arg-type]


class FakeVet:
    """``vet_fn`` for :func:`sandbox.gate.run_gate`: records calls, behaves by package name."""

    def __init__(
        self,
        behaviours: dict[str, str] | None = None,
        *,
        delay: float = 0.0,
        resolve: str = "9.9.9",
        on_call: Callable[[str], None] | None = None,
    ) -> None:
        self.behaviours = behaviours or {}
        self.delay = delay
        self.resolve = resolve
        self.on_call = on_call
        self.calls: list[str] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def __call__(self, spec: str) -> Report:
        with self._lock:
            self.calls.append(spec)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.on_call is not None:
                self.on_call(spec)
            if self.delay:
                time.sleep(self.delay)
            parsed = parse_spec(spec)
            sha = None
            if parsed.is_file:
                name, version = parsed.name, parsed.version
                sha = hashlib.sha256(Path(parsed.path).read_bytes()).hexdigest()
                if parsed.path.endswith(".whl"):
                    name = str(parse_wheel_filename(Path(parsed.path).name)[0])
            else:
                name, version = parsed.name, parsed.pinned_version or self.resolve
            behaviour = self.behaviours.get(name, "clean")
            if behaviour == "missing":
                raise FetchError(f"no release of {name} matches {spec!r} on the index")
            if behaviour == "crash":
                raise RuntimeError("boom")
            return make_report(spec, behaviour, name=name, version=version, sha256=sha)
        finally:
            with self._lock:
                self.active -= 1


def test_fake_reports_are_judged_by_the_real_rules() -> None:
    assert make_report("a==1", "clean").verdict.value == "clean"
    bad = make_report("a==1", "malicious")
    assert bad.verdict.value == "malicious"
    assert {f.rule_id for f in bad.findings} >= {"PS001", "PS002"}
    assert make_report("a==1", "suspicious").verdict.value == "suspicious"
    assert make_report("a==1", "incomplete").verdict.value == "incomplete"
