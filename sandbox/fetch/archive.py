"""Read-only, in-memory inspection of wheels and sdists that may be hostile.

Nothing here extracts to disk, imports or runs anything from an archive. Every
archive is checked as a whole first (member names, types, counts, declared sizes,
compression ratios) and only the few metadata members needed are read, streamed
with a byte cap. Any problem is an :class:`~sandbox.errors.InputError` whose
message names the file: ``"foo.whl is not a valid wheel: …"``.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import contextlib
import gzip
import hashlib
import io
import itertools
import lzma
import posixpath
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import Parser
from pathlib import Path
from typing import IO, Protocol

from packaging.tags import Tag
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    canonicalize_version,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from sandbox.errors import InputError

SDIST_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tar", ".zip")


@dataclass(frozen=True)
class Limits:
    """Caps that bound the work and memory spent on one archive."""

    max_members: int = 100_000
    # Declared uncompressed size of all members together. Big enough for the
    # largest real wheels (CUDA builds reach a few GiB), small enough to refuse
    # bombs before touching their data.
    max_total_size: int = 4 * 1024**3
    # Per-member compression ratio, only judged for members above ratio_floor:
    # real files rarely compress better than ~30x, deflate bombs reach ~1000x.
    max_ratio: float = 200.0
    ratio_floor: int = 10 * 1024**2
    # Metadata members (METADATA, PKG-INFO, pyproject.toml …) are small.
    max_read: int = 8 * 1024**2
    # pax / GNU long-name headers are read into memory whole by tarfile.
    max_header: int = 1024**2


DEFAULT_LIMITS = Limits()


class _Rejected(Exception):
    """Internal: an archive failed a check; converted to InputError with the file name."""


@dataclass(frozen=True)
class WheelContents:
    """What a wheel says about itself (validated against its filename)."""

    path: Path
    name: NormalizedName
    version: Version
    tags: frozenset[Tag]
    dist_info: str
    metadata: Message
    wheel_file: Message
    # (name, sha256 hex) of the .pth files at the wheel's root, from its RECORD: pip puts
    # them in site-packages, where they run at every interpreter start
    root_hooks: tuple[tuple[str, str], ...] = ()
    # their text, in the same order (what the hook rules judge: the installed bytes)
    root_hook_texts: tuple[str, ...] = ()

    @property
    def requires_dist(self) -> tuple[str, ...]:
        """The Requires-Dist entries of METADATA, as written."""
        return tuple(self.metadata.get_all("Requires-Dist") or ())

    @property
    def requires_python(self) -> str | None:
        """METADATA's Requires-Python, if any."""
        value = self.metadata.get("Requires-Python")
        return str(value).strip() if value else None

    @property
    def display_name(self) -> str:
        """The project name as METADATA spells it."""
        return str(self.metadata.get("Name", self.name))


@dataclass(frozen=True)
class SdistContents:
    """The metadata members of a source distribution, read in memory."""

    path: Path
    top: str  # the single top-level directory, e.g. "foo-1.0" ("" : files at the archive root)
    filename_name: NormalizedName | None
    filename_version: str | None
    pkg_info: bytes | None = None
    pyproject: bytes | None = None
    setup_cfg: bytes | None = None
    egg_requires: bytes | None = None  # setuptools' own <name>.egg-info/requires.txt, if shipped
    has_setup_py: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- names


def _safe_name(raw: str) -> str:
    """Normalise a member name and refuse absolute paths and ``..`` components."""
    if "\x00" in raw:
        raise _Rejected(f"member name {raw!r} contains a NUL byte")
    # Windows separators and drive letters are refused on every platform: an
    # installer on another system may honour them.
    name = raw.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise _Rejected(f"member {raw!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _Rejected(f"member {raw!r} escapes the archive with '..'")
    return "/".join(parts)


def _check_link(member: str, target: str, root: str, *, relative_to_member: bool) -> None:
    """A link must resolve inside *root* (``""`` = the archive root)."""
    if not target or "\x00" in target:
        raise _Rejected(f"link {member!r} has an empty or invalid target")
    target = target.replace("\\", "/")
    if target.startswith("/") or re.match(r"^[A-Za-z]:", target):
        raise _Rejected(f"link {member!r} points to absolute path {target!r}")
    base = posixpath.dirname(member) if relative_to_member else ""
    resolved = posixpath.normpath(posixpath.join(base, target))
    outside = resolved == ".." or resolved.startswith("../")
    if root and not (resolved == root or resolved.startswith(root + "/")):
        outside = True
    if outside:
        raise _Rejected(f"link {member!r} points outside {root or 'the archive'}/ ({target!r})")


# --------------------------------------------------------------------------- readers


@dataclass
class _Member:
    name: str  # normalised
    is_dir: bool
    size: int


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class _CappedReader(io.RawIOBase):
    """A read-only stream that fails once more than *cap* bytes went through it."""

    def __init__(self, inner: _Readable, cap: int) -> None:
        self._inner = inner
        self._left = cap

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        self._left -= len(data)
        if self._left < 0:
            raise _Rejected("decompressed data exceeds the size cap (archive bomb?)")
        buffer[: len(data)] = data
        return len(data)


def _read_capped(stream: _Readable, cap: int, what: str) -> bytes:
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise _Rejected(f"{what} is larger than {cap} bytes")
    return data


_HEADER_TYPES = {
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
}


def _guarded_tarinfo(limits: Limits) -> type[tarfile.TarInfo]:
    class GuardedTarInfo(tarfile.TarInfo):
        # tarfile reads pax and GNU long-name headers into memory in one go;
        # refuse huge ones before it does.
        def _proc_member(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
            if self.type in _HEADER_TYPES and self.size > limits.max_header:
                raise _Rejected(f"oversized extended header ({self.size} bytes)")
            result: tarfile.TarInfo = tarfile.TarInfo._proc_member(self, tf)  # type: ignore[attr-defined]
            return result

    return GuardedTarInfo


def _decompressor(raw: IO[bytes]) -> _Readable:
    head = raw.read(262)
    raw.seek(0)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw, mode="rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw, mode="rb")
    if head[257:262] == b"ustar":
        return raw
    raise _Rejected("not a tar archive (unknown compression or format)")


def _iter_tar(
    path: Path, limits: Limits, want: Callable[[str], bool]
) -> Iterator[tuple[_Member, tarfile.TarInfo, bytes | None]]:
    """Stream a tar archive once, yielding checked members and the data of wanted ones."""
    with open(path, "rb") as raw:
        inner = _decompressor(raw)
        # Headers (512 bytes per member, plus pax data) come on top of member data.
        budget = limits.max_total_size + limits.max_members * 1024 + 64 * limits.max_header
        capped = io.BufferedReader(_CappedReader(inner, budget))
        # A compressed tar has no per-member sizes to compare, so judge the whole
        # archive: more than max_ratio:1 over ratio_floor is a bomb.
        expand_cap = max(limits.ratio_floor, int(path.stat().st_size * limits.max_ratio))
        with tarfile.open(fileobj=capped, mode="r|", tarinfo=_guarded_tarinfo(limits)) as tf:
            yield from _walk_tar(tf, limits, want, expand_cap)


def _walk_tar(
    tf: tarfile.TarFile, limits: Limits, want: Callable[[str], bool], expand_cap: int | None = None
) -> Iterator[tuple[_Member, tarfile.TarInfo, bytes | None]]:
    total = 0
    for count, info in enumerate(tf, start=1):
        if count > limits.max_members:
            raise _Rejected(f"more than {limits.max_members} members")
        name = _safe_name(info.name)
        if info.isdev() or info.isfifo():
            raise _Rejected(f"member {info.name!r} is a device or FIFO")
        if info.type == tarfile.GNUTYPE_SPARSE or info.issparse():
            raise _Rejected(f"member {info.name!r} is a sparse file")
        if not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
            raise _Rejected(f"member {info.name!r} has unsupported type {info.type!r}")
        if info.size < 0:
            raise _Rejected(f"member {info.name!r} has a negative size")
        total += info.size
        if total > limits.max_total_size:
            raise _Rejected(f"declared content exceeds {limits.max_total_size} bytes (archive bomb?)")
        if expand_cap is not None and total > expand_cap:
            raise _Rejected(f"content expands more than {limits.max_ratio:.0f}:1 (archive bomb?)")
        member = _Member(name=name, is_dir=info.isdir(), size=info.size)
        data: bytes | None = None
        if info.isfile() and want(name):
            if info.size > limits.max_read:
                raise _Rejected(f"metadata member {name!r} is larger than {limits.max_read} bytes")
            extracted = tf.extractfile(info)
            if extracted is None:
                raise _Rejected(f"cannot read member {name!r}")
            data = _read_capped(extracted, limits.max_read, name)
            if len(data) != info.size:
                raise _Rejected(f"member {name!r} is truncated")
        yield member, info, data


def _zip_entry_count(raw: IO[bytes], size: int) -> int:
    """Entry count from the end-of-central-directory record, read before zipfile parses it all."""
    tail_len = min(size, 65535 + 22)
    raw.seek(size - tail_len)
    tail = raw.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or len(tail) - pos < 22:
        raise _Rejected("not a zip archive (no end of central directory)")
    entries = struct.unpack("<H", tail[pos + 10 : pos + 12])[0]
    if entries == 0xFFFF and pos >= 20 and tail[pos - 20 : pos - 16] == b"PK\x06\x07":
        (record_offset,) = struct.unpack("<Q", tail[pos - 12 : pos - 4])
        raw.seek(record_offset)
        record = raw.read(56)
        if len(record) == 56 and record[:4] == b"PK\x06\x06":
            entries = struct.unpack("<Q", record[32:40])[0]
    raw.seek(0)
    return int(entries)


class _Zip:
    """A zip archive whose central directory passed the safety checks."""

    def __init__(self, path: Path, limits: Limits) -> None:
        self.limits = limits
        size = path.stat().st_size
        self.links: list[tuple[str, str]] = []  # (member, symlink target)
        self._raw = open(path, "rb")  # noqa: SIM115 - closed in close()
        try:
            if _zip_entry_count(self._raw, size) > limits.max_members:
                raise _Rejected(f"more than {limits.max_members} members")
            self.zf = zipfile.ZipFile(self._raw)
            self.members = self._check(self.zf.infolist())
        except BaseException:
            self._raw.close()
            raise

    def close(self) -> None:
        self.zf.close()
        self._raw.close()

    def __enter__(self) -> _Zip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
        limits = self.limits
        if len(infos) > limits.max_members:
            raise _Rejected(f"more than {limits.max_members} members")
        out: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            name = _safe_name(info.filename)
            if info.is_dir():
                name = name.rstrip("/")
            if name in out and not info.is_dir():
                # Readers disagree on which duplicate wins: a classic confusion trick.
                raise _Rejected(f"member {name!r} appears twice")
            mode = info.external_attr >> 16
            if info.create_system == 3 and mode:
                kind = stat.S_IFMT(mode)
                if kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
                    raise _Rejected(f"member {info.filename!r} is a device, FIFO or socket")
                if kind == stat.S_IFLNK:
                    target = self._read_info(info, 4096, "symlink target").decode("utf-8", "replace")
                    _check_link(name, target, "", relative_to_member=True)
                    self.links.append((name, target))
            total += info.file_size
            if total > limits.max_total_size:
                raise _Rejected(f"declared content exceeds {limits.max_total_size} bytes (archive bomb?)")
            if info.file_size > limits.ratio_floor:
                ratio = info.file_size / max(info.compress_size, 1)
                if ratio > limits.max_ratio:
                    raise _Rejected(f"member {name!r} has compression ratio {ratio:.0f}:1 (archive bomb?)")
            out[name] = info
        self._check_overlap(infos)
        return out

    @staticmethod
    def _check_overlap(infos: list[zipfile.ZipInfo]) -> None:
        # Overlapping local entries are how "better zip bombs" share one
        # compressed stream between many members; real archives never overlap.
        spans = sorted((i.header_offset, i.header_offset + 30 + i.compress_size, i.filename) for i in infos)
        for (_, end, name), (start, _, other) in itertools.pairwise(spans):
            if start < end:
                raise _Rejected(f"members {name!r} and {other!r} overlap (archive bomb?)")

    def _read_info(self, info: zipfile.ZipInfo, cap: int, what: str) -> bytes:
        if info.file_size > cap:
            raise _Rejected(f"{what} {info.filename!r} is larger than {cap} bytes")
        with self.zf.open(info) as stream:
            data = _read_capped(stream, cap, info.filename)
        if len(data) != info.file_size:
            raise _Rejected(f"member {info.filename!r} is truncated")
        return data

    def read(self, name: str) -> bytes:
        return self._read_info(self.members[name], self.limits.max_read, "member")


# --------------------------------------------------------------------------- errors


_CORRUPT = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
    ValueError,
    NotImplementedError,
    struct.error,
    KeyError,
)


def _invalid(path: Path, what: str, reason: object) -> InputError:
    return InputError(f"{path.name} is not a valid {what}: {reason}")


def parse_metadata(data: bytes) -> Message:
    """Parse a METADATA / PKG-INFO document (RFC 822 style headers)."""
    # Metadata is UTF-8 by spec; undecodable bytes must not abort vetting.
    return Parser().parsestr(data.decode("utf-8", "replace"), headersonly=False)


# --------------------------------------------------------------------------- wheels


def inspect_wheel(path: Path, limits: Limits = DEFAULT_LIMITS) -> WheelContents:
    """Validate a wheel and read its metadata, without extracting anything.

    Checks the filename (PEP 427), the archive (see :class:`Limits`), that a
    single ``NAME-VERSION.dist-info`` directory holds ``WHEEL``, ``METADATA``
    and ``RECORD``, and that METADATA's Name/Version match the filename.
    """
    try:
        fname, fversion, _build, tags = parse_wheel_filename(path.name)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        raise _invalid(path, "wheel", f"bad wheel filename ({exc})") from None
    try:
        with _Zip(path, limits) as zf:
            dist_infos = {
                name.split("/", 1)[0] for name in zf.members if name.split("/", 1)[0].endswith(".dist-info")
            }
            matching = [d for d in dist_infos if _dist_info_matches(d, fname, fversion)]
            if len(matching) != 1:
                found = ", ".join(sorted(dist_infos)) or "none"
                raise _Rejected(f"expected one {fname}-{fversion}.dist-info directory, found {found}")
            dist_info = matching[0]
            for required in ("WHEEL", "METADATA", "RECORD"):
                if f"{dist_info}/{required}" not in zf.members:
                    raise _Rejected(f"{dist_info}/{required} is missing")
            metadata = parse_metadata(zf.read(f"{dist_info}/METADATA"))
            wheel_file = parse_metadata(zf.read(f"{dist_info}/WHEEL"))
            hooks, texts = _shipped_hooks(zf, record_root_hooks(zf.read(f"{dist_info}/RECORD")))
    except _Rejected as exc:
        raise _invalid(path, "wheel", exc) from None
    except _CORRUPT as exc:
        raise _invalid(path, "wheel", f"corrupt or truncated archive ({type(exc).__name__}: {exc})") from None
    if not wheel_file.get("Wheel-Version"):
        raise _invalid(path, "wheel", "WHEEL has no Wheel-Version")
    meta_name, meta_version = metadata.get("Name"), metadata.get("Version")
    if not meta_name or canonicalize_name(str(meta_name)) != fname:
        raise _invalid(path, "wheel", f"METADATA names {meta_name!r}, the filename {fname!r}")
    try:
        if not meta_version or Version(str(meta_version)) != fversion:
            raise _invalid(
                path, "wheel", f"METADATA version {meta_version!r} differs from filename {fversion}"
            )
    except InvalidVersion:
        raise _invalid(path, "wheel", f"METADATA version {meta_version!r} is invalid") from None
    return WheelContents(
        path=path,
        name=fname,
        version=fversion,
        tags=frozenset(tags),
        dist_info=dist_info,
        metadata=metadata,
        wheel_file=wheel_file,
        root_hooks=hooks,
        root_hook_texts=texts,
    )


MAX_HOOK = 64 << 10  # a bigger .pth is no dependency's namespace line: never exempted
MAX_HOOKS = 32  # per wheel (their text goes into the report); the rest stay findings


def _shipped_hooks(
    zf: _Zip, listed: tuple[tuple[str, str], ...]
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """The RECORD's root ``.pth`` rows that the wheel really ships with those bytes, and
    their text. A row naming a file the wheel lacks (or other bytes) is no hook of the
    wheel's: the package could write that file itself, unseen by the host."""
    hooks, texts = [], []
    for name, digest in listed[:MAX_HOOKS]:
        info = zf.members.get(name)
        if info is None or info.is_dir() or info.file_size > MAX_HOOK:
            continue
        data = zf.read(name)
        if hashlib.sha256(data).hexdigest() == digest:
            hooks.append((name, digest))
            texts.append(data.decode("utf-8", "replace"))
    return tuple(hooks), tuple(texts)


def record_root_hooks(record: bytes) -> tuple[tuple[str, str], ...]:
    """(name, sha256 hex) of every ``.pth`` at the root of a wheel, from its RECORD
    (rows ``path,sha256=<urlsafe base64>,size``); rows without a sha256 are skipped."""
    out = []
    for row in record.decode("utf-8", "replace").splitlines():
        parts = row.split(",")
        if len(parts) < 2 or "/" in parts[0] or not parts[0].endswith(".pth"):
            continue
        algo, _, digest = parts[1].partition("=")
        if algo != "sha256" or not digest:
            continue
        try:
            raw = base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4))
        except (ValueError, binascii.Error):
            continue
        if len(raw) == 32:
            out.append((parts[0], raw.hex()))
    return tuple(out)


def _dist_info_matches(directory: str, name: NormalizedName, version: Version) -> bool:
    stem = directory[: -len(".dist-info")]
    dname, sep, dversion = stem.rpartition("-")
    if not sep:
        return False
    try:
        return canonicalize_name(dname) == name and Version(dversion) == version
    except InvalidVersion:
        return False


# --------------------------------------------------------------------------- sdists


def split_sdist_filename(filename: str, project: str | None = None) -> tuple[NormalizedName, str] | None:
    """``("foo-bar", "1.0")`` from ``foo_bar-1.0.tar.gz``, or None if it is not one.

    With *project* given, the split point is chosen so that the name part
    matches it (needed for legacy names with dashes, ``foo-bar-1.0.zip``).
    """
    lower = filename.lower()
    suffix = next((s for s in SDIST_SUFFIXES if lower.endswith(s)), None)
    if suffix is None:
        return None
    stem = filename[: -len(suffix)]
    if project is not None:
        want = canonicalize_name(project)
        for i, ch in enumerate(stem):
            if ch == "-" and canonicalize_name(stem[:i]) == want and stem[i + 1 :]:
                return want, stem[i + 1 :]
        return None
    name, sep, version = stem.rpartition("-")
    if not sep or not name or not version:
        return None
    return canonicalize_name(name), version


_SDIST_MEMBERS = ("PKG-INFO", "pyproject.toml", "setup.cfg")


def inspect_sdist(path: Path, limits: Limits = DEFAULT_LIMITS) -> SdistContents:
    """Validate an sdist (``.tar.gz``/``.tar.bz2``/``.tar.xz``/``.zip``) and read its metadata files.

    The archive must hold a single top-level directory containing ``PKG-INFO``,
    ``pyproject.toml`` or ``setup.py``; links must stay inside that directory.
    Only ``PKG-INFO``, ``pyproject.toml`` and ``setup.cfg`` are read (in memory).
    """
    split = split_sdist_filename(path.name)
    if split is None:
        raise _invalid(path, "sdist", "expected a .tar.gz, .tar.bz2, .tar.xz or .zip file")
    found: dict[str, bytes] = {}
    names: list[str] = []
    links: list[tuple[str, str, bool]] = []  # (member, target, symlink?)

    def want(name: str) -> bool:
        # foo-1.0/PKG-INFO, or PKG-INFO itself in an sdist with files at the root
        parts = name.split("/")
        if len(parts) <= 2 and parts[-1] in _SDIST_MEMBERS:
            return True
        # foo-1.0/foo.egg-info/requires.txt (or under src/): what setup.py said when built
        return (
            3 <= len(parts) <= 4
            and parts[-1] == "requires.txt"
            and parts[-2].endswith(".egg-info")
            and (len(parts) == 3 or parts[1] == "src")
        )

    def keep(name: str, data: bytes | None) -> None:
        names.append(name)
        if data is not None:
            if name in found:
                raise _Rejected(f"member {name!r} appears twice")
            found[name] = data

    try:
        with open(path, "rb") as probe:
            is_zip = probe.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
        if is_zip:
            with _Zip(path, limits) as zf:
                links.extend((member, target, True) for member, target in zf.links)
                for name, info in zf.members.items():
                    if info.is_dir():
                        names.append(name)
                        continue
                    keep(name, zf.read(name) if want(name) else None)
        else:
            for member, tinfo, data in _iter_tar(path, limits, want):
                if tinfo.issym() or tinfo.islnk():
                    links.append((member.name, tinfo.linkname, tinfo.issym()))
                keep(member.name, data)
        top = _single_top(names)
        for link, target, symlink in links:
            _check_link(link, target, top, relative_to_member=symlink)
    except _Rejected as exc:
        raise _invalid(path, "sdist", exc) from None
    except _CORRUPT as exc:
        raise _invalid(path, "sdist", f"corrupt or truncated archive ({type(exc).__name__}: {exc})") from None
    prefix = f"{top}/" if top else ""
    has_setup_py = f"{prefix}setup.py" in names
    contents = SdistContents(
        path=path,
        top=top,
        filename_name=split[0],
        filename_version=split[1],
        pkg_info=found.get(f"{prefix}PKG-INFO"),
        pyproject=found.get(f"{prefix}pyproject.toml"),
        setup_cfg=found.get(f"{prefix}setup.cfg"),
        egg_requires=next((d for n, d in sorted(found.items()) if n.endswith("egg-info/requires.txt")), None),
        has_setup_py=has_setup_py,
        notes=_top_dir_notes(path, top, split)
        if top
        else (f"{path.name}: files sit at the archive root (no top-level directory); pip accepts it",),
    )
    if contents.pkg_info is None and contents.pyproject is None and not has_setup_py:
        raise _invalid(
            path, "sdist", f"{prefix or 'the archive root'} has no PKG-INFO, pyproject.toml or setup.py"
        )
    return contents


_ROOT_MARKERS = frozenset({"setup.py", "pyproject.toml", "PKG-INFO"})


def _single_top(names: list[str]) -> str:
    """The single top-level directory, or "" when the tree sits at the archive root."""
    tops = {n.split("/", 1)[0] for n in names if n}
    if not tops:
        raise _Rejected("the archive is empty")
    if len(tops) != 1:
        if tops & _ROOT_MARKERS:
            return ""  # the source tree is the archive root: pip unpacks it as it is
        shown = ", ".join(sorted(tops)[:5])
        raise _Rejected(f"expected a single top-level directory, found {shown}")
    top = tops.pop()
    if top in names and not any(n.startswith(top + "/") for n in names):
        raise _Rejected("the archive holds a single file, not a source tree")
    return top


def _top_dir_notes(path: Path, top: str, split: tuple[NormalizedName, str]) -> tuple[str, ...]:
    name, _, version = top.rpartition("-")
    try:
        same = canonicalize_name(name) == split[0] and canonicalize_version(version) == canonicalize_version(
            split[1]
        )
    except InvalidVersion:
        same = False
    if same:
        return ()
    return (f"{path.name}: top-level directory {top}/ does not match the filename",)


def iter_text_members(
    path: Path, want: Callable[[str], bool], *, max_member: int = 2 * 1024**2, max_total: int = 64 * 1024**2
) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, bytes)`` of the wanted regular members of a wheel or sdist, read in
    memory under the archive checks (for static scanning: nothing is extracted or run).
    Members over *max_member* bytes are skipped; reading stops after *max_total* bytes."""
    limits = Limits(max_read=max(max_member, 16 * 1024**2))  # larger members are read, then skipped
    total = 0
    try:
        with open(path, "rb") as probe:
            is_zip = probe.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
        if is_zip:
            with _Zip(path, limits) as zf:
                for name, info in zf.members.items():
                    if info.is_dir() or info.file_size > max_member or not want(name):
                        continue
                    total += info.file_size
                    if total > max_total:
                        return
                    yield name, zf.read(name)
        else:
            for member, _info, data in _iter_tar(path, limits, lambda n: want(n)):
                if data is None or member.size > max_member:
                    continue
                total += len(data)
                if total > max_total:
                    return
                yield member.name, data
    except (_Rejected, *_CORRUPT) as exc:
        raise _invalid(path, "archive", exc) from None


def setup_files(path: Path) -> tuple[bytes | None, bytes | None]:
    """An sdist's ``setup.py`` and ``setup.cfg`` (at its root or in its top folder, the
    shallowest), read in memory under the archive checks; ``(None, None)`` for anything
    unreadable. What the agent's first round will ask for is parsed from these."""
    found: dict[str, tuple[int, bytes]] = {}

    def want(name: str) -> bool:
        parts = name.split("/")
        return len(parts) <= 2 and parts[-1] in ("setup.py", "setup.cfg")

    with contextlib.suppress(InputError):
        for name, data in iter_text_members(path, want, max_member=1 << 20, max_total=4 << 20):
            base, depth = name.rsplit("/", 1)[-1], name.count("/")
            if base not in found or depth < found[base][0]:
                found[base] = (depth, data)
    return (found["setup.py"][1] if "setup.py" in found else None), (
        found["setup.cfg"][1] if "setup.cfg" in found else None
    )
