"""Adaptive rounds, host side: stage the wheels a running step found missing.

The agent names what a step lacked (modules, requirements); this fetches wheels
only (``pip download --only-binary=:all:`` under the build guard: nothing is built
or executed on the host) into the staging directory the sandbox sees read-only,
and tells the agent what to install. Bounded: rounds, requirements per round,
bytes per run, seconds per round.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from sandbox.errors import FetchError, InputError
from sandbox.fetch.archive import inspect_wheel
from sandbox.fetch.modmap import distribution_for, wheel_provides
from sandbox.fetch.pip import Deadline, PipRunner
from sandbox.fetch.target import TargetEnv
from sandbox.models import DEFAULT_PASS, Artifact, ArtifactKind, ArtifactRole, Phase, Round, StagedHook
from sandbox.tempdirs import owned_tempdir

MAX_ROUNDS = 3
MAX_PER_ROUND = 6  # requirements fetched in one round
MAX_BYTES = 200 << 20  # staged by all rounds of one run
ROUND_SECONDS = 90.0


class RoundFetcher:
    """Answers the agent's ``need`` messages for one run (see module docstring)."""

    def __init__(
        self,
        target: TargetEnv,
        stage: Path,
        candidate: str,
        *,
        pip: Sequence[str] | None = None,
        max_rounds: int = MAX_ROUNDS,
    ) -> None:
        self.target = target
        self.stage = stage  # the staging root (bind-mounted at /stage)
        self.artifacts_dir = stage / "artifacts"
        self.candidate = canonicalize_name(candidate)
        self.pip = pip
        self.max_rounds = max_rounds
        self.rounds: list[Round] = []
        self.artifacts: list[Artifact] = []
        self.bytes = 0
        self._hooks: list[StagedHook] = []  # of the round being answered

    def plan(self) -> dict[str, Any]:
        """The agent's part of the plan."""
        return {"max": self.max_rounds, "wait": ROUND_SECONDS + 30}

    def answer(self, msg: dict[str, Any]) -> None:
        """Handle one ``need`` message: fetch, stage, write ``rounds/N.json`` (always)."""
        t0 = time.monotonic()
        number = int(msg.get("round", len(self.rounds) + 1))
        phase = (
            Phase(msg.get("phase", "install"))
            if msg.get("phase") in {p.value for p in Phase}
            else Phase.INSTALL
        )
        modules = [str(m) for m in msg.get("modules") or []][:MAX_PER_ROUND]
        requirements = [str(r) for r in msg.get("requirements") or []][:MAX_PER_ROUND]
        install: list[str] = []
        added: list[str] = []
        missing: list[str] = []
        self._hooks = []
        requested = [f"module {m}" for m in modules] + [f"requirement {r}" for r in requirements]
        wanted: list[tuple[str, str | None]] = []  # (requirement, module it must provide)
        for module in modules:
            dist, why = distribution_for(module)
            if dist is None:
                missing.append(f"{module}: {why}")
            elif canonicalize_name(dist) == self.candidate:
                missing.append(f"{module}: the candidate's own module")
            else:
                wanted.append((dist, module))
        for text in requirements:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                missing.append(f"{text}: not a valid requirement")
                continue
            if req.url:
                missing.append(f"{text}: a direct URL reference is never followed")
            elif canonicalize_name(req.name) == self.candidate:
                missing.append(f"{text}: the candidate itself")
            else:
                wanted.append((f"{req.name}{req.specifier}", None))
        if number > self.max_rounds:
            missing += [f"{w}: round limit ({self.max_rounds}) reached" for w, _ in wanted]
            wanted = []
        deadline = Deadline(ROUND_SECONDS)
        for req_text, provides in wanted:
            try:
                files = self._fetch(req_text, provides, deadline)
            except (FetchError, InputError) as exc:
                missing.append(f"{req_text}: {exc.message[:200]}")
                continue
            added += files
            install.append(req_text)
        self._write_answer(number, {"install": install, "added": added, "missing": missing})
        self.rounds.append(
            Round(
                number=number,
                phase=phase,
                reason=str(msg.get("reason", ""))[:300],
                requested=tuple(requested),
                added=tuple(added),
                installed=tuple(install),
                missing=tuple(missing),
                seconds=round(time.monotonic() - t0, 2),
                hooks=tuple(self._hooks),
                pass_name=str(msg.get("pass") or DEFAULT_PASS)[:40],
            )
        )

    def fail(self, msg: dict[str, Any], why: str) -> None:
        """Answer a ``need`` that could not be handled (the agent must never wait in vain)."""
        number = int(msg.get("round", len(self.rounds) + 1))
        self._write_answer(number, {"install": [], "added": [], "missing": [why[:300]]})

    def _fetch(self, req_text: str, module: str | None, deadline: Deadline) -> list[str]:
        """Wheels for *req_text* (with dependencies) into the staging dir; the new file names."""
        work = owned_tempdir("round")  # sweepable after a SIGKILL
        try:
            runner = PipRunner(self.pip, deadline)
            result = runner.download(
                [req_text], self.target, work, find_links=[self.artifacts_dir], what=f"fetching {req_text}"
            )
            if not result.ok:
                raise FetchError(f"no wheel for the sandbox: {result.summary()}")
            wheels = sorted(p for p in work.iterdir() if p.name.endswith(".whl"))
            if module is not None:
                want = canonicalize_name(Requirement(req_text).name)
                main = [p for p in wheels if _wheel_name(p.name) == want]
                if not main or not wheel_provides(main[0], module):
                    raise FetchError(f"the wheel of {want} does not provide module {module}")
            size = sum(p.stat().st_size for p in wheels)
            if self.bytes + size > MAX_BYTES:
                raise FetchError(f"byte limit of the rounds ({MAX_BYTES >> 20} MiB) reached")
            new = []
            for wheel in wheels:
                dest = self.artifacts_dir / wheel.name
                if dest.exists():
                    continue
                info = inspect_wheel(wheel)
                self._hooks += [
                    StagedHook(name=n, sha256=h, text=t)
                    for (n, h), t in zip(info.root_hooks, info.root_hook_texts, strict=True)
                ]
                partial = dest.with_name(f".{wheel.name}.partial")
                shutil.copyfile(wheel, partial)
                os.chmod(partial, 0o644)
                os.replace(partial, dest)
                self.bytes += wheel.stat().st_size
                new.append(wheel.name)
                self.artifacts.append(
                    Artifact(
                        name=info.name,
                        version=str(info.version),
                        filename=wheel.name,
                        sha256=_sha256(dest),
                        kind=ArtifactKind.WHEEL,
                        role=ArtifactRole.DEPENDENCY,
                        size=dest.stat().st_size,
                        source="round",
                    )
                )
            return new
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _write_answer(self, number: int, answer: dict[str, Any]) -> None:
        directory = self.stage / "rounds"
        directory.mkdir(exist_ok=True)
        os.chmod(directory, 0o755)
        tmp = directory / f".{number}.json.tmp"
        tmp.write_text(json.dumps(answer))
        os.chmod(tmp, 0o644)
        os.replace(tmp, directory / f"{number}.json")  # atomic: the agent never reads half


def _wheel_name(filename: str) -> str:
    try:
        return str(parse_wheel_filename(filename)[0])
    except InvalidWheelFilename:
        return ""


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
