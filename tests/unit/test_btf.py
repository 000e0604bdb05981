"""The BTF reader that gives the eBPF program its kernel offsets, on a hand-built blob
and on this kernel's own BTF (a fact the recorder depends on, checked against
values bpftrace's ``curtask->…`` resolution gave on kernel 6.18 here)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from sandbox.runner.btf import MEMBERS, VMLINUX, Btf, BtfError, empty_btf, kernel_offsets
from sandbox.runner.ebpf_recorder import bpftrace_env, rss_text


def _blob() -> bytes:
    # strings: "", "inner", "a", "b", "outer", "x", "in"
    names = [b"", b"inner", b"a", b"b", b"outer", b"x", b"in", b"int"]
    strs, off = b"", {}
    for n in names:
        off[n] = len(strs)
        strs += n + b"\0"
    types = b""
    # 1: int (4 bytes)
    types += struct.pack("<3I", off[b"int"], 1 << 24, 4) + struct.pack("<I", 32)
    # 2: struct inner { int a @0; int b @4; } size 8
    types += struct.pack("<3I", off[b"inner"], (4 << 24) | 2, 8)
    types += struct.pack("<3I", off[b"a"], 1, 0) + struct.pack("<3I", off[b"b"], 1, 32)
    # 3: anonymous union { int x @0 } size 4
    types += struct.pack("<3I", 0, (5 << 24) | 1, 4) + struct.pack("<3I", off[b"x"], 1, 0)
    # 4: typedef inner_t -> 2
    types += struct.pack("<3I", off[b"in"], 8 << 24, 2)
    # 5: struct outer { int a @0; <anon union> @64; inner_t in @128 } size 24
    types += struct.pack("<3I", off[b"outer"], (4 << 24) | 3, 24)
    types += struct.pack("<3I", off[b"a"], 1, 0) + struct.pack("<3I", 0, 3, 64)
    types += struct.pack("<3I", off[b"in"], 4, 128)
    hdr = struct.pack("<HBBI4I", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strs))
    return hdr + types + strs


def test_offsets_through_typedefs_and_anonymous_members() -> None:
    btf = Btf(_blob())
    assert btf.offset("outer.a") == 0
    assert btf.offset("outer.x") == 8  # inside the anonymous union
    assert btf.offset("outer.in.b") == 20  # through the typedef
    assert btf.size("outer") == 24 and btf.size("inner") == 8
    with pytest.raises(BtfError):
        btf.offset("outer.nope")
    with pytest.raises(BtfError):
        btf.offset("missing.a")
    with pytest.raises(BtfError):
        Btf(b"not btf at all, really not")


def test_the_empty_btf_given_to_bpftrace_is_valid_and_describes_nothing(tmp_path: Path) -> None:
    blob = empty_btf()
    btf = Btf(blob)  # a valid header and string section, or this raises
    assert btf.by_name == {}
    # header length, type section offset and length, string section offset and length
    assert struct.unpack_from("<5I", blob, 4) == (24, 0, 0, 0, 1) and len(blob) == 25
    env = bpftrace_env(tmp_path)
    assert Path(env["BPFTRACE_BTF"]).read_bytes() == blob
    assert Path(env["BPFTRACE_BTF"]).parent == tmp_path


def test_rss_text_gives_mib_and_mb() -> None:
    # the doctor line and the report's note: issue 13's target is in MB
    assert rss_text(91392) == "89 MiB = 94 MB"
    assert rss_text(104660) == "102 MiB = 107 MB"


@pytest.mark.skipif(not VMLINUX.exists(), reason="kernel without BTF")
def test_this_kernels_offsets_and_their_cache(tmp_path: Path) -> None:
    first = kernel_offsets(cache_dir=tmp_path)
    assert set(first) == {*MEMBERS, "upid.size"}
    assert first["upid.size"] == 16 and first["upid.nr"] == 0
    assert (tmp_path / "btf-offsets.json").exists()
    assert kernel_offsets(cache_dir=tmp_path) == first
    (tmp_path / "btf-offsets.json").write_text("{garbage")
    assert kernel_offsets(cache_dir=tmp_path) == first
