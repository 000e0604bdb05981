"""A detached agent command's output (sandbox.runner.agent_stream, sandbox.agent.detach):
messages, the collect tar in chunks, the end by ``exit`` or by PID 1's reaped notice,
on a stream that never ends by itself. Bytes as the agent and init write them."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from sandbox.agent.detach import Chunked
from sandbox.errors import SandboxError
from sandbox.runner.agent_stream import AgentReader


def _lines(*msgs: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in msgs)


def _tar_chunked(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    plain, framed = io.BytesIO(), io.BytesIO()
    for sink in (plain, Chunked(framed)):  # type: ignore[arg-type]
        with tarfile.open(fileobj=sink, mode="w|") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        if isinstance(sink, Chunked):
            sink.close()
    return plain.getvalue(), framed.getvalue()


def test_chunks_carry_the_tar_then_messages_go_on() -> None:
    files = {"import.0.strace": b'{"type": "exit", "code": 9}\n00000000' * 40, "net.jsonl": b"{}\n"}
    tar, framed = _tar_chunked(files)
    assert framed.endswith(b"00000000")
    stream = _lines({"type": "done"}, {"type": "collect"}) + framed + _lines({"type": "exit", "code": 0})
    seen: list[str] = []
    tail = io.BytesIO()
    r = AgentReader(lambda k, _m: seen.append(k), tail, chunked=True, pid=42)
    for i in range(0, len(stream), 777):  # frames cut anywhere: inside a length, a chunk, a line
        assert not r.exited
        r.stdout(stream[i : i + 777])
    assert r.exited and r.finished() and r.code == 0
    assert seen == ["done", "collect"] and tail.getvalue() == tar


def test_an_agent_that_dies_without_a_word_ends_by_init_s_notice() -> None:
    r = AgentReader(lambda k, m: None, chunked=True, pid=42)
    r.stdout(_lines({"type": "phase", "phase": "import"}))
    r.stderr(b"Traceback (most recent call last):\n  ...\nMemoryError\n\x1ereaped 41 0\n")
    assert not r.finished() and r.code is None  # another child of PID 1
    r.stderr(b"\x1ereap")
    r.stderr(b"ed 42 9\n")  # killed by SIGKILL (wait status 9)
    assert r.code == 137 and not r.exited
    assert not r.finished()  # its last messages may still be on the way (separate pipes)
    r._reaped_at = time.monotonic() - 5
    assert r.finished()
    assert "MemoryError" in r.detail and "reaped" not in r.detail


def test_an_exit_message_after_the_notice_still_counts() -> None:
    r = AgentReader(lambda k, m: None, chunked=True, pid=7)
    r.stderr(b"\x1ereaped 7 0\n")
    r.stdout(_lines({"type": "exit", "code": 3}))
    assert r.exited and r.code == 3


def test_an_exec_stream_reads_the_tar_to_the_end_and_needs_no_exit() -> None:
    tail = io.BytesIO()
    r = AgentReader(lambda k, m: None, tail)
    r.stdout(_lines({"type": "collect"}) + b'raw {"type": "exit"}\n')
    assert tail.getvalue() == b'raw {"type": "exit"}\n' and not r.exited and r.code is None


def test_a_tar_nobody_asked_for_is_refused() -> None:
    r = AgentReader(lambda k, m: None, None, chunked=True, pid=1)
    r.stdout(_lines({"type": "collect"}))  # no tail: read as a message, nothing raw follows
    assert "collect" in r.out
    with pytest.raises(SandboxError):
        AgentReader(lambda k, m: None, None)._keep(b"x")


def test_an_exec_d_agent_waits_for_the_unified_move_only_under_the_wrapper(tmp_path: Path) -> None:
    from sandbox.agent.detach import await_placement

    cg = tmp_path / "cgroup"
    session = "/user.slice/user-1000.slice/session-4.scope"
    cg.write_text(f"9:name=systemd:{session}\n4:memory:{session}\n0::/\n")
    t = time.monotonic()
    assert not await_placement(0.2, str(cg)) and time.monotonic() - t >= 0.2  # never moved
    cg.write_text(f"9:name=systemd:{session}\n0::{session}\n")
    assert not await_placement(5, str(cg))  # placed already
    cg.write_text("9:name=systemd:/\n0::/\n")
    assert not await_placement(5, str(cg))  # plain runc: nothing to wait for
    cg.write_text(f"0::{session}\n")
    assert not await_placement(5, str(cg))  # cgroup v2 only: runc placed it
    cg.write_text(f"9:name=systemd:{session}\n0::/\n")
    import threading

    threading.Timer(0.05, lambda: cg.write_text(f"9:name=systemd:{session}\n0::{session}\n")).start()
    assert await_placement(2, str(cg))  # the shell front's move came
