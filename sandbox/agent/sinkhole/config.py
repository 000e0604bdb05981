"""The sinkhole's constants, limits and the LAN it pretends to be on (see the package docstring)."""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import passes

STATE_DIR = Path("/var/lib/devtools")
PHASE_FILE = STATE_DIR / "phase"
PID_FILE = STATE_DIR / "sinkhole.pid"
TLS_DIR = STATE_DIR / "tls"  # the leaves' key (root-only tmpfs, never collected)
SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h; IP6T_SO_ORIGINAL_DST has the same value
FAKE_NET = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544 benchmarking: never routed
FAKE_NET6_PREFIX = "64:ff9b::"  # the NAT64 well-known prefix, + the fake IPv4 address
TLS_ALERT_HANDSHAKE_FAILURE = b"\x15\x03\x03\x00\x02\x02\x28"
METADATA_HOSTS = frozenset(
    {
        "169.254.169.254",
        "fd00:ec2::254",
        "169.254.170.2",
        "100.100.100.200",
        "metadata.google.internal",
        "metadata",
    }
)


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Limits:
    """Bounds of the capture (``plan["sinkhole"]`` overrides any of them)."""

    capture_bytes: int = 65536  # client bytes kept per TCP flow
    udp_capture_bytes: int = 4096  # bytes kept per datagram
    body_keep: int = 16384  # de-chunked HTTP body bytes kept per request (in the record)
    max_flows: int = 256  # concurrent TCP flows; a new one evicts the longest-quiet one
    max_records: int = 2000  # tcp + udp records written; more are only counted
    max_dns_records: int = 5000
    idle_seconds: float = 10.0  # a flow silent this long is closed
    flow_seconds: float = 30.0  # a flow is closed after this long, whatever it does
    total_bytes: int = 32 << 20  # everything written to the output directory
    max_requests: int = 16  # HTTP requests parsed per flow
    lookup_seconds: float = 3.0  # total time spent finding which process owns a socket

    @classmethod
    def from_plan(cls, conf: dict[str, Any]) -> Limits:
        """Limits from the plan, each clamped to a sane range (bad values fall back)."""
        out: dict[str, Any] = {}
        for name, default in cls().__dict__.items():
            value = conf.get(name, default)
            try:
                num = type(default)(value)
            except (TypeError, ValueError):
                num = default
            out[name] = max(type(default)(1), min(num, type(default)(default * 64)))
        return cls(**out)


_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_STAGE = re.compile(r"/[A-Za-z0-9._/-]{1,120}")  # no quote or space: it goes into code


@dataclass(frozen=True)
class NetConfig:
    """The LAN the sandbox pretends to be on (chosen per run by the host)."""

    address: str = "192.168.1.57"
    prefix: int = 24
    gateway: str = "192.168.1.1"
    address6: str = "fd42:1:2:3::57"
    gateway6: str = "fe80::1"
    hostname: str = "localhost"
    # the interfaces' MACs (a vendor's OUI: the kernel's random veth MACs are locally
    # administered, a tell); empty = the kernel's
    macs: tuple[str, ...] = ()
    # the path the bait second stage looks for (see http.stage_body); "" = empty answers
    stage: str = ""

    @classmethod
    def from_plan(cls, plan: dict[str, Any]) -> NetConfig:
        net = dict(plan.get("sinkhole", {}).get("net", {}))
        base = cls()
        return cls(
            address=str(net.get("address", base.address)),
            prefix=int(net.get("prefix", base.prefix)),
            gateway=str(net.get("gateway", base.gateway)),
            address6=str(net.get("address6", base.address6)),
            gateway6=str(net.get("gateway6", base.gateway6)),
            hostname=str(plan.get("hostname", base.hostname)),
            macs=tuple(m for m in [str(x) for x in net.get("macs", ())][:2] if _MAC.fullmatch(m)),
            stage=stage if _STAGE.fullmatch(stage := str(plan.get("sinkhole", {}).get("stage", ""))) else "",
        )


@dataclass
class Ports:
    tcp: int
    udp: int
    dns: int


def now() -> float:
    """The clock the sinkhole answers with: the time-travel pass's, while it runs."""
    return time.time() + passes.clock_shift()
