"""Reading a TLS ClientHello (SNI, ALPN, version) before deciding to terminate it."""

from __future__ import annotations

import struct
from typing import Any

# --------------------------------------------------------------------------- TLS


def parse_client_hello(buf: bytes) -> tuple[str, dict[str, Any]]:
    """``("need", {})`` until a whole ClientHello is there, then ``("ok", info)`` with
    ``sni``, ``alpn``, ``version``; ``("bad", {"error": ...})`` for anything else."""
    hs = bytearray()
    pos = 0
    while True:
        if len(buf) - pos < 5:
            if len(hs) < 4 or len(hs) < 4 + int.from_bytes(hs[1:4], "big"):
                return "need", {}
            return _hello(hs)
        ctype, major, minor = buf[pos], buf[pos + 1], buf[pos + 2]
        length = int.from_bytes(buf[pos + 3 : pos + 5], "big")
        if ctype != 22 or major != 3:
            return "bad", {"error": f"record type {ctype} version {major}.{minor}: not a TLS handshake"}
        if length == 0 or length > 18432:
            return "bad", {"error": f"record length {length}"}
        if len(buf) - pos - 5 < length:
            return "need", {}
        hs += buf[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if len(hs) >= 4:
            if hs[0] != 1:
                return "bad", {"error": f"handshake type {hs[0]}, not ClientHello"}
            need = 4 + int.from_bytes(hs[1:4], "big")
            if need > 65536:
                return "bad", {"error": "ClientHello longer than 64 KiB"}
            if len(hs) >= need:
                return _hello(hs[:need])


_TLS_VERSIONS = {
    0x0300: "SSL 3.0",
    0x0301: "TLS 1.0",
    0x0302: "TLS 1.1",
    0x0303: "TLS 1.2",
    0x0304: "TLS 1.3",
}


def _hello(hs: bytes | bytearray) -> tuple[str, dict[str, Any]]:
    try:
        return "ok", _hello_fields(bytes(hs))
    except (IndexError, ValueError, struct.error) as exc:
        return "bad", {"error": f"malformed ClientHello: {exc}"}


def _hello_fields(hs: bytes) -> dict[str, Any]:
    body = hs[4:]
    p = 0
    version = int.from_bytes(body[p : p + 2], "big")
    p += 2 + 32
    p += 1 + body[p]  # session id
    cs_len = int.from_bytes(body[p : p + 2], "big")
    p += 2 + cs_len
    p += 1 + body[p]  # compression methods
    if p > len(body):
        raise ValueError("runs past the end")
    info: dict[str, Any] = {"sni": None, "alpn": [], "version": _TLS_VERSIONS.get(version, hex(version))}
    if p + 2 > len(body):
        return info
    ext_end = p + 2 + int.from_bytes(body[p : p + 2], "big")
    p += 2
    while p + 4 <= min(ext_end, len(body)):
        etype, elen = struct.unpack("!HH", body[p : p + 4])
        data = body[p + 4 : p + 4 + elen]
        p += 4 + elen
        if etype == 0 and len(data) >= 5:  # server_name
            q = 2
            while q + 3 <= len(data):
                kind, n = data[q], int.from_bytes(data[q + 1 : q + 3], "big")
                if kind == 0:
                    info["sni"] = data[q + 3 : q + 3 + n].decode("ascii", "backslashreplace")
                    break
                q += 3 + n
        elif etype == 16 and len(data) >= 2:  # ALPN
            q = 2
            while q < len(data):
                n = data[q]
                info["alpn"].append(data[q + 1 : q + 1 + n].decode("ascii", "backslashreplace"))
                q += 1 + n
        elif etype == 43 and data:  # supported_versions
            vs = [int.from_bytes(data[i : i + 2], "big") for i in range(1, 1 + data[0], 2)]
            known = [v for v in vs if v in _TLS_VERSIONS]
            if known:
                info["version"] = _TLS_VERSIONS[max(known)]
    return info
