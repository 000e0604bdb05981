"""Listeners on loopback, the veth interface and the NAT rules that send every attempt to them."""

from __future__ import annotations

import os
import random
import socket
import subprocess

from .config import NetConfig, Ports

# --------------------------------------------------------------------------- set-up


def _bind(family: int, kind: int, host: str, port: int) -> socket.socket:
    s = socket.socket(family, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        if kind == socket.SOCK_STREAM:
            s.listen(1024)
    except OSError:
        s.close()
        raise
    return s


def bind_listeners(
    v6: bool, rng: random.Random | None = None, host4: str = "127.0.0.1", host6: str = "::1"
) -> tuple[Ports, dict[str, list[socket.socket]]]:
    """Bind TCP, UDP and DNS (UDP + TCP) listeners on random high ports of loopback."""
    r = rng or random.Random()
    last: OSError | None = None
    for _ in range(50):
        ports = Ports(*(r.randrange(20000, 61000) for _ in range(3)))
        if len({ports.tcp, ports.udp, ports.dns}) < 3:
            continue
        made: list[socket.socket] = []
        socks: dict[str, list[socket.socket]] = {"tcp": [], "udp": [], "dns_udp": [], "dns_tcp": []}
        try:
            fams = [(socket.AF_INET, host4)] + ([(socket.AF_INET6, host6)] if v6 else [])
            for fam, host in fams:
                for key, kind, port in (
                    ("tcp", socket.SOCK_STREAM, ports.tcp),
                    ("udp", socket.SOCK_DGRAM, ports.udp),
                    ("dns_udp", socket.SOCK_DGRAM, ports.dns),
                    ("dns_tcp", socket.SOCK_STREAM, ports.dns),
                ):
                    s = _bind(fam, kind, host, port)
                    made.append(s)
                    socks[key].append(s)
            return ports, socks
        except OSError as exc:
            last = exc
            for s in made:
                s.close()
    raise OSError(f"no free ports for the sinkhole: {last}")


def nat_rules(ports: Ports, own: str, v6: bool) -> str:
    """iptables-restore input for the nat table (one family).

    Order matters: DNS first and for *any* destination — a resolver on 127.x
    would escape a rule that skips loopback — then local destinations keep
    working (loopback, our own address), then everything else.
    """
    loop = "::1/128" if v6 else "127.0.0.0/8"
    me = f"{own}/128" if v6 else f"{own}/32"
    return "\n".join(
        [
            "*nat",
            ":OUTPUT ACCEPT [0:0]",
            f"-A OUTPUT -p udp --dport 53 -j REDIRECT --to-ports {ports.dns}",
            f"-A OUTPUT -p tcp --dport 53 -j REDIRECT --to-ports {ports.dns}",
            f"-A OUTPUT -d {loop} -j RETURN",
            f"-A OUTPUT -d {me} -j RETURN",
            f"-A OUTPUT -p tcp -j REDIRECT --to-ports {ports.tcp}",
            f"-A OUTPUT -p udp -j REDIRECT --to-ports {ports.udp}",
            "COMMIT",
            "",
        ]
    )


def link_commands(net: NetConfig, v6: bool) -> str:
    """``ip -batch`` input: a veth pair (both ends here), address, default route."""
    own, peer = (f" address {m}" for m in net.macs) if len(net.macs) == 2 else ("", "")
    lines = [
        f"link add eth0{own} type veth peer name eth1{peer}",
        "link set eth1 up",
        "link set eth0 up",
        f"addr add {net.address}/{net.prefix} dev eth0",
        f"route add default via {net.gateway} dev eth0 onlink",
    ]
    if v6:
        lines += [
            f"addr add {net.address6}/64 dev eth0 nodad",
            f"route add ::/0 via {net.gateway6} dev eth0 onlink",
        ]
    return "\n".join(lines) + "\n"


def _restore_tool(v6: bool) -> list[str] | None:
    """iptables-nft first: Debian's default, and it needs only NET_ADMIN (legacy
    iptables opens a raw socket, which needs NET_RAW, which we never grant)."""
    family = "ip6tables" if v6 else "iptables"
    names = [f"{family}-nft-restore", f"{family}-restore"]
    for name in names:
        for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
            if os.access(f"{d}/{name}", os.X_OK):
                return [f"{d}/{name}", "--noflush"]
    return None


def configure_network(net: NetConfig, ports: Ports, v6: bool) -> list[str]:
    """Create the interface and the NAT rules; returns problems (empty = all set).

    When the IPv4 rules cannot be installed the interface is removed again: an
    address and a route without redirection would make connections hang in
    ARP instead of failing at once (nothing would leave either way).
    """
    problems: list[str] = []
    ip = subprocess.run(
        ["ip", "-batch", "-"], input=link_commands(net, v6), capture_output=True, text=True, timeout=10
    )
    if ip.returncode != 0:
        subprocess.run(["ip", "link", "del", "eth0"], capture_output=True, timeout=10)
        return [f"ip: {ip.stderr.strip()[:300]}"]
    procs: list[tuple[bool, subprocess.Popen[str]]] = []
    for fam6 in [False, True] if v6 else [False]:
        tool = _restore_tool(fam6)
        if tool is None:
            problems.append(f"no {'ip6' if fam6 else 'ip'}tables-restore in the image")
            continue
        p = subprocess.Popen(
            tool, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        procs.append((fam6, p))
        assert p.stdin is not None
        p.stdin.write(nat_rules(ports, net.address6 if fam6 else net.address, fam6))
        p.stdin.close()
    ok4 = False
    for fam6, p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        err = (p.stderr.read() if p.stderr else "").strip()
        if p.returncode == 0:
            ok4 = ok4 or not fam6
        else:
            problems.append(f"{'ip6' if fam6 else 'ip'}tables: {err[:300] or f'exit {p.returncode}'}")
            if fam6:  # IPv6 without redirection: take its address and route away again
                subprocess.run(
                    ["ip", "-6", "addr", "flush", "dev", "eth0", "scope", "global"],
                    capture_output=True,
                    timeout=10,
                )
                subprocess.run(["ip", "-6", "route", "flush", "default"], capture_output=True, timeout=10)
    if not ok4:
        subprocess.run(["ip", "link", "del", "eth0"], capture_output=True, timeout=10)
    return problems


def _ipv6_available() -> bool:
    try:
        with open("/proc/sys/net/ipv6/conf/lo/disable_ipv6") as fh:
            return fh.read().strip() == "0"
    except OSError:
        return False
