"""Which packages a change introduces: compare a head lockfile with a base (a file or a git ref).

Only new or changed packages are vetted, each at the version the head pins. A
package counts as changed when its version, its source (index, path, URL) or its
set of allowed file hashes grows — a new file uploaded to an old release, or a
re-pointed hash, is a different artifact even at the same version number.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from packaging.version import InvalidVersion, Version

from sandbox.errors import InputError
from sandbox.gate.lockfiles import Reader, pinned_version, read_lockfile
from sandbox.gate.models import (
    ChangeKind,
    GateEntry,
    GatePlan,
    LockedRequirement,
    Lockfile,
    LockFormat,
    SourceKind,
)

GIT_TIMEOUT = 60.0


def vet_spec(req: LockedRequirement) -> str:
    """What ``vet()`` receives for *req*: ``NAME[extras]==VERSION``, an unpinned specifier, or a path.

    ``""`` for sources the sandbox cannot vet (URLs, VCS, source trees).
    Environment markers are left out on purpose: the gate looks at every artifact
    the lock can install, also one meant for another platform (if it cannot be
    installed in the sandbox, the vet says so and the entry is not passed).
    """
    extras = f"[{','.join(req.extras)}]" if req.extras else ""
    if req.kind is SourceKind.LOCAL and req.path:
        return f"{req.path}{extras}"
    if req.kind is not SourceKind.INDEX:
        return ""
    if req.version is not None:
        # Keep the file's own operator ("===" stays arbitrary equality).
        spec = req.specifier if pinned_version(req.specifier) == req.version else f"=={req.version}"
    else:
        spec = req.specifier
    return f"{req.name}{extras}{spec}"


def _identity(req: LockedRequirement) -> tuple[object, ...]:
    """What must match for a head requirement to be the same thing as a base one."""
    where = (
        req.path
        if req.kind in (SourceKind.LOCAL, SourceKind.DIRECTORY)
        else req.url
        if req.kind in (SourceKind.URL, SourceKind.VCS)
        else None
    )
    # An unpinned requirement is "the same" only with the same specifier: what it
    # resolves to is decided at vet time either way.
    pin = req.version if req.version is not None else f"unpinned:{req.specifier}"
    return (req.kind, pin, where, req.extras)


def _sort_key(version: str | None) -> tuple[int, Version | str]:
    if version is None:
        return (0, "")
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def diff_requirements(
    head: Sequence[LockedRequirement], base: Sequence[LockedRequirement] | None
) -> tuple[list[GateEntry], list[GateEntry], list[LockedRequirement]]:
    """(to vet, unchanged, removed) for *head* against *base*.

    With no base every head requirement is new. Requirements that would be
    vetted identically (same spec) are merged, their groups combined.
    """
    by_name: dict[str, list[LockedRequirement]] = {}
    for req in base or ():
        by_name.setdefault(req.name, []).append(req)
    to_vet: dict[str, GateEntry] = {}
    unchanged: dict[str, GateEntry] = {}
    for req in head:
        spec = vet_spec(req) or f"{req.kind.value}:{req.name}:{req.path or req.url}"
        olds = by_name.get(req.name, [])
        if base is None:
            change, previous, reason = ChangeKind.NEW, None, "no base: every package is vetted"
        elif not olds:
            change, previous, reason = ChangeKind.NEW, None, "new dependency"
        else:
            change, previous, reason = _compare(req, olds)
        target = unchanged if change is ChangeKind.UNCHANGED else to_vet
        seen = target.get(spec)
        if seen is not None:
            groups = tuple(dict.fromkeys(seen.requirement.groups + req.groups))
            target[spec] = seen.model_copy(
                update={"requirement": seen.requirement.model_copy(update={"groups": groups})}
            )
            continue
        target[spec] = GateEntry(
            name=req.name,
            version=req.version,
            previous=previous,
            change=change,
            reason=reason,
            requirement=req,
            spec=vet_spec(req),
        )
    # An entry both unchanged (one occurrence) and changed (another) is vetted.
    for spec in list(unchanged):
        if spec in to_vet:
            del unchanged[spec]
    head_names = {r.name for r in head}
    removed = [r for r in base or () if r.name not in head_names]
    return list(to_vet.values()), list(unchanged.values()), removed


def _compare(req: LockedRequirement, olds: list[LockedRequirement]) -> tuple[ChangeKind, str | None, str]:
    same = [o for o in olds if _identity(o) == _identity(req)]
    if same:
        base_hashes = {h for o in same for h in o.hashes}
        added = [h for h in req.hashes if h not in base_hashes]
        if base_hashes and added:
            return ChangeKind.CHANGED, req.version, f"{len(added)} file hash(es) not in the base"
        if not base_hashes and req.hashes:
            return ChangeKind.UNCHANGED, None, "hashes added"
        return ChangeKind.UNCHANGED, None, ""
    previous = max((o.version for o in olds), key=_sort_key)
    old = next(o for o in olds if o.version == previous)
    if _identity(old)[1] != _identity(req)[1]:
        was = previous or f"unpinned {old.specifier}".strip()
        now = req.version or f"unpinned {req.specifier}".strip()
        return ChangeKind.CHANGED, previous, f"{was} -> {now}"
    if old.kind is not req.kind or old.path != req.path or old.url != req.url:
        return ChangeKind.CHANGED, previous, f"source changed ({old.kind.value} -> {req.kind.value})"
    return ChangeKind.CHANGED, previous, "extras changed"


# --------------------------------------------------------------------------- git


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    git = shutil.which("git")
    if git is None:
        raise InputError("--base-ref needs git, and git is not on PATH")
    try:
        return subprocess.run(
            [git, *args],
            cwd=cwd,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except subprocess.TimeoutExpired:
        raise InputError(f"git {' '.join(args[:2])} did not answer within {GIT_TIMEOUT:.0f}s") from None


def repo_root(path: Path) -> Path:
    """The top of the git work tree holding *path*."""
    start = path.parent if not path.is_dir() else path
    proc = _git(["rev-parse", "--show-toplevel"], start if start.exists() else Path.cwd())
    if proc.returncode != 0:
        raise InputError(
            f"{path} is not inside a git work tree, so --base-ref cannot be used",
            advice="pass the base lockfile with --base FILE",
        )
    return Path(proc.stdout.decode().strip())


def check_ref(ref: str, root: Path) -> str:
    """The commit id *ref* names; :class:`InputError` (exit 2) when it names none."""
    if not ref or ref.startswith("-") or any(c in ref for c in "\0\n"):
        raise InputError(f"invalid git ref {ref!r}")
    proc = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root)
    if proc.returncode != 0:
        raise InputError(
            f"base ref {ref!r} does not exist in {root}",
            advice="fetch it first (in GitHub Actions: actions/checkout with fetch-depth: 0)",
        )
    return proc.stdout.decode().strip()


def git_reader(ref: str, root: Path) -> Reader:
    """A reader returning files as they are at *ref* (``git show REF:path``)."""

    def read(path: Path) -> str:
        absolute = Path(os.path.realpath(path if path.is_absolute() else Path.cwd() / path))
        try:
            rel = absolute.relative_to(root).as_posix()
        except ValueError:
            raise InputError(f"{path} is outside the git work tree {root}") from None
        proc = _git(["show", f"{ref}:{rel}"], root)
        if proc.returncode != 0:
            raise InputError(f"{ref}:{rel}: no such file at that ref")
        try:
            return proc.stdout.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError(f"{ref}:{rel}: not UTF-8 text") from None

    return read


def read_lockfile_at_ref(path: Path, ref: str, *, fmt: LockFormat | None = None) -> Lockfile:
    """*path* as it was at git *ref*; an empty lockfile (with a note) when it did not exist there."""
    root = Path(os.path.realpath(repo_root(path)))
    check_ref(ref, root)
    absolute = Path(os.path.realpath(path))
    rel = absolute.relative_to(root).as_posix() if absolute.is_relative_to(root) else str(path)
    display = f"{ref}:{rel}"
    reader = git_reader(ref, root)
    exists = _git(["cat-file", "-e", f"{ref}:{rel}"], root).returncode == 0
    if not exists:
        return Lockfile(
            path=display,
            format=fmt or LockFormat.REQUIREMENTS,
            requirements=(),
            notes=(f"{rel} did not exist at {ref}: every package is new",),
        )
    # Parse with the path as it is in the work tree so relative includes and local
    # paths resolve the same way as in the head; contents come from the ref.
    return read_lockfile(absolute, fmt=fmt, reader=reader, display=rel, prefix=f"{ref}:")


def plan_gate(
    head: Path | str,
    *,
    base: Path | str | None = None,
    base_ref: str | None = None,
    fmt: LockFormat | None = None,
) -> GatePlan:
    """Parse *head* (and the base) and decide what to vet.

    *base* is a second lockfile, *base_ref* a git ref at which *head* is read;
    with neither, every package of *head* is vetted.
    """
    if base is not None and base_ref is not None:
        raise InputError("give either --base or --base-ref, not both")
    head_path = Path(head)
    head_lock = read_lockfile(head_path, fmt=fmt)
    base_lock: Lockfile | None = None
    label = ""
    if base is not None:
        base_lock = read_lockfile(Path(base))
        label = base_lock.path
    elif base_ref is not None:
        base_lock = read_lockfile_at_ref(head_path, base_ref, fmt=head_lock.format)
        label = base_lock.path
    entries, unchanged, removed = diff_requirements(
        head_lock.requirements, base_lock.requirements if base_lock is not None else None
    )
    return GatePlan(
        head=head_lock,
        base=base_lock,
        base_label=label,
        entries=tuple(entries),
        unchanged=tuple(unchanged),
        removed=tuple(removed),
    )
