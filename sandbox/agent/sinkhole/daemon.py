"""The sinkhole daemon: one selector loop serving every listener (see the package docstring)."""

from __future__ import annotations

import contextlib
import selectors
import signal
import socket
import ssl
import time
import traceback
from pathlib import Path
from typing import Any

from .. import tlsca
from .config import PHASE_FILE, TLS_ALERT_HANDSHAKE_FAILURE, Limits, NetConfig
from .dns import QTYPES, DnsError, FakeDns, build_response, formerr, name_text, parse_query
from .http import HttpStream, looks_like_http, stage_body
from .ntp import ntp_reply
from .record import (
    Flow,
    Recorder,
    SocketOwners,
    _b64,
    _hostport,
    _record_proto,
    _ssl_reason,
    current_phase,
    original_dst,
)
from .smtp import BANNERS, IMPLICIT_TLS, SMTP_PORTS, SmtpStream
from .tls import parse_client_hello


class Daemon:
    """The selector loop serving every listener (see the package docstring)."""

    def __init__(
        self,
        socks: dict[str, list[socket.socket]],
        limits: Limits,
        net: NetConfig,
        out: Path,
        phase_file: Path = PHASE_FILE,
        authority: tlsca.Authority | None = None,
    ) -> None:
        self.socks = socks
        self.authority = authority
        self.phase_file = phase_file
        self.wake_r, self.wake_w = socket.socketpair()
        self.limits = limits
        self.net = net
        self.rec = Recorder(out, limits)
        self.fake = FakeDns(net)
        self.owners = SocketOwners(limits.lookup_seconds)
        self.sel = selectors.DefaultSelector()
        self.flows: dict[int, Flow] = {}
        self.next_id = 0
        self.stopping = False
        self.stats: dict[str, int] = {
            "tcp_accepted": 0,
            "tcp_evicted": 0,
            "udp_datagrams": 0,
            "dns_queries": 0,
            "dns_malformed": 0,
            "tls_terminated": 0,
            "tls_refused": 0,
            "errors": 0,
        }
        self.problems = 0

    # -- plumbing
    def run(self, signals: bool = True) -> None:
        """Serve until SIGTERM (or :meth:`request_stop`), then write what is still open."""
        if signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        self.wake_r.setblocking(False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, ("wake", None))
        for kind, socks in self.socks.items():
            for s in socks:
                s.setblocking(False)
                self.sel.register(s, selectors.EVENT_READ, (kind, None))
        while not self.stopping:
            try:
                events = self.sel.select(timeout=0.25)
            except InterruptedError:
                continue
            for key, mask in events:
                kind, flow = key.data
                try:
                    if kind == "wake":
                        continue
                    if kind in ("tcp", "dns_tcp"):
                        self._accept(key.fileobj, "tcp" if kind == "tcp" else "dns")  # type: ignore[arg-type]
                    elif kind == "udp":
                        self._udp(key.fileobj)  # type: ignore[arg-type]
                    elif kind == "dns_udp":
                        self._dns_udp(key.fileobj)  # type: ignore[arg-type]
                    elif flow is not None:
                        if mask & selectors.EVENT_WRITE:
                            self._flush(flow)
                        if mask & selectors.EVENT_READ and flow.fid in self.flows:
                            self._read(flow)
                except Exception as exc:  # one bad flow must never stop the listener
                    self._problem(f"{kind}: {type(exc).__name__}: {exc}")
                    if flow is not None and flow.fid in self.flows:
                        self._finish(flow, "error")
            self._sweep(time.monotonic())
        for flow in list(self.flows.values()):
            self._finish(flow, "shutdown")
        self.rec.write(
            {
                "kind": "stats",
                "t": time.time(),
                **self.stats,
                "suppressed": self.rec.suppressed,
                "budget_hit": self.rec.budget_hit,
                "lookup_seconds": round(self.owners.spent, 3),
            }
        )
        self.rec.close()

    def _on_signal(self, *_: object) -> None:
        self.request_stop()

    def request_stop(self) -> None:
        """Stop serving (from a signal handler or another thread)."""
        self.stopping = True
        with contextlib.suppress(OSError):
            self.wake_w.send(b"x")

    def _problem(self, msg: str) -> None:
        self.stats["errors"] += 1
        self.problems += 1
        if self.problems <= 50:
            self.rec.write(
                {
                    "kind": "problem",
                    "t": time.time(),
                    "msg": msg[:500],
                    "trace": traceback.format_exc(limit=4)[-1500:],
                }
            )

    # -- TCP
    def _accept(self, lsock: socket.socket, kind: str) -> None:
        for _ in range(64):
            try:
                conn, src = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: stop accepting this round
                self._problem(f"accept: {exc}")
                return
            now = time.monotonic()
            dst = original_dst(conn) or tuple(conn.getsockname()[:2])
            self.next_id += 1
            self.stats["tcp_accepted"] += 1
            phase = current_phase(self.phase_file)
            if len(self.flows) >= self.limits.max_flows:
                # Full: close the flow that has been quiet longest rather than refuse the
                # new one, so that a flood of idle connections cannot blind the sinkhole
                # to the one that carries the data.
                self.stats["tcp_evicted"] += 1
                self._finish(min(self.flows.values(), key=lambda f: f.last), "evicted")
            pid, argv = self.owners.lookup("tcp", int(src[1]))
            conn.setblocking(False)
            flow = Flow(
                self.next_id,
                conn,
                kind,
                tuple(src),
                (str(dst[0]), int(dst[1])),
                phase,
                time.time(),
                now,
                pid,
                argv,
                last=now,
            )
            self.flows[flow.fid] = flow
            self.sel.register(conn, selectors.EVENT_READ, ("flow", flow))
            if kind == "dns":
                flow.proto = "dns"
            elif flow.dst[1] in BANNERS and BANNERS[flow.dst[1]]:
                self._send(flow, BANNERS[flow.dst[1]])
                flow.proto = "smtp" if flow.dst[1] in SMTP_PORTS else "unknown"
                if flow.proto == "smtp":
                    flow.smtp = SmtpStream()

    def _read(self, flow: Flow) -> None:
        try:
            data = flow.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._finish(flow, "reset" if isinstance(exc, ConnectionResetError) else "error")
            return
        if not data:
            self._finish(flow, "eof")
            return
        flow.last = time.monotonic()
        flow.total += len(data)
        room = self.limits.capture_bytes - len(flow.capture)
        if room > 0:
            flow.capture += data[:room]
        self._incoming(flow, data)

    def _incoming(self, flow: Flow, data: bytes) -> None:
        """Client bytes: through the TLS session when one was terminated."""
        if flow.tls_obj is not None:
            self._tls_feed(flow, data)
        else:
            self._protocol(flow, data)

    def _protocol(self, flow: Flow, data: bytes) -> None:
        if flow.proto == "":
            flow.sniff += data
            head = bytes(flow.sniff[:16])
            if head[:1] == b"\x16":
                flow.proto = "tls"
            elif looks_like_http(head):
                flow.proto = "http"
                flow.http = HttpStream(self.limits, stage_body(self.net.stage))
            elif len(head) >= 16 or b" " in head or b"\n" in head or not head[:1].isupper():
                flow.proto = "unknown"
            else:
                return  # a method name arriving byte by byte: wait for more
            data = bytes(flow.sniff)
            flow.sniff = bytearray()
        if flow.proto == "http" and flow.http is not None:
            for reply in flow.http.feed(data):
                self._send(flow, reply)
            if flow.http.state == "tunnel":
                # CONNECT: what follows is whatever the client tunnels (usually TLS)
                flow.http_done, flow.http = flow.http, None
                flow.proto = ""
                if flow.http_done.leftover:
                    self._protocol(flow, flow.http_done.leftover)
            elif flow.http.close_after and flow.http.state == "head" and not flow.http.buf:
                self._shut_write(flow)  # HTTP/1.0 or "Connection: close": answered, done
        elif flow.proto == "tls" and flow.tls is None:
            if len(flow.tls_buf) < 70000:
                flow.tls_buf += data
            status, info = parse_client_hello(bytes(flow.tls_buf))
            if status != "need" or len(flow.tls_buf) >= 70000:
                flow.tls = info if status == "ok" else {"error": info.get("error", "incomplete ClientHello")}
                hello, flow.tls_buf = bytes(flow.tls_buf), bytearray()
                if status == "ok" and self.authority is not None and self._tls_start(flow, hello):
                    return
                self._send(flow, TLS_ALERT_HANDSHAKE_FAILURE)
                self._shut_write(flow)
        elif flow.proto == "dns":
            self._dns_tcp(flow, data)
        elif flow.proto == "smtp" and flow.smtp is not None:
            for reply in flow.smtp.feed(data):
                self._send(flow, reply)

    # -- TLS termination
    def _tls_start(self, flow: Flow, hello: bytes) -> bool:
        """Answer the ClientHello as the server it named, with a leaf of the run's CA
        for its SNI (the original destination address without SNI). False: not
        possible (no leaf), the caller refuses as before."""
        assert self.authority is not None and flow.tls is not None
        host = flow.tls.get("sni") or flow.dst[0]
        try:
            ctx = self.authority.context(str(host))
        except (tlsca.LeafBudget, OSError, ssl.SSLError, ValueError) as exc:
            flow.tls["handshake_error"] = f"no certificate for {str(host)[:100]}: {exc}"[:300]
            return False
        flow.tls_in, flow.tls_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        flow.tls_obj = ctx.wrap_bio(flow.tls_in, flow.tls_out, server_side=True)
        self._tls_feed(flow, hello)
        return True

    def _tls_feed(self, flow: Flow, data: bytes) -> None:
        obj, tin = flow.tls_obj, flow.tls_in
        assert obj is not None and tin is not None and flow.tls is not None
        if data:
            tin.write(data)
        if not flow.tls_up:
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                self._tls_flush(flow)
                return
            except (ssl.SSLError, OSError) as exc:
                # the usual case: the client does not trust the CA (pinning, its own
                # store) and says so with an alert; that reason is the record
                self.stats["tls_refused"] += 1
                flow.tls["handshake_error"] = _ssl_reason(exc)
                self._tls_flush(flow)
                flow.tls_obj = None
                self._shut_write(flow)
                return
            flow.tls_up = True
            self.stats["tls_terminated"] += 1
            flow.tls["intercepted"] = True
            flow.tls["negotiated"] = {
                "version": obj.version() or "",
                "alpn": obj.selected_alpn_protocol() or "",
                "cipher": (obj.cipher() or ("",))[0],
            }
            flow.proto = ""  # sniff again: what the client says inside
            inner = IMPLICIT_TLS.get(flow.dst[1])
            if inner is not None:
                self._send(flow, BANNERS[inner])
                flow.proto = "smtp" if inner in SMTP_PORTS else "unknown"
                flow.smtp = SmtpStream() if flow.proto == "smtp" else None
        while flow.tls_obj is not None:
            try:
                plain = obj.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # close_notify
                self._shut_write(flow)
                break
            except (ssl.SSLError, OSError) as exc:
                flow.errors.append(f"TLS: {_ssl_reason(exc)}")
                flow.tls_obj = None
                self._shut_write(flow)
                break
            if not plain:
                break
            flow.plain_total += len(plain)
            room = self.limits.capture_bytes - len(flow.plain)
            if room > 0:
                flow.plain += plain[:room]
            self._protocol(flow, plain)
        self._tls_flush(flow)

    def _tls_flush(self, flow: Flow) -> None:
        """Move what the TLS session wrote (handshake, records, alerts) to the socket."""
        if flow.tls_out is not None and flow.tls_out.pending:
            self._send_raw(flow, flow.tls_out.read())

    def _send(self, flow: Flow, data: bytes) -> None:
        if flow.tls_up and flow.tls_obj is not None:
            if flow.write_shut or flow.closing_at is not None:
                return
            try:
                flow.tls_obj.write(data)
            except (ssl.SSLError, OSError) as exc:
                flow.errors.append(f"TLS write: {_ssl_reason(exc)}")
                return
            self._tls_flush(flow)
            return
        self._send_raw(flow, data)

    def _send_raw(self, flow: Flow, data: bytes) -> None:
        if flow.write_shut:
            return
        if len(flow.pending) + len(data) > 65536:
            flow.errors.append("reply dropped: client does not read")
            return
        flow.pending += data
        self._flush(flow)

    def _flush(self, flow: Flow) -> None:
        while flow.pending:
            try:
                n = flow.sock.send(flow.pending)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                flow.pending.clear()
                break
            del flow.pending[:n]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if flow.pending else 0)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.sel.modify(flow.sock, events, ("flow", flow))
        if not flow.pending and flow.closing_at is not None:
            self._do_shutdown(flow)

    def _shut_write(self, flow: Flow) -> None:
        """Half-close once the reply is out; keep reading what the client still sends."""
        if flow.tls_up and flow.tls_obj is not None and flow.closing_at is None:
            with contextlib.suppress(ssl.SSLError, OSError):
                flow.tls_obj.unwrap()  # close_notify, as a server does before FIN
            self._tls_flush(flow)
        flow.closing_at = time.monotonic()
        if not flow.pending:
            self._do_shutdown(flow)

    def _do_shutdown(self, flow: Flow) -> None:
        if flow.write_shut:
            return
        flow.write_shut = True
        with contextlib.suppress(OSError):
            flow.sock.shutdown(socket.SHUT_WR)

    def _sweep(self, now: float) -> None:
        for flow in list(self.flows.values()):
            if now - flow.mono > self.limits.flow_seconds:
                self._finish(flow, "lifetime")
            elif now - flow.last > self.limits.idle_seconds:
                self._finish(flow, "idle")
            elif flow.write_shut and now - (flow.closing_at or now) > 2.0:
                self._finish(flow, "closed")

    def _drain(self, flow: Flow, limit: int = 1 << 20) -> None:
        """Read what the client already sent before closing on our side (eviction,
        lifetime, shutdown): bytes that arrived are evidence, whatever the reason."""
        got = 0
        while got < limit:
            try:
                data = flow.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            got += len(data)
            flow.total += len(data)
            room = self.limits.capture_bytes - len(flow.capture)
            if room > 0:
                flow.capture += data[:room]
            self._incoming(flow, data)

    def _finish(self, flow: Flow, reason: str) -> None:
        if flow.fid not in self.flows:
            return
        if reason in ("evicted", "lifetime", "idle", "shutdown", "closed"):
            with contextlib.suppress(Exception):
                self._drain(flow)
        self.flows.pop(flow.fid, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.sel.unregister(flow.sock)
        flow.sock.close()
        rec: dict[str, Any] = {
            "kind": "tcp",
            "id": flow.fid,
            "t": flow.opened,
            "duration": round(time.monotonic() - flow.mono, 3),
            "phase": flow.phase,
            "transport": "dns" if flow.kind == "dns" else "tcp",
            "src": _hostport(flow.src),
            "dst": _hostport(flow.dst),
            "name": self.fake.name_for(flow.dst[0]),
            "bytes": flow.total,
            "captured": len(flow.capture),
            "truncated": flow.total > len(flow.capture) or reason in ("evicted", "lifetime"),
            "close_reason": reason,
            "proto": _record_proto(flow),
            "pid": flow.pid,
            "argv": flow.argv,
        }
        streams = [h for h in (flow.http_done, flow.http) if h is not None]  # CONNECT, then inside
        if streams:
            for h in streams:
                h.finish()
            kept = [r for h in streams for r in h.requests]
            requests = kept[: self.limits.max_requests]
            rec["http"] = requests
            # what the record leaves out could carry anything: the judge never calls it plain
            dropped = sum(h.dropped for h in streams) + len(kept) - len(requests)
            if dropped:
                rec["requests_dropped"] = dropped
            if dropped or any(
                r.get("body_truncated") or not r.get("complete") or r.get("headers_dropped") for r in requests
            ):
                rec["truncated"] = True
        if flow.tls is not None:
            rec["tls"] = flow.tls
        elif flow.proto == "tls":
            rec["tls"] = {"error": "ClientHello incomplete at close"}
        if flow.smtp is not None:
            rec["smtp"] = flow.smtp.commands
        if flow.errors:
            rec["errors"] = flow.errors[:10]
        rec["payload"] = self.rec.payload(f"net-tcp-{flow.fid}.bin", bytes(flow.capture))
        if flow.tls_up:
            rec["decrypted"] = flow.plain_total
            rec["plain_payload"] = self.rec.payload(f"net-tcp-{flow.fid}.plain.bin", bytes(flow.plain))
            if flow.plain_total > len(flow.plain):
                rec["truncated"] = True
        self.rec.write(rec)

    # -- DNS
    def _dns_tcp(self, flow: Flow, data: bytes) -> None:
        flow.dns_buf += data
        while len(flow.dns_buf) >= 2:
            n = int.from_bytes(flow.dns_buf[:2], "big")
            if len(flow.dns_buf) < 2 + n:
                if len(flow.dns_buf) > 70000:
                    flow.dns_buf.clear()
                return
            msg = bytes(flow.dns_buf[2 : 2 + n])
            del flow.dns_buf[: 2 + n]
            reply = self._dns(msg, flow.src, "tcp", flow.pid, flow.argv, _hostport(flow.dst))
            if reply:
                self._send(flow, len(reply).to_bytes(2, "big") + reply)

    def _dns_udp(self, sock: socket.socket) -> None:
        for _ in range(64):
            try:
                msg, src = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            pid, argv = self.owners.lookup("udp", int(src[1]))
            reply = self._dns(msg, src, "udp", pid, argv, None)
            if reply:
                try:
                    sock.sendto(reply, src)
                except OSError as exc:
                    self._problem(f"dns reply: {exc}")

    def _dns(
        self,
        msg: bytes,
        src: tuple[Any, ...],
        transport: str,
        pid: int | None,
        argv: list[str],
        dst: str | None,
    ) -> bytes | None:
        self.stats["dns_queries"] += 1
        base: dict[str, Any] = {
            "kind": "dns",
            "t": time.time(),
            "phase": current_phase(self.phase_file),
            "transport": transport,
            "src": _hostport(src),
            "resolver": dst,
            "pid": pid,
            "argv": argv,
            "size": len(msg),
        }
        try:
            q = parse_query(msg)
        except DnsError as exc:
            self.stats["dns_malformed"] += 1
            self.rec.write({**base, "malformed": True, "error": str(exc), "raw_b64": _b64(msg[:512])})
            return formerr(msg)
        if q.opcode != 0:
            self.rec.write(
                {**base, "name": name_text(q.questions[0][0]), "qtype": f"OPCODE{q.opcode}", "answer": None}
            )
            return build_response(q, [], rcode=4)  # NOTIMP, as a real resolver answers an UPDATE
        answers: list[tuple[int, bytes]] = []
        for i, (labels, qtype, _qclass) in enumerate(q.questions):
            got, text = self.fake.answer(labels, qtype)
            if i == 0:
                answers = got
            self.rec.write(
                {
                    **base,
                    "name": name_text(labels),
                    "qtype": QTYPES.get(qtype, f"TYPE{qtype}"),
                    "answer": text,
                    "raw_b64": _b64(msg[:512]) if i == 0 else "",
                }
            )
        return build_response(q, answers)

    # -- UDP
    def _udp(self, sock: socket.socket) -> None:
        for _ in range(64):
            try:
                data, src = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            # the phase it arrived in, before the owner lookup (which can take a while)
            phase = current_phase(self.phase_file)
            self.stats["udp_datagrams"] += 1
            pid, argv = self.owners.lookup("udp", int(src[1]))
            keep = data[: self.limits.udp_capture_bytes]
            if not self.rec.room(len(keep) * 2):
                keep = b""
            self.rec.write(
                {
                    "kind": "udp",
                    "t": time.time(),
                    "phase": phase,
                    "src": _hostport(src),
                    "bytes": len(data),
                    "captured": len(keep),
                    "truncated": len(keep) < len(data),
                    "data_b64": _b64(keep),
                    "pid": pid,
                    "argv": argv,
                }
            )
            reply = ntp_reply(data)
            if reply is not None:  # time checks over NTP get the (pass's) clock
                with contextlib.suppress(OSError):
                    sock.sendto(reply, src)
