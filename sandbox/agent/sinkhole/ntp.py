"""NTP over UDP: the answer carries the sinkhole's (possibly time-travelled) clock."""

from __future__ import annotations

import struct

from .config import now

NTP_EPOCH = 2208988800  # 1900-01-01 → 1970-01-01


def _ntp_stamp(t: float) -> bytes:
    return struct.pack("!II", int(t) + NTP_EPOCH, int((t % 1) * (1 << 32)) & 0xFFFFFFFF)


def ntp_reply(request: bytes, t: float | None = None) -> bytes | None:
    """A stratum-2 server's answer to an NTP/SNTP client request (mode 3), or None
    when *request* is not one. Its clock is :func:`now` (the shifted one in a
    time-travel pass), so a payload that asks the network for the date sees the
    same date as its own clock."""
    if len(request) < 48 or request[0] & 0x07 != 3:
        return None
    version = (request[0] >> 3) & 0x07 or 4
    t = now() if t is None else t
    return (
        bytes([(version << 3) | 4, 2, request[2], 0xEC])
        + struct.pack("!II", 0x00000200, 0x00000400)
        + bytes([192, 0, 2, 123])
        + _ntp_stamp(t - 30)
        + request[40:48]
        + _ntp_stamp(t)
        + _ntp_stamp(t)
    )
