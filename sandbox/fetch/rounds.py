"""Adaptive rounds, host side: stage the wheels a running step found missing.

The agent names what a step lacked (modules, requirements); this fetches wheels
(``pip download --only-binary=:all:`` under the build guard: nothing is built
or executed on the host) into the staging directory the sandbox sees read-only,
and tells the agent what to install. A requirement no wheel fits gets the index's
sdist as a plain file (hash checked, static metadata only), built in the sandbox.
Bounded: rounds, requirements per round, bytes per run, seconds per round.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from sandbox.errors import FetchError, InputError
from sandbox.fetch.archive import inspect_wheel
from sandbox.fetch.core import resolve_with_sdists
from sandbox.fetch.modmap import distribution_for, wheel_provides
from sandbox.fetch.pip import Deadline, PipRunner
from sandbox.fetch.target import TargetEnv
from sandbox.models import DEFAULT_PASS, Artifact, ArtifactKind, ArtifactRole, Phase, Round, StagedHook
from sandbox.tempdirs import owned_tempdir

MAX_ROUNDS = 3
MAX_PER_ROUND = 6  # requirements fetched in one round
MAX_BYTES = 200 << 20  # staged by all rounds of one run
ROUND_SECONDS = 90.0
# how a requirement's staged files install: wheels only, sdists built in the venv (legacy
# setup.py needing only the image's kit), or sdists built in pip's isolated env
WHEELS, VENV, ISOLATED = "wheels", "venv", "isolated"


@dataclass(frozen=True)
class _Fetched:
    """One requirement's files, fetched into *work* and not yet staged."""

    work: Path
    wheels: list[Path]
    sdists: dict[Path, tuple[str, str]]  # path → name, version (static metadata)
    build: str


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
        self._early: dict[str, Future[_Fetched]] = {}  # prefetched, by requirement text
        self._pool: ThreadPoolExecutor | None = None
        self._runners: set[PipRunner] = set()  # pip runs in flight (close kills them)
        self._held: set[Path] = set()  # work dirs fetched and not yet staged
        self._lock = threading.Lock()
        self._closing = False

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
        builds: set[str] = set()  # how the sdists of this round's staged requirements build
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
                files, build = self._fetch(req_text, provides, deadline)
            except (FetchError, InputError) as exc:
                missing.append(f"{req_text}: {exc.message[:200]}")
                continue
            builds.add(build)
            added += files
            install.append(req_text)
        # legacy sdists whose build needs only the venv's kit build there (no isolated env
        # to populate from the staged files: seconds a build under the recorder)
        flags = ["--no-build-isolation"] if builds & {VENV} and not builds & {ISOLATED} else []
        self._write_answer(number, {"install": install, "added": added, "missing": missing, "flags": flags})
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

    def prefetch(self, requirements: Sequence[str]) -> None:
        """Start fetching what the agent's first round will ask for (an sdist's literal
        ``setup_requires``, the same list the agent parses) while the sandbox starts; an
        answer then waits only for what is still on its way. Nothing is staged until
        the agent asks: a requirement it never asks for is thrown away unseen."""
        provided = {canonicalize_name(n) for n in (*self.target.kit, *self.target.venv)}
        wanted = []
        for text in requirements[:MAX_PER_ROUND]:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            name = canonicalize_name(req.name)
            if not req.url and name != self.candidate and name not in provided:
                wanted.append(f"{req.name}{req.specifier}")
        if not wanted:
            return
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pkgsandbox-prefetch")
        deadline = Deadline(ROUND_SECONDS)
        for text in wanted:
            self._early[text] = self._pool.submit(self._download, text, None, deadline)

    def close(self) -> None:
        """Stop a prefetch still running (its pip killed, never waited for) and remove
        what it fetched; a fetch that ends later removes its own."""
        with self._lock:
            self._closing = True
            held, self._held = list(self._held), set()
            runners = list(self._runners)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for runner in runners:
            runner.cancel()
        for work in held:
            shutil.rmtree(work, ignore_errors=True)
        self._early.clear()

    def _fetch(self, req_text: str, module: str | None, deadline: Deadline) -> tuple[list[str], str]:
        """Wheels for *req_text* (with dependencies) into the staging dir, or its sdists
        where no wheel fits: the new file names, and how its sdists build (:data:`WHEELS`
        when there are none, :data:`VENV` or :data:`ISOLATED`). A prefetched one is
        taken as it is (waiting for it if it is still on its way)."""
        early = self._early.pop(req_text, None) if module is None else None
        got = early.result() if early is not None else self._download(req_text, module, deadline)
        with self._lock:
            self._held.discard(got.work)
        try:
            size = sum(p.stat().st_size for p in [*got.wheels, *got.sdists])
            if self.bytes + size > MAX_BYTES:
                raise FetchError(f"byte limit of the rounds ({MAX_BYTES >> 20} MiB) reached")
            staged = [self._stage(p) for p in got.wheels] + [
                self._stage(p, *meta) for p, meta in got.sdists.items()
            ]
            return [name for name in staged if name], got.build
        finally:
            shutil.rmtree(got.work, ignore_errors=True)

    def _download(self, req_text: str, module: str | None, deadline: Deadline) -> _Fetched:
        """Fetch (never stage) *req_text* into a work dir of its own (see :meth:`_fetch`)."""
        work = owned_tempdir("round")  # sweepable after a SIGKILL
        runner = PipRunner(self.pip, deadline)
        with self._lock:
            if self._closing:
                shutil.rmtree(work, ignore_errors=True)
                raise FetchError("the run ended")
            self._runners.add(runner)
        try:
            result = runner.download(
                [req_text], self.target, work, find_links=[self.artifacts_dir], what=f"fetching {req_text}"
            )
            sdists: dict[Path, tuple[str, str]] = {}  # path → name, version (static metadata)
            build = WHEELS
            if not result.ok and module is None:
                # a requirement no wheel fits (setup_requires=["fernet"]: sdists only): the
                # index's sdist, built in the sandbox, as the closure stages one; left out,
                # setuptools fetches it from the internet itself and looks like a beacon
                try:
                    dists, in_venv = resolve_with_sdists(req_text, self.target, work, runner, deadline)
                except (FetchError, InputError) as exc:
                    raise FetchError(f"no wheel for the sandbox, nor an sdist: {exc.message}") from exc
                sdists = {d.path: (d.name, d.version) for d in dists if d.kind is ArtifactKind.SDIST}
                build = (VENV if in_venv else ISOLATED) if sdists else WHEELS
                wheels = [d.path for d in dists if d.kind is ArtifactKind.WHEEL]
            elif not result.ok:
                raise FetchError(f"no wheel for the sandbox: {result.summary()}")
            else:
                wheels = sorted(p for p in work.iterdir() if p.name.endswith(".whl"))
            if module is not None:
                want = canonicalize_name(Requirement(req_text).name)
                main = [p for p in wheels if _wheel_name(p.name) == want]
                if not main or not wheel_provides(main[0], module):
                    raise FetchError(f"the wheel of {want} does not provide module {module}")
            with self._lock:
                if self._closing:
                    raise FetchError("the run ended")
                self._held.add(work)
            return _Fetched(work, wheels, sdists, build)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        finally:
            with self._lock:
                self._runners.discard(runner)

    def _stage(self, path: Path, name: str = "", version: str = "") -> str:
        """Copy one fetched file into the staging dir (read-only to the sandbox); its
        name, or "" when it is there already. An sdist comes with its *name* and
        *version* (its static metadata, read when it was fetched)."""
        dest = self.artifacts_dir / path.name
        if dest.exists():
            return ""
        if path.name.endswith(".whl"):
            info = inspect_wheel(path)
            self._hooks += [
                StagedHook(name=n, sha256=h, text=t)
                for (n, h), t in zip(info.root_hooks, info.root_hook_texts, strict=True)
            ]
            name, version, kind = info.name, str(info.version), ArtifactKind.WHEEL
        else:
            kind = ArtifactKind.SDIST
        partial = dest.with_name(f".{path.name}.partial")
        shutil.copyfile(path, partial)
        os.chmod(partial, 0o644)
        os.replace(partial, dest)
        self.bytes += path.stat().st_size
        self.artifacts.append(
            Artifact(
                name=name,
                version=version,
                filename=path.name,
                sha256=_sha256(dest),
                kind=kind,
                role=ArtifactRole.DEPENDENCY,
                size=dest.stat().st_size,
                source="round",
            )
        )
        return path.name

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
