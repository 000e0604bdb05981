"""Starting the sinkhole (listeners, daemon, network) and stopping its daemon."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from .. import guard, tlsca, trust
from .config import PID_FILE, TLS_DIR, Limits, NetConfig, Ports
from .daemon import Daemon
from .netsetup import _ipv6_available, bind_listeners, configure_network


class Setup:
    """The sinkhole's set-up in two halves: the constructor binds the listeners and
    forks the daemon (milliseconds), then installs the interface and NAT rules in a
    thread (tens of milliseconds of ``ip`` and ``iptables-restore``) while
    ``agent setup`` prepares HOME and the venv; :meth:`wait` joins it. Never
    raises: a sinkhole that could not be set up leaves the namespace as
    network-less as before, and says why."""

    def __init__(self, plan: dict[str, Any], out: Path) -> None:
        self.t0 = time.monotonic()
        self.out = out
        conf = dict(plan.get("sinkhole") or {})
        self.limits = Limits.from_plan(conf)
        self.net = NetConfig.from_plan(plan)
        self.info: dict[str, Any] = {
            "enabled": False,
            "problems": [],
            "net": self.net.__dict__,
            "limits": self.limits.__dict__,
        }
        self.thread: threading.Thread | None = None
        self.tls = bool(conf.get("tls", True))
        try:
            v6 = _ipv6_available()
            ports, socks = bind_listeners(v6)
            self.info.update(ports=ports.__dict__, ipv6=v6)
            self.info["pid"] = spawn_daemon(socks, self.limits, self.net, out, self.tls)
            for group in socks.values():  # the daemon has its own copies
                for sock in group:
                    sock.close()
            self.thread = threading.Thread(target=self._configure, args=(ports, v6), daemon=True)
            self.thread.start()
        except Exception as exc:
            self.info["problems"].append(f"{type(exc).__name__}: {exc}")

    def _configure(self, ports: Ports, v6: bool) -> None:
        try:
            problems = configure_network(self.net, ports, v6)
        except Exception as exc:
            problems = [f"ip: {type(exc).__name__}: {exc}"]
        self.info["problems"] = problems
        self.info["enabled"] = not any(p.startswith(("ip:", "iptables", "no iptables")) for p in problems)
        self.info["ipv6"] = v6 and not any(p.startswith(("ip6tables", "no ip6tables")) for p in problems)

    def wait(self) -> dict[str, Any]:
        """Finish the set-up; returns what was set up (also in ``out/sinkhole.json``)."""
        if self.thread is not None:
            self.thread.join(30)
            if self.thread.is_alive():
                self.info["problems"].append("network set-up did not finish within 30 s")
                self.info["enabled"] = False
        if not self.info["enabled"] and "pid" in self.info:
            stop(2.0)
        self.info["seconds"] = round(time.monotonic() - self.t0, 3)
        (self.out / "sinkhole.json").write_text(json.dumps(self.info))
        return self.info


def start(plan: dict[str, Any], out: Path) -> dict[str, Any]:
    """Set the sinkhole up and wait for it (see :class:`Setup`)."""
    return Setup(plan, out).wait()


def spawn_daemon(
    socks: dict[str, list[socket.socket]],
    limits: Limits,
    net: NetConfig,
    out: Path,
    tls: bool = False,
) -> int:
    """Double-fork the daemon (re-parented to the container's init, so it survives
    this exec); returns its pid, also written to :data:`PID_FILE`."""
    keep = {s.fileno() for group in socks.values() for s in group}
    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked children
        code = 0
        try:
            os.close(r)
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            _daemon_main(socks, limits, net, out, keep | {w}, w, tls)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    os.waitpid(child, 0)
    data = b""
    while True:  # the grandchild writes its pid once it has detached
        chunk = os.read(r, 64)
        if not chunk:
            break
        data += chunk
    os.close(r)
    try:
        return int(data.decode().strip())
    except ValueError:
        raise OSError("the sinkhole daemon did not start") from None


def _daemon_main(
    socks: dict[str, list[socket.socket]],
    limits: Limits,
    net: NetConfig,
    out: Path,
    keep: set[int],
    ready_fd: int,
    tls: bool = False,
) -> None:  # pragma: no cover - runs in the daemon
    # Our stdout/stderr are the docker exec's stream: holding them open would keep
    # `agent setup` from returning. Everything else inherited goes too.
    log = os.open(str(out / "sinkhole.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    for entry in os.listdir("/proc/self/fd"):
        fd = int(entry)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)
    # Only what the daemon needs: read other processes' /proc/PID/fd to name the
    # process behind a socket. NET_ADMIN, SETUID, KILL … go.
    guard.limit_capabilities({guard.CAP_SYS_PTRACE, guard.CAP_DAC_READ_SEARCH})
    PID_FILE.write_text(str(os.getpid()))
    os.write(ready_fd, str(os.getpid()).encode())
    os.close(ready_fd)
    # The CA is made here, once set-up goes on without us: its arithmetic (tens of
    # ms of pure Python) overlaps HOME and venv preparation instead of adding to
    # them. Its key stays in this process's memory; set-up gets the certificate.
    authority = None
    if tls:
        try:
            authority = tlsca.Authority(TLS_DIR)
            trust.publish(authority)
        except Exception as exc:
            authority = None
            with contextlib.suppress(OSError):
                trust.save_state({"error": f"CA: {type(exc).__name__}: {exc}"[:300]})
    Daemon(socks, limits, net, out, authority=authority).run()


def _note(out: Path | None, msg: str) -> None:
    if out is not None:
        with contextlib.suppress(OSError), (out / "net.jsonl").open("a") as fh:
            fh.write(json.dumps({"kind": "problem", "t": time.time(), "msg": msg}) + "\n")


def stop(timeout: float = 3.0, out: Path | None = None) -> bool:
    """SIGTERM the daemon and wait until it has written its last records; a daemon
    that was already gone (OOM killer) or had to be killed is noted in *out*."""
    try:
        pid = int(PID_FILE.read_text().strip())
    except (OSError, ValueError):
        return True
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        _note(out, "the sinkhole daemon had died before the end of the run: later attempts were refused")
        return False
    except PermissionError:
        return False
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
            if state in ("Z", "X"):
                break
        except (OSError, IndexError):
            break
        time.sleep(0.01)
    else:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        _note(out, f"the sinkhole daemon did not stop within {timeout:.0f}s: flows still open are lost")
        return False
    with contextlib.suppress(OSError):
        PID_FILE.unlink()
    return True
