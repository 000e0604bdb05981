"""Kernel struct member offsets from the running kernel's BTF (``/sys/kernel/btf/vmlinux``).

Why: bpftrace 0.17 resolves ``curtask->a->b`` by handing clang the C definitions of
every type those structs reach (``task_struct`` reaches thousands) whenever a
program also reads tracepoint ``args``. That clang parse was a third of the
recorder's start-up CPU and 10 MB of its RSS. The program reads the few kernel
fields it needs at literal offsets instead, and this module finds them: a
minimal, pure reader of the BTF type section (format: the kernel's
``Documentation/bpf/btf.rst``), nothing executed.
"""

from __future__ import annotations

import functools
import json
import os
import struct
from pathlib import Path

from sandbox.errors import SandboxError

VMLINUX = Path("/sys/kernel/btf/vmlinux")
_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pkgsandbox"
_MAGIC = 0xEB9F
_STRUCT, _UNION = 4, 5
_REFS = (8, 9, 10, 11, 18)  # typedef, volatile, const, restrict, type tag
# Bytes of kind-specific data after the 12-byte common header: (fixed, per vlen item).
_EXTRA: dict[int, tuple[int, int]] = {
    1: (4, 0),  # INT
    3: (12, 0),  # ARRAY
    4: (0, 12),  # STRUCT
    5: (0, 12),  # UNION
    6: (0, 8),  # ENUM
    13: (0, 8),  # FUNC_PROTO
    14: (4, 0),  # VAR
    15: (0, 12),  # DATASEC
    17: (4, 0),  # DECL_TAG
    19: (0, 12),  # ENUM64
}


class BtfError(SandboxError):
    """The kernel's BTF could not be read or lacks a member the recorder needs."""


class Btf:
    """The struct/union part of a BTF blob, enough to compute member offsets.

    One lean pass records where each type starts; members are decoded only for the
    few structs asked about (a full decode of 120k types took seconds).
    """

    def __init__(self, data: bytes) -> None:
        if len(data) < 24 or struct.unpack_from("<H", data)[0] != _MAGIC:
            raise BtfError("not a little-endian BTF blob")
        hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<5I", data, 4)
        self._data = data
        self._strings = data[hdr_len + str_off : hdr_len + str_off + str_len]
        self._pos: list[int] = [0]  # type id 0 is void
        self.by_name: dict[str, int] = {}
        unpack, extra, pos = struct.unpack_from, _EXTRA, hdr_len + type_off
        end = pos + type_len
        structs: list[tuple[int, int]] = []
        while pos < end:
            self._pos.append(pos)
            name_off, info = unpack("<2I", data, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            if kind == _STRUCT and vlen and name_off:
                structs.append((name_off, len(self._pos) - 1))
            fixed, each = extra.get(kind, (0, 0))
            pos += 12 + fixed + each * vlen
        for name_off, type_id in structs:
            self.by_name.setdefault(self._str(name_off), type_id)

    def _str(self, off: int) -> str:
        end = self._strings.index(b"\0", off)
        return self._strings[off:end].decode()

    def _head(self, type_id: int) -> tuple[int, int, int, int]:
        """(kind, vlen, kind_flag, size or referenced type) of a type."""
        _name, info, size = struct.unpack_from("<3I", self._data, self._pos[type_id])
        return (info >> 24) & 0x1F, info & 0xFFFF, info >> 31, size

    def _strip(self, type_id: int) -> int:
        """Skip typedefs and qualifiers."""
        while type_id:
            kind, _vlen, _kflag, ref = self._head(type_id)
            if kind not in _REFS:
                break
            type_id = ref
        return type_id

    def _member(self, type_id: int, name: str) -> tuple[int, int] | None:
        """(byte offset, type id) of *name* in a struct/union, looking into anonymous members."""
        type_id = self._strip(type_id)
        kind, vlen, kflag, _size = self._head(type_id)
        if kind not in (_STRUCT, _UNION):
            return None
        base = self._pos[type_id] + 12
        for i in range(vlen):
            m_name, m_type, m_off = struct.unpack_from("<3I", self._data, base + 12 * i)
            bits = m_off & 0xFFFFFF if kflag else m_off
            label = self._str(m_name) if m_name else ""
            if label == name:
                return bits // 8, m_type
            if not label:
                inner = self._member(m_type, name)
                if inner is not None:
                    return bits // 8 + inner[0], inner[1]
        return None

    def offset(self, path: str) -> int:
        """Byte offset of a member path such as ``pid_namespace.ns.inum``."""
        root, *names = path.split(".")
        if root not in self.by_name:
            raise BtfError(f"BTF has no struct {root}")
        type_id, total = self.by_name[root], 0
        for name in names:
            found = self._member(type_id, name)
            if found is None:
                raise BtfError(f"BTF: no member {name!r} on the way to {path}")
            total += found[0]
            type_id = found[1]
        return total

    def size(self, name: str) -> int:
        """sizeof(struct *name*)."""
        if name not in self.by_name:
            raise BtfError(f"BTF has no struct {name}")
        return self._head(self.by_name[name])[3]


@functools.lru_cache(maxsize=1)
def kernel_btf(path: Path = VMLINUX) -> Btf:
    """The running kernel's BTF (parsed once per process)."""
    try:
        return Btf(path.read_bytes())
    except OSError as exc:
        raise BtfError(f"cannot read {path}: {exc}") from exc


# The kernel members the recorder's program reads, by the name the program uses.
MEMBERS = {
    "task.tgid": "task_struct.tgid",
    "task.real_parent": "task_struct.real_parent",
    "task.group_leader": "task_struct.group_leader",
    "task.thread_pid": "task_struct.thread_pid",
    "task.nsproxy": "task_struct.nsproxy",
    "task.files": "task_struct.files",
    "task.exit_code": "task_struct.exit_code",
    "task.signal": "task_struct.signal",
    "task.mm": "task_struct.mm",
    "mm.arg_start": "mm_struct.arg_start",
    "mm.arg_end": "mm_struct.arg_end",
    "signal.group_exit_code": "signal_struct.group_exit_code",
    "nsproxy.pid_ns": "nsproxy.pid_ns_for_children",
    "pidns.inum": "pid_namespace.ns.inum",
    "pid.numbers": "pid.numbers",
    "upid.nr": "upid.nr",
    "files.fdt": "files_struct.fdt",
    "fdt.fd": "fdtable.fd",
    "file.inode": "file.f_inode",
    "file.private": "file.private_data",
    "inode.mode": "inode.i_mode",
    "inode.ino": "inode.i_ino",
    "inode.sb": "inode.i_sb",
    "sb.dev": "super_block.s_dev",
    "socket.sk": "socket.sk",
    "sk.family": "sock.__sk_common.skc_family",
    "sk.dport": "sock.__sk_common.skc_dport",
    "sk.daddr": "sock.__sk_common.skc_daddr",
    "sk.v6_daddr": "sock.__sk_common.skc_v6_daddr",
}


def kernel_offsets(path: Path = VMLINUX, cache_dir: Path | None = None) -> dict[str, int]:
    """Offsets of :data:`MEMBERS` (plus ``upid.size``) in the running kernel.

    Cached on disk per kernel build: reading 120k BTF types costs a few hundred
    milliseconds, every run.
    """
    uname = os.uname()
    try:
        key = f"{uname.release} {uname.version} {path.stat().st_size}"
    except OSError as exc:
        raise BtfError(f"cannot read {path}: {exc}") from exc
    cache = (cache_dir or _CACHE_DIR) / "btf-offsets.json"
    try:
        stored = json.loads(cache.read_text())
        if stored.get("key") == key and set(stored["offsets"]) == {*MEMBERS, "upid.size"}:
            return {k: int(v) for k, v in stored["offsets"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    btf = kernel_btf(path)
    offsets = {name: btf.offset(member) for name, member in MEMBERS.items()}
    offsets["upid.size"] = btf.size("upid")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": key, "offsets": offsets}))
        tmp.replace(cache)
    except OSError:
        pass  # a cache we cannot write only costs time
    return offsets


def empty_btf() -> bytes:
    """A valid BTF blob that describes no type, for bpftrace's ``BPFTRACE_BTF``.

    Why: bpftrace 0.17 loads the whole kernel BTF (``/sys/kernel/btf/vmlinux``,
    about 6 MB here) into its heap whatever the program, which was 13 MB of the
    recorder's peak RSS. The program reads no kernel type through bpftrace (the
    offsets come from :func:`kernel_offsets`, tracepoint ``args`` from tracefs), so
    bpftrace builds the same bytecode without it (``--emit-elf`` output is
    byte-identical; an integration test checks that on this kernel).
    """
    strings = b"\0"  # string 0 is the empty name every BTF starts with
    header = struct.pack("<HBBI4I", _MAGIC, 1, 0, 24, 0, 0, 0, len(strings))
    return header + strings
