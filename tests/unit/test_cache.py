"""The SQLite result cache: keys, lookups, ls/clear, bad files, and concurrent writers."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from sandbox import cache as cache_mod
from sandbox.cache import (
    CacheContext,
    ResultCache,
    default_cache_path,
    index_scope,
    profile_hash,
    tool_version,
)
from sandbox.errors import InputError
from sandbox.models import Verdict
from tests.unit.test_gate_fakes import make_report

CTX = CacheContext(profile_hash="p1", tool_version="0.1.0+abc", image_id="sha256:img", index="idx")


def report(name: str = "a", version: str = "1.0", behaviour: str = "clean", sha: str | None = None):  # type: ignore[no-untyped-def]
    return make_report(f"{name}=={version}", behaviour, name=name, version=version, sha256=sha)


def test_default_path_honours_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_cache_path({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "pkgsandbox" / "results.sqlite"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".cache" / "pkgsandbox" / "results.sqlite"
    assert default_cache_path({}) == expected
    assert default_cache_path({"XDG_CACHE_HOME": "relative/dir"}) == expected  # the XDG spec: ignore relative
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ResultCache().path == tmp_path / "xdg" / "pkgsandbox" / "results.sqlite"


def test_put_get_by_sha_and_by_name(tmp_path: Path) -> None:
    c = ResultCache(tmp_path / "sub" / "results.sqlite")  # parent directories are created
    r = report("a", "1.0", "malicious")
    assert c.put(r, CTX)
    sha = r.artifacts[0].sha256
    got = c.get(sha, CTX)
    assert got == r and got.verdict is Verdict.MALICIOUS
    assert c.get(f"sha256:{sha.upper()}", CTX) == r
    assert c.lookup("a", "1.0", CTX) == r
    assert c.lookup("a", "1.1", CTX) is None
    for field, value in (("profile_hash", "p2"), ("tool_version", "0.2.0"), ("image_id", "sha256:other")):
        other = CTX.model_copy(update={field: value})
        assert c.get(sha, other) is None and c.lookup("a", "1.0", other) is None
    # another index: a NAME==VERSION lookup must not answer, the sha256 still does
    other_index = CTX.model_copy(update={"index": "private"})
    assert c.lookup("a", "1.0", other_index) is None
    assert c.get(sha, other_index) == r


def test_local_artifacts_are_found_only_by_sha(tmp_path: Path) -> None:
    c = ResultCache(tmp_path / "c.sqlite")
    r = report("loc", "1.0")
    c.put(r, CTX, origin=cache_mod.ORIGIN_LOCAL)
    assert c.lookup("loc", "1.0", CTX) is None
    assert c.get(r.artifacts[0].sha256, CTX) == r


def test_find_prefers_the_strongest_key(tmp_path: Path) -> None:
    c = ResultCache(tmp_path / "c.sqlite")
    r = report("a", "1.0")
    sha = r.artifacts[0].sha256
    c.put(r, CTX)
    assert c.find(CTX, name="a", version="1.0") == r
    assert c.find(CTX, name="a", version="1.0", hashes=[f"sha256:{sha}", "sha256:" + "0" * 64]) == r
    assert (
        c.find(CTX, name="a", version="1.0", hashes=["sha256:" + "0" * 64]) is None
    )  # lock pins other files
    assert c.find(CTX, name="a", version="1.0", sha256="1" * 64) is None
    assert c.find(CTX) is None


def test_incomplete_reports_are_not_cached(tmp_path: Path) -> None:
    c = ResultCache(tmp_path / "c.sqlite")
    r = report("a", "1.0", "incomplete")
    assert not c.put(r, CTX)
    assert c.get(r.artifacts[0].sha256, CTX) is None
    assert not c.put(r.model_copy(update={"artifacts": ()}), CTX)


def test_ls_and_clear(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    assert cache_mod.ls(path) == [] and cache_mod.clear(path) == 0 and not path.exists()
    c = ResultCache(path)
    c.put(report("a", "1.0"), CTX)
    c.put(report("b", "2.0", "malicious"), CTX)
    c.put(report("b", "2.0", "malicious"), CTX)  # replacing is not duplicating
    rows = cache_mod.ls(path)
    assert [(e.name, e.version, e.verdict) for e in rows] == [
        ("b", "2.0", Verdict.MALICIOUS),
        ("a", "1.0", Verdict.CLEAN),
    ]
    assert rows[0].size > 0 and rows[0].image_id == "sha256:img" and len(rows[0].sha256) == 64
    assert cache_mod.clear(path, older_than=3600) == 0
    assert cache_mod.clear(path) == 2
    assert cache_mod.ls(path) == []


def test_not_a_cache_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not sqlite at all, just some text padding it out " * 20)
    with pytest.raises(InputError, match="not a usable pkgsandbox cache"):
        ResultCache(path).get("0" * 64, CTX)


def test_newer_cache_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(InputError, match="newer pkgsandbox"):
        ResultCache(path).get("0" * 64, CTX)


def test_undecodable_rows_are_misses(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    c = ResultCache(path)
    r = report()
    c.put(r, CTX)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE results SET report = ?", (b"garbage",))
    conn.commit()
    conn.close()
    assert c.get(r.artifacts[0].sha256, CTX) is None


def test_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    ResultCache(path).put(report(), CTX)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def _writer(path: str, worker: int, count: int, template_json: str) -> None:
    """Child process: write *count* distinct results as fast as it can."""
    from sandbox.cache import CacheContext, ResultCache
    from sandbox.models import Report

    template = Report.model_validate_json(template_json)
    ctx = CacheContext(profile_hash="p1", tool_version="t", image_id="i")
    cache = ResultCache(path)
    Path(f"{path}.ready{worker}").touch()
    while not all(Path(f"{path}.ready{w}").exists() for w in (0, 1)):  # start together
        time.sleep(0.001)
    start = time.time()
    for i in range(count):
        art = template.artifacts[0].model_copy(
            update={"sha256": f"{worker:02d}{i:062d}", "name": f"w{worker}-{i}"}
        )
        cache.put(template.model_copy(update={"artifacts": (art,)}), ctx)
        cache.get(art.sha256, ctx)
    Path(f"{path}.span{worker}").write_text(f"{start} {time.time()}")


def test_two_processes_writing_concurrently_do_not_corrupt_it(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    template = report("tpl", "1.0", "malicious").model_dump_json()
    spawn = multiprocessing.get_context("spawn")  # fresh interpreters, like two CI jobs
    procs = [spawn.Process(target=_writer, args=(str(path), w, 120, template)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    spans = [tuple(map(float, Path(f"{path}.span{w}").read_text().split())) for w in (0, 1)]
    assert max(s[0] for s in spans) < min(s[1] for s in spans), f"the writers did not overlap: {spans}"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM results").fetchone()[0] == 240
    conn.close()
    ctx = CacheContext(profile_hash="p1", tool_version="t", image_id="i")
    got = ResultCache(path).get(f"01{119:062d}", ctx)
    assert got is not None and got.verdict is Verdict.MALICIOUS


def test_threads_share_one_cache_object(tmp_path: Path) -> None:
    c = ResultCache(tmp_path / "c.sqlite")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(30):
                c.put(report(f"t{n}-{i}", "1.0"), CTX)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(c.entries()) == 120


def test_key_helpers_are_stable() -> None:
    assert profile_hash({"b": 1, "a": [1, 2]}) == profile_hash({"a": [1, 2], "b": 1})
    assert profile_hash({"a": 1}) != profile_hash({"a": 2})
    assert index_scope(["https://pypi.org/simple/", " https://pypi.org/simple"]) == index_scope(
        ["https://pypi.org/simple"]
    )
    assert index_scope([]) == ""
    version = tool_version()
    assert version.startswith("0.") and "+" in version and version == tool_version()


def _package_modules() -> set[str]:
    root = Path(cache_mod.__file__).resolve().parent
    names = set()
    for path in root.rglob("*.py"):
        parts = ["sandbox", *path.relative_to(root).with_suffix("").parts]
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_is_named_judging_or_not() -> None:
    """A new or moved module must be placed in one list: its source is in the cache key or it is not."""
    judging, not_judging = set(cache_mod.JUDGING_MODULES), set(cache_mod.NOT_JUDGING_MODULES)
    assert len(judging) == len(cache_mod.JUDGING_MODULES) and not judging & not_judging
    modules = _package_modules()
    unlisted = sorted(modules - judging - not_judging)
    assert not unlisted, f"add {unlisted} to JUDGING_MODULES or NOT_JUDGING_MODULES in sandbox/cache.py"
    gone = sorted((judging | not_judging) - modules)
    assert not gone, f"{gone} no longer exist: remove them from sandbox/cache.py"
    assert {"sandbox.judge.rules", "sandbox.trace.strace", "sandbox.models"} <= judging
    assert {"sandbox.ui.terminal", "sandbox.gate.formats.sarif", "sandbox.cli"} <= not_judging


def test_the_tool_version_hashes_the_judging_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    full = cache_mod.tool_version.__wrapped__()
    assert full == tool_version()
    assert cache_mod.module_source("sandbox.judge").name == "__init__.py"
    assert cache_mod.module_source("sandbox.judge.rules").is_file()
    monkeypatch.setattr(cache_mod, "JUDGING_MODULES", cache_mod.JUDGING_MODULES[:-1])
    assert cache_mod.tool_version.__wrapped__() != full  # every listed module counts
