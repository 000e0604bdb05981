"""The result cache: finished reports in one SQLite file, shared safely between concurrent runs.

**Key.** A result is stored under (candidate artifact sha256, profile hash, tool
version, image id): the same bytes judged by the same code with the same options
in the same image give the same verdict, so a re-run can skip the sandbox.

**Cheap lookup.** A warm gate should not even fetch. Rows of artifacts that came
from a package index are also found by (name, version, index, profile hash, tool
version, image id). That is sound because an index never serves different bytes
for a file it has published (PyPI files are immutable per name and version; a
*new* file can be added to an old release, which is why a lockfile that lists
hashes is looked up by those hashes instead, see :meth:`ResultCache.find`). The
index is part of the key so a private index's ``foo==1.0`` never answers for
PyPI's. Local wheels and sdists are only ever found by their sha256: a path says
nothing about its bytes.

**What is not cached.** ``incomplete`` reports (a timeout under load is worth
retrying) and reports without a candidate artifact.

**Staleness.** A cached verdict covers the candidate *and* the dependencies the
vet resolved at that time. In a gate the locked dependencies are entries of
their own, vetted at their pinned versions, so this does not hide a bumped
dependency; a ``vet`` of an unpinned name is never served from the cache.

**Concurrency.** WAL journal plus a busy timeout: readers never block writers,
writers queue instead of failing, and every write is one short ``BEGIN
IMMEDIATE`` transaction. Each operation opens its own connection, so a
:class:`ResultCache` may be used from several threads.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ValidationError

from sandbox import __version__
from sandbox.errors import InputError, PkgSandboxError
from sandbox.models import ArtifactRole, Frozen, Report, Verdict

CACHE_SCHEMA = 1
DEFAULT_TIMEOUT = 30.0  # seconds a writer waits for another process's transaction
ORIGIN_INDEX = "index"
ORIGIN_LOCAL = "local"

# The modules whose code decides a verdict: their source is part of the tool version, so
# a development build whose rules changed does not serve verdicts of the old rules. They
# are named, not matched by path, so that moving or adding a file is a decision made
# here: tests/unit/test_cache.py fails on a module under sandbox/ listed in neither tuple.
JUDGING_MODULES = (
    "sandbox",
    "sandbox.agent",
    "sandbox.agent.__main__",
    "sandbox.agent.checkout",  # a failed install's import from the unpacked sdist
    "sandbox.agent.common",
    "sandbox.agent.detach",  # how the agent's commands run (PID 1's children)
    "sandbox.agent.disguise",  # what the time pass's candidate sees can change what it does
    "sandbox.agent.exercise",
    "sandbox.agent.flat",  # bare-name sibling imports
    "sandbox.agent.fsdiff",
    "sandbox.agent.guard",
    "sandbox.agent.home",
    "sandbox.agent.init",  # what the candidate sees as PID 1 can change what it does
    "sandbox.agent.legacy",
    "sandbox.agent.main",
    "sandbox.agent.modlist",  # which modules the import phase tries
    "sandbox.agent.passes",
    "sandbox.agent.winpass",  # the Windows look the candidate sees
    "sandbox.agent.persist",
    "sandbox.agent.phases",
    "sandbox.agent.protocol",
    "sandbox.agent.reset",  # the state each extra pass starts from
    "sandbox.agent.rounds",
    "sandbox.agent.scripts",
    "sandbox.agent.sinkhole",
    "sandbox.agent.sinkhole.config",
    "sandbox.agent.sinkhole.control",
    "sandbox.agent.sinkhole.daemon",
    "sandbox.agent.sinkhole.dns",
    "sandbox.agent.sinkhole.http",
    "sandbox.agent.sinkhole.netsetup",
    "sandbox.agent.sinkhole.ntp",
    "sandbox.agent.sinkhole.record",
    "sandbox.agent.sinkhole.smtp",
    "sandbox.agent.sinkhole.tls",
    "sandbox.agent.steps",
    "sandbox.agent.unpack",
    "sandbox.agent.tlsca",
    "sandbox.agent.trust",
    "sandbox.agent.watch",
    "sandbox.errors",
    "sandbox.fetch",
    "sandbox.fetch.archive",
    "sandbox.fetch.core",
    "sandbox.fetch.index",
    "sandbox.fetch.metadata",
    "sandbox.fetch.modmap",
    "sandbox.fetch.pip",
    "sandbox.fetch.poetry",
    "sandbox.fetch.rounds",
    "sandbox.fetch.sdists",
    "sandbox.fetch.spec",
    "sandbox.fetch.stage",
    "sandbox.fetch.target",
    "sandbox.judge",
    "sandbox.judge.aesgcm",
    "sandbox.judge.baseline",
    "sandbox.judge.calls",
    "sandbox.judge.canary",
    "sandbox.judge.cienv",
    "sandbox.judge.classify",
    "sandbox.judge.honeytokens",
    "sandbox.judge.hooks",
    "sandbox.judge.incomplete",
    "sandbox.judge.profiles",
    "sandbox.judge.report",
    "sandbox.judge.rules",
    "sandbox.judge.rules.catalogue",
    "sandbox.judge.rules.context",
    "sandbox.judge.rules.credentials",
    "sandbox.judge.rules.differential",
    "sandbox.judge.rules.accounted",
    "sandbox.judge.rules.escape",
    "sandbox.judge.rules.hooks",
    "sandbox.judge.rules.linked",
    "sandbox.judge.rules.network",
    "sandbox.judge.rules.gitconfig",
    "sandbox.judge.rules.persistence",
    "sandbox.judge.rules.stage",
    "sandbox.judge.rules.process",
    "sandbox.judge.rules.resources",
    "sandbox.judge.layers",
    "sandbox.judge.static",
    "sandbox.judge.verdict",
    "sandbox.eventrows",
    "sandbox.models",
    "sandbox.oci",
    "sandbox.oci.roots",  # the root filesystem the candidate sees
    "sandbox.oci.wrapper",  # the container's view of itself can change what a candidate does
    "sandbox.runner",
    "sandbox.runner.docker_backend",
    "sandbox.runner.bpfbuild",
    "sandbox.runner.btf",
    "sandbox.runner.ebpf_program",
    "sandbox.runner.ebpf_recorder",
    "sandbox.runner.engine",
    "sandbox.runner.image",
    "sandbox.runner.ledger",
    "sandbox.runner.interface",
    "sandbox.runner.plan",
    "sandbox.runner.recorder",
    "sandbox.runner.runtime",
    "sandbox.runner.seccomp",
    "sandbox.runner.sizing",
    "sandbox.runner.syscalls",
    "sandbox.trace",
    "sandbox.trace.ebpf",
    "sandbox.trace.kernel_paths",
    "sandbox.trace.netcapture",
    "sandbox.trace.observe",
    "sandbox.trace.strace",
    "sandbox.trace.strace._syntax",
    "sandbox.trace.strace.events",
    "sandbox.trace.strace.lines",
    "sandbox.trace.strace.processes",
    "sandbox.trace.strace.syscalls",
    "sandbox.trace.strace.tables",
    "sandbox.vet",
)
# What only renders, stores or wires results (a change here never changes a verdict).
NOT_JUDGING_MODULES = (
    "sandbox.__main__",
    "sandbox.agent.tells",  # doctor --tells only
    "sandbox.cache",
    "sandbox.cli",
    "sandbox.cli_args",
    "sandbox.doctor",
    "sandbox.gate",
    "sandbox.gate.diff",
    "sandbox.gate.formats",
    "sandbox.gate.formats.junit",
    "sandbox.gate.formats.markdown",
    "sandbox.gate.formats.sarif",
    "sandbox.gate.formats.summary",
    "sandbox.gate.lockfiles",
    "sandbox.gate.lockfiles._common",
    "sandbox.gate.lockfiles._toml",
    "sandbox.gate.lockfiles.poetry_lock",
    "sandbox.gate.lockfiles.pylock",
    "sandbox.gate.lockfiles.pyproject",
    "sandbox.gate.lockfiles.requirements",
    "sandbox.gate.lockfiles.uv_lock",
    "sandbox.gate.models",
    "sandbox.gate.pack",
    "sandbox.gate.run",
    "sandbox.report",
    "sandbox.report.builders",
    "sandbox.report.describe",
    "sandbox.report.evidence",
    "sandbox.report.html",
    "sandbox.report.html_assets",
    "sandbox.report.html_data",
    "sandbox.report.json_format",
    "sandbox.report.sanitize",
    "sandbox.report.view_models",
    "sandbox.report.views",
    "sandbox.runner.agent_stream",
    "sandbox.ui",
    "sandbox.ui.show",
    "sandbox.ui.terminal",
    "sandbox.tempdirs",  # scratch dirs and their sweep
)

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS results (
    sha256       TEXT NOT NULL,
    profile_hash TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    image_id     TEXT NOT NULL,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    filename     TEXT NOT NULL,
    origin       TEXT NOT NULL,
    index_scope  TEXT NOT NULL,
    verdict      TEXT NOT NULL,
    created      REAL NOT NULL,
    report       BLOB NOT NULL,
    PRIMARY KEY (sha256, profile_hash, tool_version, image_id)
)""",
    """
CREATE INDEX IF NOT EXISTS results_by_name
    ON results (name, version, origin, index_scope, profile_hash, tool_version, image_id)""",
)


class CacheContext(Frozen):
    """Everything besides the artifact that a verdict depends on."""

    profile_hash: str
    tool_version: str
    image_id: str
    index: str = ""  # which index NAME==VERSION lookups refer to (see :func:`index_scope`)


class CacheEntry(Frozen):
    """One cached result, as ``pkgsandbox cache ls`` lists it."""

    name: str
    version: str
    filename: str
    sha256: str
    verdict: Verdict
    origin: str
    profile_hash: str
    tool_version: str
    image_id: str
    created: float
    size: int  # bytes of the stored (compressed) report


def default_cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/pkgsandbox/results.sqlite`` (default ``~/.cache/…``)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME", "").strip()
    # The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "pkgsandbox" / "results.sqlite"


def profile_hash(options: BaseModel | Mapping[str, object]) -> str:
    """A short stable digest of the options that shape a run (phases, timeouts, limits, profile …)."""
    data = options.model_dump(mode="json") if isinstance(options, BaseModel) else dict(options)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def index_scope(urls: Iterable[str]) -> str:
    """A digest naming the index configuration (index URL, extra indexes, find-links)."""
    norm = sorted({u.strip().rstrip("/") for u in urls if u and u.strip()})
    return hashlib.sha256("\n".join(norm).encode()).hexdigest()[:16] if norm else ""


@functools.cache
def tool_version() -> str:
    """``VERSION+DIGEST``: the release plus a digest of the code that judges a run."""
    digest = hashlib.sha256()
    for name in JUDGING_MODULES:
        digest.update(name.encode() + b"\0" + module_source(name).read_bytes() + b"\0")
    from sandbox.judge.static import RULES_DIR  # the static rules judge too

    for rule_file in sorted(RULES_DIR.iterdir()):
        digest.update(rule_file.name.encode() + b"\0" + rule_file.read_bytes() + b"\0")
    from sandbox.runner.bpfbuild import source_hash  # the compiled recorder records too

    digest.update(source_hash().encode())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def module_source(name: str) -> Path:
    """The source file of module *name* of this package (``sandbox.judge`` → its ``__init__.py``)."""
    base = Path(__file__).resolve().parent.joinpath(*name.split(".")[1:])
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _candidate(report: Report) -> tuple[str, str, str, str] | None:
    for art in report.artifacts:
        if art.role is ArtifactRole.CANDIDATE:
            return art.sha256, art.name, art.version, art.filename
    return None


class ResultCache:
    """Reports keyed by artifact and run context, in one SQLite file."""

    def __init__(self, path: Path | str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.timeout = timeout
        self._ready = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN ourselves, so a write is exactly one
            # short transaction and nothing is left open between statements.
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise InputError(f"cannot open the result cache {self.path}: {exc}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            self._setup(conn)
            yield conn
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise InputError(
                    f"{self.path} is not a usable pkgsandbox cache ({exc})",
                    advice="remove it, or pass another --cache PATH",
                ) from None
            raise PkgSandboxError(f"result cache {self.path}: {exc}") from None
        finally:
            conn.close()

    def _setup(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if self._ready:
                return
            # Switching to WAL needs a moment of exclusive access; another process doing
            # the same at the same time shows up as "locked" even with a busy timeout.
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")
                    version = conn.execute("PRAGMA user_version").fetchone()[0]
                    if version > CACHE_SCHEMA:
                        raise InputError(
                            f"{self.path} was written by a newer pkgsandbox (cache schema {version})",
                            advice="use another --cache PATH, or clear it",
                        )
                    if version < CACHE_SCHEMA:
                        conn.execute("BEGIN IMMEDIATE")
                        try:
                            for statement in _SCHEMA:
                                conn.execute(statement)
                            conn.execute(f"PRAGMA user_version = {CACHE_SCHEMA}")
                            conn.execute("COMMIT")
                        except BaseException:
                            if conn.in_transaction:
                                conn.execute("ROLLBACK")
                            raise
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            self._ready = True

    # ------------------------------------------------------------------ reads

    def _load(self, rows: Iterable[tuple[bytes]]) -> Report | None:
        for (blob,) in rows:
            try:
                return Report.model_validate_json(zlib.decompress(blob))
            except (zlib.error, ValidationError, ValueError):
                continue  # written by an incompatible build: a miss, not an error
        return None

    def get(self, sha256: str | Iterable[str], ctx: CacheContext) -> Report | None:
        """The report of the artifact with any of these sha256 digests, run under *ctx*."""
        digests = [sha256] if isinstance(sha256, str) else list(sha256)
        digests = [d.split(":", 1)[1] if ":" in d else d for d in digests]
        digests = [d.lower() for d in digests if d]
        if not digests:
            return None
        marks = ",".join("?" * len(digests))
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT report FROM results WHERE sha256 IN ({marks}) AND profile_hash=? AND tool_version=? "
                "AND image_id=? ORDER BY created DESC",
                (*digests, ctx.profile_hash, ctx.tool_version, ctx.image_id),
            ).fetchall()
        return self._load(rows)

    def lookup(self, name: str, version: str, ctx: CacheContext) -> Report | None:
        """The report of index package *name* == *version* under *ctx* (no artifact needed)."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT report FROM results WHERE name=? AND version=? AND origin=? AND index_scope=? "
                "AND profile_hash=? AND tool_version=? AND image_id=? ORDER BY created DESC",
                (name, version, ORIGIN_INDEX, ctx.index, ctx.profile_hash, ctx.tool_version, ctx.image_id),
            ).fetchall()
        return self._load(rows)

    def find(
        self,
        ctx: CacheContext,
        *,
        name: str | None = None,
        version: str | None = None,
        hashes: Iterable[str] = (),
        sha256: str | None = None,
    ) -> Report | None:
        """The best lookup for what is known: the file's sha256, else the lock's hashes, else name+version.

        When a lockfile lists hashes only a report of one of *those* files answers:
        a same-version report of another file (say a wheel added to the release
        later) is not what the lock installs.
        """
        if sha256:
            return self.get(sha256, ctx)
        listed = [h for h in hashes if h.lower().startswith("sha256:")]
        if listed:
            return self.get(listed, ctx)
        if name and version:
            return self.lookup(name, version, ctx)
        return None

    def entries(self) -> list[CacheEntry]:
        """Every cached result, newest first."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT name, version, filename, sha256, verdict, origin, profile_hash, tool_version, "
                "image_id, created, length(report) FROM results ORDER BY created DESC"
            ).fetchall()
        return [
            CacheEntry(
                name=r[0],
                version=r[1],
                filename=r[2],
                sha256=r[3],
                verdict=Verdict(r[4]),
                origin=r[5],
                profile_hash=r[6],
                tool_version=r[7],
                image_id=r[8],
                created=r[9],
                size=r[10],
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ writes

    def put(self, report: Report, ctx: CacheContext, *, origin: str = ORIGIN_INDEX) -> bool:
        """Store *report*; False when it is not cacheable (incomplete, or no candidate artifact)."""
        cand = _candidate(report)
        if cand is None or report.verdict is Verdict.INCOMPLETE:
            return False
        sha, name, version, filename = cand
        blob = zlib.compress(report.model_dump_json().encode(), 6)
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT OR REPLACE INTO results (sha256, profile_hash, tool_version, image_id, name, "
                    "version, filename, origin, index_scope, verdict, created, report) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        sha.lower(),
                        ctx.profile_hash,
                        ctx.tool_version,
                        ctx.image_id,
                        name,
                        version,
                        filename,
                        origin,
                        ctx.index if origin == ORIGIN_INDEX else "",
                        report.verdict.value,
                        time.time(),
                        sqlite3.Binary(blob),
                    ),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return True

    def clear(self, *, older_than: float | None = None) -> int:
        """Remove every result (or those older than *older_than* seconds); returns how many."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if older_than is None:
                    cur = conn.execute("DELETE FROM results")
                else:
                    cur = conn.execute("DELETE FROM results WHERE created < ?", (time.time() - older_than,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            removed = cur.rowcount
            if removed:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed


def ls(path: Path | str | None = None) -> list[CacheEntry]:
    """``pkgsandbox cache ls``: the cached results at *path* (default cache when None)."""
    cache = ResultCache(path)
    if not cache.path.exists():
        return []
    return cache.entries()


def clear(path: Path | str | None = None, *, older_than: float | None = None) -> int:
    """``pkgsandbox cache clear``: remove cached results; returns how many were removed."""
    cache = ResultCache(path)
    if not cache.path.exists():
        return 0
    return cache.clear(older_than=older_than)
