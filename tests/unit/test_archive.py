"""Archive safety: hostile wheels and sdists are refused, in memory, with a clear message."""

# ruff: noqa: F811 - pytest fixtures are imported from test_fetch_fixtures and used as arguments

from __future__ import annotations

import io
import os
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sandbox.errors import InputError
from sandbox.fetch.archive import Limits, inspect_sdist, inspect_wheel, split_sdist_filename
from tests.unit.test_fetch_fixtures import (  # noqa: F401 - fixtures
    make_sdist,
    make_wheel,
    no_execution,
    sdist_members,
    write_tar,
    write_zip,
)

WHEEL_META = {
    "foo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n",
    "foo-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    "foo-1.0.dist-info/RECORD": b"",
}


def wheel_with(tmp_path: Path, extra: dict[str, bytes], *, name: str = "foo-1.0-py3-none-any.whl") -> Path:
    return write_zip(tmp_path / name, {**WHEEL_META, **extra})


def tar_with(path: Path, infos: list[tuple[tarfile.TarInfo, bytes | None]], mode: Any = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for info, data in infos:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def tinfo(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def base_sdist(tmp_path: Path, marker: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    return [(tinfo(name), data) for name, data in sdist_members("foo", "1.0", marker).items()]


def assert_nothing_extracted(directory: Path, before: set[str]) -> None:
    assert {p.name for p in directory.iterdir()} == before


# --------------------------------------------------------------------------- wheels


def test_valid_wheel_metadata(tmp_path: Path) -> None:
    path = make_wheel(
        tmp_path, "Foo_Bar", "1.0.post1", ["dep>=1; python_version < '4'"], requires_python=">=3.8"
    )
    before = {p.name for p in tmp_path.iterdir()}
    wheel = inspect_wheel(path)
    assert (wheel.name, str(wheel.version)) == ("foo-bar", "1.0.post1")
    assert wheel.dist_info == "foo_bar-1.0.post1.dist-info"
    assert wheel.requires_dist == ("dep>=1; python_version < '4'",)
    assert wheel.requires_python == ">=3.8"
    assert_nothing_extracted(tmp_path, before)
    assert not (Path.cwd() / "foo_bar").exists()


@pytest.mark.parametrize("missing", ["WHEEL", "METADATA", "RECORD"])
def test_wheel_missing_required_file(tmp_path: Path, missing: str) -> None:
    path = make_wheel(tmp_path, "foo", "1.0", omit=[missing])
    with pytest.raises(InputError, match=rf"is not a valid wheel: foo-1\.0\.dist-info/{missing} is missing"):
        inspect_wheel(path)


def test_wheel_metadata_name_mismatch(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "foo", "1.0", metadata_name="bar")
    with pytest.raises(InputError, match="METADATA names 'bar'"):
        inspect_wheel(path)


def test_wheel_without_dist_info(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "foo-1.0-py3-none-any.whl", {"foo/__init__.py": b""})
    with pytest.raises(InputError, match=r"expected one foo-1\.0\.dist-info directory, found none"):
        inspect_wheel(path)


def test_bad_wheel_filename(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "foo.whl", WHEEL_META)
    with pytest.raises(InputError, match=r"^foo\.whl is not a valid wheel: bad wheel filename"):
        inspect_wheel(path)


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "foo-1.0-py3-none-any.whl"
    path.write_bytes(b"#!/bin/sh\necho hi\n" * 10)
    with pytest.raises(InputError, match="is not a valid wheel: not a zip archive"):
        inspect_wheel(path)


def test_truncated_wheel(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "foo", "1.0", files={"foo/big.bin": os.urandom(200_000)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="is not a valid wheel"):
        inspect_wheel(path)


def test_wheel_with_corrupt_metadata_member(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "foo", "1.0")
    data = bytearray(path.read_bytes())
    # Flip bytes inside METADATA's compressed data: the CRC check must catch it.
    offset = data.find(b"foo-1.0.dist-info/METADATA") + len("foo-1.0.dist-info/METADATA")
    for i in range(offset, offset + 8):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="is not a valid wheel"):
        inspect_wheel(path)


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("../evil.py", "escapes the archive"),
        ("foo/../../evil.py", "escapes the archive"),
        ("/etc/cron.d/evil", "absolute path"),
        ("C:\\Windows\\evil.dll", "absolute path"),
        ("..\\evil.py", "escapes the archive"),
    ],
)
def test_wheel_path_traversal(tmp_path: Path, member: str, reason: str) -> None:
    path = wheel_with(tmp_path, {member: b"x"})
    with pytest.raises(InputError, match=reason):
        inspect_wheel(path)


def _zip_symlink(path: Path, name: str, target: str) -> Path:
    with zipfile.ZipFile(path, "a") as zf:
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = 0o120777 << 16
        zf.writestr(info, target)
    return path


def test_wheel_symlink_outside(tmp_path: Path) -> None:
    path = _zip_symlink(wheel_with(tmp_path, {}), "foo/link", "../../etc/passwd")
    with pytest.raises(InputError, match="points outside"):
        inspect_wheel(path)


def test_wheel_symlink_absolute(tmp_path: Path) -> None:
    path = _zip_symlink(wheel_with(tmp_path, {}), "foo/link", "/etc/passwd")
    with pytest.raises(InputError, match="absolute path"):
        inspect_wheel(path)


def test_wheel_symlink_inside_is_fine(tmp_path: Path) -> None:
    path = _zip_symlink(wheel_with(tmp_path, {"foo/real.py": b""}), "foo/link.py", "real.py")
    assert inspect_wheel(path).name == "foo"


def test_wheel_device_member(tmp_path: Path) -> None:
    path = wheel_with(tmp_path, {})
    with zipfile.ZipFile(path, "a") as zf:
        info = zipfile.ZipInfo("foo/dev")
        info.create_system = 3
        info.external_attr = 0o020644 << 16  # character device
        zf.writestr(info, b"")
    with pytest.raises(InputError, match="device"):
        inspect_wheel(path)


def test_wheel_duplicate_member(tmp_path: Path) -> None:
    path = wheel_with(tmp_path, {})
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "a") as zf:
        zf.writestr("foo-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n")
    with pytest.raises(InputError, match="appears twice"):
        inspect_wheel(path)


def test_zip_bomb_member_count(tmp_path: Path) -> None:
    path = wheel_with(tmp_path, {f"foo/{i}.py": b"" for i in range(50)})
    with pytest.raises(InputError, match="more than 20 members"):
        inspect_wheel(path, Limits(max_members=20))


def test_zip_bomb_ratio(tmp_path: Path) -> None:
    # 64 MiB of zeros deflates to ~64 KiB: a ratio near 1000:1.
    path = tmp_path / "foo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in WHEEL_META.items():
            zf.writestr(name, data)
        with zf.open("foo/zeros.bin", "w", force_zip64=True) as out:
            chunk = bytes(1024 * 1024)
            for _ in range(64):
                out.write(chunk)
    assert path.stat().st_size < 1024 * 1024
    with pytest.raises(InputError, match=r"compression ratio \d+:1 \(archive bomb\?\)"):
        inspect_wheel(path)


def test_zip_bomb_total_size(tmp_path: Path) -> None:
    path = wheel_with(tmp_path, {f"foo/{i}.txt": b"a" * 1000 for i in range(10)})
    with pytest.raises(InputError, match="declared content exceeds 5000 bytes"):
        inspect_wheel(path, Limits(max_total_size=5000))


def test_zip_overlapping_entries(tmp_path: Path) -> None:
    path = wheel_with(tmp_path, {"foo/a.py": b"a" * 100, "foo/b.py": b"b" * 100})
    data = bytearray(path.read_bytes())
    # Point b.py's central directory entry at a.py's local header.
    entries = []
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        entries.append(pos)
        pos = data.find(b"PK\x01\x02", pos + 4)
    names = {}
    for entry in entries:
        name_len = struct.unpack("<H", data[entry + 28 : entry + 30])[0]
        names[bytes(data[entry + 46 : entry + 46 + name_len]).decode()] = entry
    a_offset = struct.unpack("<I", data[names["foo/a.py"] + 42 : names["foo/a.py"] + 46])[0]
    data[names["foo/b.py"] + 42 : names["foo/b.py"] + 46] = struct.pack("<I", a_offset)
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="overlap"):
        inspect_wheel(path)


def test_oversized_metadata_member(tmp_path: Path) -> None:
    big = WHEEL_META["foo-1.0.dist-info/METADATA"] + b"Description: " + b"x" * 5000 + b"\n"
    path = wheel_with(tmp_path, {"foo-1.0.dist-info/METADATA": big})
    with pytest.raises(InputError, match="larger than 1000 bytes"):
        inspect_wheel(path, Limits(max_read=1000))


# --------------------------------------------------------------------------- sdists


@pytest.mark.parametrize("fmt", ["tar.gz", "zip", "tar.bz2"])
def test_valid_sdist(tmp_path: Path, no_execution: Path, fmt: str) -> None:
    path = make_sdist(tmp_path, "foo", "1.0", no_execution, fmt=fmt, setup_cfg="[metadata]\nname = foo\n")
    before = {p.name for p in tmp_path.iterdir()}
    contents = inspect_sdist(path)
    assert contents.top == "foo-1.0"
    assert contents.pkg_info is not None and b"Name: foo" in contents.pkg_info
    assert contents.setup_cfg is not None and contents.pyproject is None
    assert contents.has_setup_py
    assert (contents.filename_name, contents.filename_version) == ("foo", "1.0")
    assert_nothing_extracted(tmp_path, before)


def test_plain_tar_and_xz_sdists(tmp_path: Path, no_execution: Path) -> None:
    members = sdist_members("foo", "1.0", no_execution)
    for suffix, mode in ((".tar", "w"), (".tar.xz", "w:xz")):
        path = write_tar(tmp_path / f"foo-1.0{suffix}", members, mode)
        assert inspect_sdist(path).top == "foo-1.0"


def test_sdist_symlink_outside_top(tmp_path: Path, no_execution: Path) -> None:
    infos = [
        *base_sdist(tmp_path, no_execution),
        (tinfo("foo-1.0/link", tarfile.SYMTYPE, "../../etc/passwd"), None),
    ]
    path = tar_with(tmp_path / "foo-1.0.tar.gz", infos)
    with pytest.raises(InputError, match=r"^foo-1\.0\.tar\.gz is not a valid sdist: link .* points outside"):
        inspect_sdist(path)


def test_sdist_symlink_to_sibling_top_level(tmp_path: Path, no_execution: Path) -> None:
    infos = [*base_sdist(tmp_path, no_execution), (tinfo("foo-1.0/link", tarfile.SYMTYPE, "../other"), None)]
    path = tar_with(tmp_path / "foo-1.0.tar.gz", infos)
    with pytest.raises(InputError, match=r"points outside foo-1\.0/"):
        inspect_sdist(path)


def test_sdist_absolute_symlink(tmp_path: Path, no_execution: Path) -> None:
    infos = [
        *base_sdist(tmp_path, no_execution),
        (tinfo("foo-1.0/link", tarfile.SYMTYPE, "/etc/passwd"), None),
    ]
    with pytest.raises(InputError, match="absolute path"):
        inspect_sdist(tar_with(tmp_path / "foo-1.0.tar.gz", infos))


def test_sdist_hardlink_outside(tmp_path: Path, no_execution: Path) -> None:
    infos = [
        *base_sdist(tmp_path, no_execution),
        (tinfo("foo-1.0/hard", tarfile.LNKTYPE, "../etc/shadow"), None),
    ]
    with pytest.raises(InputError, match="points outside"):
        inspect_sdist(tar_with(tmp_path / "foo-1.0.tar.gz", infos))


def test_sdist_links_inside_are_fine(tmp_path: Path, no_execution: Path) -> None:
    infos = [
        *base_sdist(tmp_path, no_execution),
        (tinfo("foo-1.0/docs/link", tarfile.SYMTYPE, "../setup.py"), None),
        (tinfo("foo-1.0/hard", tarfile.LNKTYPE, "foo-1.0/setup.py"), None),
    ]
    assert inspect_sdist(tar_with(tmp_path / "foo-1.0.tar.gz", infos)).top == "foo-1.0"


@pytest.mark.parametrize(
    ("name", "reason"),
    [("foo-1.0/../../evil", "escapes the archive"), ("/tmp/evil", "absolute path")],
)
def test_sdist_bad_member_names(tmp_path: Path, no_execution: Path, name: str, reason: str) -> None:
    infos = [*base_sdist(tmp_path, no_execution), (tinfo(name), b"x")]
    path = tar_with(tmp_path / "foo-1.0.tar.gz", infos, "w:gz")
    with pytest.raises(InputError, match=reason):
        inspect_sdist(path)


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_sdist_device_members(tmp_path: Path, no_execution: Path, kind: bytes) -> None:
    infos = [*base_sdist(tmp_path, no_execution), (tinfo("foo-1.0/dev", kind), None)]
    with pytest.raises(InputError, match="device or FIFO"):
        inspect_sdist(tar_with(tmp_path / "foo-1.0.tar.gz", infos))


def test_tar_bomb_declared_size(tmp_path: Path, no_execution: Path) -> None:
    infos = [*base_sdist(tmp_path, no_execution), (tinfo("foo-1.0/big.bin"), bytes(100_000))]
    path = tar_with(tmp_path / "foo-1.0.tar.gz", infos)
    with pytest.raises(InputError, match="declared content exceeds 50000 bytes"):
        inspect_sdist(path, Limits(max_total_size=50_000))


def test_tar_bomb_member_count(tmp_path: Path, no_execution: Path) -> None:
    infos = [*base_sdist(tmp_path, no_execution)] + [(tinfo(f"foo-1.0/f{i}"), b"") for i in range(30)]
    with pytest.raises(InputError, match="more than 10 members"):
        inspect_sdist(tar_with(tmp_path / "foo-1.0.tar.gz", infos), Limits(max_members=10))


def test_tar_oversized_pax_header(tmp_path: Path, no_execution: Path) -> None:
    path = tmp_path / "foo-1.0.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for info, data in base_sdist(tmp_path, no_execution):
            info.size = len(data or b"")
            tf.addfile(info, io.BytesIO(data or b""))
        info = tarfile.TarInfo("foo-1.0/" + "d/" * 3000 + "f")
        info.pax_headers = {"comment": "x" * 10_000}
        tf.addfile(info, io.BytesIO(b""))
    with pytest.raises(InputError, match="oversized extended header"):
        inspect_sdist(path, Limits(max_header=4096))


def test_tar_decompression_is_capped(tmp_path: Path, no_execution: Path) -> None:
    # Declared sizes lie within limits but the stream as a whole is capped too.
    infos = [*base_sdist(tmp_path, no_execution), (tinfo("foo-1.0/zeros"), bytes(3_000_000))]
    path = tar_with(tmp_path / "foo-1.0.tar.gz", infos)
    with pytest.raises(InputError, match="archive bomb"):
        inspect_sdist(path, Limits(max_total_size=1_000_000, max_members=10, max_header=1024))


def test_truncated_tar_gz(tmp_path: Path, no_execution: Path) -> None:
    infos = [*base_sdist(tmp_path, no_execution), (tinfo("foo-1.0/data"), os.urandom(100_000))]
    path = tar_with(tmp_path / "foo-1.0.tar.gz", infos)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5000])
    with pytest.raises(InputError, match=r"^foo-1\.0\.tar\.gz is not a valid sdist: corrupt or truncated"):
        inspect_sdist(path)


def test_garbage_named_tar_gz(tmp_path: Path) -> None:
    path = tmp_path / "foo-1.0.tar.gz"
    path.write_bytes(b"\x1f\x8b" + os.urandom(500))
    with pytest.raises(InputError, match="is not a valid sdist"):
        inspect_sdist(path)
    path.write_bytes(b"hello world, not an archive")
    with pytest.raises(InputError, match="not a tar archive"):
        inspect_sdist(path)


def test_sdist_without_single_top_dir(tmp_path: Path) -> None:
    path2 = write_tar(tmp_path / "bar-1.0.tar.gz", {"a/PKG-INFO": b"", "b/setup.py": b""})
    with pytest.raises(InputError, match="single top-level directory"):
        inspect_sdist(path2)


def test_root_level_sdist_is_accepted_with_a_note(tmp_path: Path) -> None:
    # pip installs an sdist whose files sit at the archive root: so must vet
    pkg_info = b"Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n"
    path = write_tar(
        tmp_path / "foo-1.0.tar.gz", {"PKG-INFO": pkg_info, "setup.py": b"", "foo/__init__.py": b""}
    )
    contents = inspect_sdist(path)
    assert contents.top == ""
    assert contents.pkg_info == pkg_info and contents.has_setup_py
    assert any("archive root" in n for n in contents.notes)


def test_archive_that_is_not_a_distribution(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "foo-1.0.zip", {"foo-1.0/README.txt": b"hello"})
    with pytest.raises(InputError, match=r"foo-1\.0/ has no PKG-INFO, pyproject.toml or setup.py"):
        inspect_sdist(path)


def test_sdist_duplicate_metadata_member(tmp_path: Path, no_execution: Path) -> None:
    infos = [*base_sdist(tmp_path, no_execution), (tinfo("foo-1.0/PKG-INFO"), b"Name: evil\n")]
    with pytest.raises(InputError, match="appears twice"):
        inspect_sdist(tar_with(tmp_path / "foo-1.0.tar.gz", infos))


def test_sdist_top_dir_mismatch_is_noted(tmp_path: Path, no_execution: Path) -> None:
    members = {
        k.replace("foo-1.0/", "foo-2.0/"): v for k, v in sdist_members("foo", "1.0", no_execution).items()
    }
    contents = inspect_sdist(write_tar(tmp_path / "foo-1.0.tar.gz", members))
    assert contents.notes and "does not match the filename" in contents.notes[0]


def test_split_sdist_filename() -> None:
    assert split_sdist_filename("foo_bar-1.0.tar.gz") == ("foo-bar", "1.0")
    assert split_sdist_filename("foo-bar-1.0.zip", "foo-bar") == ("foo-bar", "1.0")
    assert split_sdist_filename("foo-bar-1.0.zip", "foo") == ("foo", "bar-1.0")
    assert split_sdist_filename("foo-1.0.exe") is None
    assert split_sdist_filename("nodash.tar.gz") is None
