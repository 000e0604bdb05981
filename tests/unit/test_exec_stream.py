"""``agent run --collect``: JSON lines, then the output tar on the same exec stream.

The engine is faked at its API seam (exec_create / exec_start / exec_inspect); the bytes
are what the agent writes: messages, a ``collect`` line, then a tar until EOF."""

from __future__ import annotations

import io
import json
import socket
import struct
import tarfile
import threading
from pathlib import Path
from typing import Any

from sandbox.runner.docker_backend import DockerSandbox
from sandbox.runner.interface import Observer


class _Api:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def exec_create(self, *_a: Any, **_k: Any) -> dict[str, str]:
        return {"Id": "x"}

    def exec_start(self, *_a: Any, **_k: Any) -> Any:
        # the engine's multiplexed stream on a real socket: one stdout frame per chunk
        ours, theirs = socket.socketpair()
        frames = b"".join(b"\x01\x00\x00\x00" + struct.pack(">I", len(c)) + c for c in self.chunks)
        threading.Thread(target=lambda: (theirs.sendall(frames), theirs.close()), daemon=True).start()
        return ours

    def inspect_container(self, *_a: Any, **_k: Any) -> dict[str, Any]:
        return {"State": {"Running": True}}

    def exec_inspect(self, *_a: Any, **_k: Any) -> dict[str, int]:
        return {"ExitCode": 0}


class _Client:
    def __init__(self, chunks: list[bytes]) -> None:
        self.api = _Api(chunks)


class _Container:
    id = "c"


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w|") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_messages_then_the_tar_on_one_stream(tmp_path: Path) -> None:
    # a tar whose bytes hold newlines and JSON-looking lines: never read as messages
    files = {"install.0.strace": b'{"type": "error", "msg": "not a message"}\n' * 50, "net.jsonl": b"{}\n"}
    tar = _tar(files)
    lines = b"".join(
        json.dumps(m).encode() + b"\n"
        for m in ({"type": "phase", "phase": "install"}, {"type": "done"}, {"type": "collect"})
    )
    stream = lines + tar
    # split so that a chunk boundary falls inside the collect line and another inside the tar
    cut1, cut2 = len(lines) - 5, len(lines) + 700
    chunks = [stream[:cut1], stream[cut1:cut2], stream[cut2:]]
    backend = DockerSandbox(_Client(chunks), None)  # type: ignore[arg-type]
    seen: list[str] = []
    tail = io.BytesIO()
    out = backend._exec_json(
        _Container(),
        ["run", "--collect", "install"],
        timeout=60,
        observer=Observer(),
        on_message=lambda kind, _m: seen.append(kind),
        tail=tail,
    )
    assert seen == ["phase", "done", "collect"]
    assert "error" not in out
    assert tail.getvalue() == tar
    backend._collect(_Container(), tmp_path, tail)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files
