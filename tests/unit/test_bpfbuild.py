"""The compiled eBPF recorder's build inputs (sandbox.runner.bpfbuild): pure parts."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from sandbox.runner.bpfbuild import OFFSETS, WANT_SIZE, _source_dir, cfg_header, pack_config, want_table
from sandbox.runner.btf import MEMBERS
from sandbox.runner.ebpf_program import KIND_CODES, KINDS, syscall_numbers


def test_every_recorded_syscall_is_in_the_want_table_with_its_kind() -> None:
    table = want_table()
    nrs = syscall_numbers()
    wanted = {name: kind for kind, names in KINDS.items() for name in names if name in nrs}
    assert len(table) == WANT_SIZE and max(nrs[n] for n in wanted) < WANT_SIZE
    assert all(table[nrs[name]] == KIND_CODES[kind] for name, kind in wanted.items())
    assert sum(1 for b in table if b) == len(wanted)
    assert table[nrs["read"]] == 0 and table[nrs["openat"]] == KIND_CODES["A"]


def test_the_config_packs_struct_cfg_in_its_declared_order() -> None:
    offsets = {name: 1000 + i for i, name in enumerate(OFFSETS)}
    blob = pack_config(4026532182, 1000, 1, offsets, 4321)
    assert len(blob) == 16 + 8 * len(OFFSETS) + WANT_SIZE  # what loader.c checks against sizeof
    assert struct.unpack_from("<4I", blob) == (1000, 4026532182, 1, 4321)
    assert struct.unpack_from(f"<{len(OFFSETS)}Q", blob, 16) == tuple(1000 + i for i in range(len(OFFSETS)))
    assert set(OFFSETS) == {*MEMBERS, "upid.size"}
    assert blob[16 + 8 * len(OFFSETS) :] == want_table()
    assert pack_config(1, 2, 3, offsets, None)[12:16] == b"\0\0\0\0"  # no sync marker program


def test_every_name_the_c_sources_use_is_defined_by_the_generated_header() -> None:
    header = cfg_header()
    defined = set(re.findall(r"#define (\w+)", header))
    for name in ("recorder.bpf.c", "loader.c"):
        text = (_source_dir() / name).read_text()
        used = set(re.findall(r"\bO\(([A-Z_0-9]+)\)", text))
        assert {f"OFF_{u}" for u in used} <= defined, name
        assert used or name == "loader.c"
        kinds = set(re.findall(r"\bK_[A-Z]\b", text))
        assert kinds <= defined, (name, kinds - defined)


def test_a_build_someone_else_could_have_changed_is_not_run(tmp_path: Path) -> None:
    import pytest

    from sandbox.errors import RecorderUnavailable
    from sandbox.runner.bpfbuild import LOADER, OBJECT, _check_trusted

    dest = tmp_path / "cache" / "0123abcd"
    dest.mkdir(parents=True)
    dest.parent.chmod(0o755)
    dest.chmod(0o755)
    for name in (LOADER, OBJECT):
        (dest / name).write_bytes(b"\0")
        (dest / name).chmod(0o755)
    _check_trusted(dest)  # this user's alone: fine
    (dest / LOADER).chmod(0o777)  # anyone could have replaced what root would run
    with pytest.raises(RecorderUnavailable, match="not this user's alone"):
        _check_trusted(dest)
    (dest / LOADER).chmod(0o755)
    dest.parent.chmod(0o777)
    with pytest.raises(RecorderUnavailable):
        _check_trusted(dest)


def test_a_toolchain_upgrade_changes_the_build_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from sandbox.runner import bpfbuild

    header = tmp_path / "libbpf.h"
    header.write_text("/* 1.1 */")
    monkeypatch.setattr(bpfbuild, "_HEADER", header)
    before = bpfbuild.source_hash()
    assert bpfbuild.source_hash() == before  # stable while nothing changes
    header.write_text("/* 1.2, upgraded */")
    os.utime(header, ns=(1, 2_000_000_000))
    assert bpfbuild.source_hash() != before


def test_builds_unused_for_a_week_are_pruned_others_kept(tmp_path: Path) -> None:
    import os
    import time

    from sandbox.runner.bpfbuild import STALE_SECONDS, _prune

    keep, fresh, stale, other = (tmp_path / n for n in ("a" * 16, "b" * 16, "c" * 16, "not-a-build"))
    for d in (keep, fresh, stale, other):
        d.mkdir()
        (d / "f").write_text("x")
    old = time.time() - STALE_SECONDS - 60
    for d in (keep, stale, other):
        os.utime(d, (old, old))
    _prune(keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([keep.name, fresh.name, other.name])


def test_a_build_marked_unloadable_on_this_kernel_is_not_offered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from sandbox.runner import bpfbuild

    monkeypatch.delenv("PKGSANDBOX_EBPF_LOADER", raising=False)
    monkeypatch.setattr(bpfbuild, "_built", lambda: tmp_path)
    assert bpfbuild.available() == tmp_path
    bpfbuild.mark_unloadable("libbpf: prog 'on_exit': failed to load: -13")
    assert bpfbuild.available() is None  # bpftrace's recorder on this kernel
    # another kernel (the host was upgraded) tries the build again
    (tmp_path / bpfbuild.UNLOADABLE).write_text("5.10.0-old\nwhy\n")
    assert bpfbuild.available() == tmp_path
    assert os.uname().release != "5.10.0-old"
