"""Transparent sinkhole: every outbound TCP/UDP attempt of the candidate lands here.

Runs inside the sandbox only, as root, standard library only (see the package
docstring). ``agent setup`` calls :func:`start` before any candidate code runs:

1. it binds the listeners on loopback (TCP, UDP, DNS over UDP and TCP; IPv4 and
   IPv6) on random high ports;
2. it forks a daemon (:class:`Daemon`, double fork, pid in :data:`PID_FILE`) that
   serves them for the rest of the container's life, across phase execs;
3. it gives the namespace a LAN-looking interface — a veth pair, because the
   ``dummy`` link type does not exist on every kernel and both veth ends stay in
   this namespace, so nothing can ever be forwarded out — an address, a default
   route, and the NAT rules (:func:`nat_rules`) that send every DNS query
   (whichever resolver it names, 127.x included), every TCP connection and
   every UDP datagram that is not for a local address to the listeners.

Redirection only decides *who answers*: the namespace has no route to anything
outside it, with or without these rules. The rules need ``CAP_NET_ADMIN``; the
container grants it to root only: the candidate runs under ``setpriv`` with an
empty bounding set and no-new-privs, and the agent drops NET_ADMIN from its own
sets before any phase (:func:`guard.drop_capabilities`), so neither the
candidate nor strace ever holds it. A sidecar container sharing the namespace
would keep NET_ADMIN out of the sandbox container entirely, but costs a second
container start (~0.5 s) per run; the capability is confined to root here.

The daemon is single-threaded (one selector loop): it needs no new pid when a
fork bomb has used them all, and every flow is bounded — bytes kept
(``capture_bytes``), concurrent flows (``max_flows``: a new connection evicts the
flow that has been quiet longest), records written (``max_records``), per-flow idle time and
lifetime, and a byte budget for everything written to the output directory.
Limits that bite are recorded (``truncated``, ``close_reason``, the final
``stats`` record), never silently applied.

Output (collected with the traces): ``net.jsonl``, one JSON object per line with
``kind`` ``dns`` | ``tcp`` | ``udp`` | ``stats`` | ``problem``, each tagged with
the phase that was running (read from :data:`PHASE_FILE`, which the agent
writes when a phase starts); ``net-tcp-N.bin``, the first bytes the client sent
on flow N; ``sinkhole.json``, what :func:`start` set up.

Layout (one module per concern, stdlib only, relative imports): ``config``
(constants, limits, the fake LAN, the answering clock), ``dns``, ``tls``
(ClientHello), ``http``, ``smtp`` (banners, SMTP), ``ntp`` (UDP time), ``record``
(net.jsonl, socket owners, flow state), ``daemon`` (the loop), ``netsetup``
(listeners, veth, NAT rules) and ``control`` (:class:`Setup`, :func:`stop`). This
package re-exports what the rest of the agent and the tests use.
"""

from __future__ import annotations

from .config import (
    FAKE_NET,
    FAKE_NET6_PREFIX,
    METADATA_HOSTS,
    PHASE_FILE,
    PID_FILE,
    SO_ORIGINAL_DST,
    STATE_DIR,
    TLS_ALERT_HANDSHAKE_FAILURE,
    TLS_DIR,
    Limits,
    NetConfig,
    Ports,
    now,
)
from .control import Setup, spawn_daemon, start, stop
from .daemon import Daemon
from .dns import (
    QTYPES,
    DnsError,
    DnsQuery,
    FakeDns,
    build_response,
    formerr,
    name_text,
    parse_query,
    read_name,
)
from .http import MAX_HEAD, MAX_HEADERS, MAX_VALUE, HttpStream, http_response, looks_like_http
from .netsetup import bind_listeners, configure_network, link_commands, nat_rules
from .ntp import NTP_EPOCH, ntp_reply
from .record import Flow, Recorder, SocketOwners, current_phase, original_dst
from .smtp import BANNERS, IMPLICIT_TLS, SMTP_PORTS, SmtpStream
from .tls import parse_client_hello

__all__ = [
    "BANNERS",
    "FAKE_NET",
    "FAKE_NET6_PREFIX",
    "IMPLICIT_TLS",
    "MAX_HEAD",
    "MAX_HEADERS",
    "MAX_VALUE",
    "METADATA_HOSTS",
    "NTP_EPOCH",
    "PHASE_FILE",
    "PID_FILE",
    "QTYPES",
    "SMTP_PORTS",
    "SO_ORIGINAL_DST",
    "STATE_DIR",
    "TLS_ALERT_HANDSHAKE_FAILURE",
    "TLS_DIR",
    "Daemon",
    "DnsError",
    "DnsQuery",
    "FakeDns",
    "Flow",
    "HttpStream",
    "Limits",
    "NetConfig",
    "Ports",
    "Recorder",
    "Setup",
    "SmtpStream",
    "SocketOwners",
    "bind_listeners",
    "build_response",
    "configure_network",
    "current_phase",
    "formerr",
    "http_response",
    "link_commands",
    "looks_like_http",
    "name_text",
    "nat_rules",
    "now",
    "ntp_reply",
    "original_dst",
    "parse_client_hello",
    "parse_query",
    "read_name",
    "spawn_daemon",
    "start",
    "stop",
]
