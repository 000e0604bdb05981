"""The Docker backend: one hardened, network-less container for all phases.

Hardening of every container (see README "Security model"):
- ``--network none``: the namespace has no route out. Inside it, ``agent setup``
  builds the sinkhole (a veth pair whose both ends stay in the namespace, NAT
  redirection to local listeners; see sandbox/agent/sinkhole/);
- a root filesystem nothing but root can write (see :data:`WRITABLE_ROOT`);
  size-capped tmpfs for every path the candidate writes (exec allowed on HOME and
  /tmp so compiled extensions load); staging bind-mounted read-only; no Docker
  socket, no other host mount;
- ``cap_drop=ALL`` plus only what the *root* recorder needs (setuid/setgid/setpcap
  to drop to the candidate uid, sys_ptrace + dac_read_search for strace to decode
  fds of another uid, chown to hand HOME over, kill to reap, net_admin for setup
  to install the sinkhole's NAT rules — dropped by the agent before any phase);
  the candidate itself runs under setpriv with an empty bounding set, no
  capabilities, no-new-privs;
- ``no-new-privileges``, Docker's default seccomp plus an inherited filter that
  denies io_uring; pids, memory (no swap) and CPU limits; private cgroup and IPC
  namespaces; an in-container deadline (PID 1 is the agent's init, which stops the
  container at the deadline and reaps orphans; see sandbox/agent/init.py).
Every container carries labels (run id, owner, deadline) and is removed on success,
error, timeout and interrupt; :func:`sandbox.runner.engine.sweep` removes what a
killed run left behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
import secrets
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.utils.socket import demux_adaptor, frames_iter

from sandbox.agent.protocol import AGENT, HOME, OUT, STAGE, TRACE_MOUNT, Plan
from sandbox.errors import EngineError, SandboxError
from sandbox.models import DEFAULT_PASS, ImageInfo, Phase
from sandbox.runner import seccomp
from sandbox.runner.agent_stream import MAX_COLLECT_BYTES, AgentReader
from sandbox.runner.ebpf_recorder import EbpfRecorder
from sandbox.runner.engine import (
    LABEL,
    LABEL_DEADLINE,
    LABEL_OWNER,
    LABEL_RUN,
    connect,
    engine_call,
    sweep,
)
from sandbox.runner.image import ensure_image
from sandbox.runner.interface import AgentPhase, Observer, RawRun, RunOptions, Sandbox
from sandbox.runner.interface import Session as SessionABC
from sandbox.runner.plan import AGENT_ONLY
from sandbox.runner.runtime import engine_runtime
from sandbox.tempdirs import owner_label

# NET_ADMIN: `agent setup` creates the sinkhole's interface and NAT rules in the
# container's own network namespace before any candidate code exists. A sidecar
# container sharing the namespace would keep NET_ADMIN out of this container
# altogether but costs a second container start per run (~0.5 s, more than the
# whole sinkhole budget); here the capability never reaches the candidate (setpriv
# empties its bounding set; doctor checks CapBnd is 0) and the agent drops it from
# its own sets before it runs any phase (guard.drop_capabilities).
RECORDER_CAPS = ["CHOWN", "SETUID", "SETGID", "SETPCAP", "SYS_PTRACE", "DAC_READ_SEARCH", "KILL", "NET_ADMIN"]
# Docker puts /.dockerenv into every container's init layer (whatever the image
# holds), a file malware checks first. Only a writable root lets `agent setup`
# remove it, so the root filesystem is writable — by root only: the candidate
# runs as uid 1000, and every path it may write (HOME, /tmp, /var/tmp, /run) is a
# size-capped tmpfs; the image build fails if any other path is world-writable
# (images/Dockerfile). What stays visible is listed in README "What gives the
# sandbox away".
WRITABLE_ROOT = True
# IPv6 on, so that IPv6 attempts reach the sinkhole (ip6tables) instead of failing.
SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "0",
    "net.ipv6.conf.default.disable_ipv6": "0",
    "net.ipv6.conf.lo.disable_ipv6": "0",
}
_KEPT_FILE = re.compile(r"files/[0-9a-f]{64}")

_HOST_WORDS = ["dev", "work", "build", "laptop", "desktop", "ws", "station"]
_HOST_NAMES = ["alex", "sam", "jordan", "taylor", "casey", "morgan", "riley", "jamie", "chris", "pat"]


def realistic_hostname(rng: random.Random | None = None) -> str:
    """A random developer-looking hostname (a fixed one gives a sandbox away)."""
    r = rng or random.SystemRandom()
    style = r.randrange(3)
    if style == 0:
        return f"{r.choice(_HOST_NAMES)}-{r.choice(['thinkpad', 'xps', 'laptop', 'desktop'])}"
    if style == 1:
        return f"{r.choice(_HOST_WORDS)}-{r.randrange(10, 999):03d}"
    return f"{r.choice(_HOST_NAMES)}s-{r.choice(['mbp', 'pc', 'box', 'workstation'])}"


class DockerSandbox(Sandbox):
    """Runs each vet in a fresh hardened container (runc, strace inside); always removes it."""

    def __init__(self, client: docker.DockerClient, image: ImageInfo) -> None:
        self.client = client
        self.image = image
        self._runtimes: dict[str, str] = {}  # asked for -> the engine's (one lookup per backend)

    def _engine_runtime(self, runtime: str) -> str:
        """:func:`engine_runtime`, asked once per runtime: it costs an engine call and
        reads the installed wrapper, and a gate or benchmark opens many sandboxes."""
        if runtime not in self._runtimes:
            self._runtimes[runtime] = engine_runtime(self.client, runtime)
        return self._runtimes[runtime]

    @classmethod
    def connect(
        cls, *, base_image: str | None = None, offline: bool | None = None, observer: Observer | None = None
    ) -> DockerSandbox:
        """Connect to the engine and make sure the sandbox image exists (built on first use)."""
        client = connect()
        observer = observer or Observer()
        observer.status("checking the sandbox image")
        box = cls(client, ensure_image(client, base=base_image, offline=offline, log=observer.status))
        box.engine_memory = _engine_memory(client)
        return box

    # ------------------------------------------------------------------ lifecycle
    def _create(
        self,
        run_id: str,
        staging: Path,
        deadline: float,
        options: RunOptions,
        hostname: str,
        net: dict[str, Any] | None = None,
        sysctls: dict[str, str] | None = None,
    ) -> Any:
        lim = options.limits
        user_home = HOME
        tmpfs = {
            "/tmp": f"rw,exec,nosuid,nodev,size={lim.tmp_mb}m,mode=1777",
            "/var/tmp": f"rw,exec,nosuid,nodev,size={lim.tmp_mb}m,mode=1777",
            user_home: f"rw,exec,nosuid,nodev,size={lim.home_mb}m,mode=755",
            TRACE_MOUNT: f"rw,noexec,nosuid,nodev,size={lim.trace_mb}m,mode=700",
            "/run": "rw,noexec,nosuid,nodev,size=16m,mode=755",
        }
        budget = int(deadline - time.time())
        return engine_call(
            "create sandbox container",
            self.client.containers.create,
            self.image.tag,
            # PID 1 is the agent's own init (reaps orphans, stops the container at the
            # deadline) named like a workstation's: comm systemd, cmdline /sbin/init.
            command=[AGENT, "init", str(max(budget, 30))],
            name=f"pkgsandbox-{run_id}",
            hostname=hostname,
            labels={
                LABEL: "run",
                LABEL_RUN: run_id,
                LABEL_OWNER: owner_label(),
                LABEL_DEADLINE: str(int(deadline)),
            },
            network_mode="none",
            read_only=not WRITABLE_ROOT,
            sysctls=SYSCTLS if sysctls is None else sysctls,
            # a laptop resolves its own name from /etc/hosts, and asks its router
            dns=[net["gateway"]] if net and net.get("gateway") else None,
            extra_hosts={hostname: "127.0.1.1"},
            tmpfs=tmpfs,
            mounts=[docker.types.Mount(STAGE, str(staging), type="bind", read_only=True)],
            cap_drop=["ALL"],
            cap_add=RECORDER_CAPS,
            security_opt=["no-new-privileges", seccomp.security_opt(traced=options.recorder != "ebpf")],
            pids_limit=lim.pids,
            mem_limit=f"{lim.memory_mb}m",
            memswap_limit=f"{lim.memory_mb}m",
            nano_cpus=int(lim.cpus * 1e9),
            init=False,
            ipc_mode="private",
            cgroupns="private",
            ulimits=[docker.types.Ulimit(name="core", soft=0, hard=0)],
            # PID 1's stdout carries detached agent commands' output (the traces' tar
            # too): read live on the attach stream, never written to a log
            log_config=docker.types.LogConfig(type="none"),
            runtime=self._engine_runtime(options.runtime),
            user="root",
            working_dir="/",
            detach=True,
        )

    def open(self, staging: Path, setup: Plan, options: RunOptions, observer: Observer) -> DockerSession:
        """Create, start and set up a sandbox container (the candidate's artifacts may
        arrive in *staging* later: the read-only bind mount shows them when they do)."""
        plan = setup
        run_id = secrets.token_hex(6)
        sweep(self.client)
        total = sum(options.timeouts[p] + options.window * 4 + 30 for p in options.phases) + 120
        total += pass_budget(options)
        deadline = time.time() + total
        session = DockerSession(self, run_id, staging, options, realistic_hostname())
        session.write_plan(plan)
        try:
            net = (plan.get("sinkhole") or {}).get("net")
            session.container = self._create(run_id, staging, deadline, options, session.hostname, net)
            try:
                engine_call("start sandbox container", session.container.start)
            except EngineError as exc:
                if "ipv6" not in str(exc):
                    raise
                # A kernel booted with ipv6.disable=1 has no IPv6 sysctls: run without
                # IPv6 (the sinkhole then covers IPv4; IPv6 attempts fail at once).
                self._remove(session.container)
                session.container = self._create(
                    run_id, staging, deadline, options, session.hostname, net, sysctls={}
                )
                engine_call("start sandbox container", session.container.start)
            observer.status("sandbox container started")
            if options.recorder == "ebpf":
                # bpftrace compiles and attaches while setup runs; run_phases waits for it
                session.start_recorder()
            self._exec_json(session.container, ["setup"], timeout=120, observer=observer)
        except BaseException:
            session.close()
            raise
        return session

    def _remove(self, container: Any) -> None:
        for _ in range(3):
            try:
                container.remove(force=True, v=True)
                return
            except docker.errors.NotFound:
                return
            except (docker.errors.DockerException, requests.exceptions.RequestException):
                time.sleep(0.5)

    # ------------------------------------------------------------------ exec
    def _exec_json(
        self,
        container: Any,
        args: list[str],
        *,
        timeout: float,
        observer: Observer,
        on_message: Callable[[str, dict[str, Any]], None] | None = None,
        tail: io.BytesIO | None = None,
        detach: bool = False,
    ) -> dict[str, Any]:
        """Run an agent command; returns its last message of each type (all go to *on_message*).

        With *tail*, the bytes of the output directory's tar after a ``collect`` message
        (``agent run --collect``) go there instead of being read as messages. *detach*:
        the command runs as a child of PID 1 (``agent --detach``: no process the
        candidate sees has a parent outside the container), its output read from the
        container's attach stream (:mod:`sandbox.runner.agent_stream`)."""
        api = self.client.api

        def message(kind: str, msg: dict[str, Any]) -> None:
            if on_message is not None:
                on_message(kind, msg)
            if kind == "status":
                observer.status(f"{msg.get('phase', '')}: {msg.get('msg', '')}")

        deadline = time.monotonic() + timeout
        attach = None
        if detach:  # opened first: the stream carries only what is written after it opens
            params = {"stdout": 1, "stderr": 1, "stream": 1}
            attach = engine_call("attach to sandbox", api.attach_socket, container.id, params=params)
        try:
            argv = [AGENT, *(["--detach"] if detach else []), *args]
            exec_id = engine_call(
                "exec agent", api.exec_create, container.id, argv, user="root", stdout=True, stderr=True
            )["Id"]
            sock = engine_call("exec agent", api.exec_start, exec_id, socket=True)
            reader = AgentReader(message, None if detach else tail)
            why = self._pump(container, sock, reader, deadline)
            code = engine_call("inspect exec", api.exec_inspect, exec_id).get("ExitCode") if not why else None
            if attach is not None and not why and code in (0, None) and "error" not in reader.out:
                pid = int(reader.out.get("detached", {}).get("pid") or 0)
                if pid <= 0:
                    raise SandboxError(f"agent {' '.join(args)} did not detach: {reader.detail}")
                reader = AgentReader(message, tail, chunked=True, pid=pid)
                why = self._pump(container, attach, reader, deadline)
                code = reader.code if reader.finished() else -1
        finally:
            if attach is not None:
                with contextlib.suppress(OSError):
                    attach.close()
        if why == "timeout":
            raise SandboxError(f"agent {' '.join(args)} did not finish within {timeout:.0f}s")
        if why == "stopped":
            raise SandboxError(
                f"sandbox container stopped during {' '.join(args)} (deadline, engine or runtime)"
            )
        out = reader.out
        if code not in (0, None) or "error" in out:
            detail = out.get("error", {}).get("msg") or reader.detail
            if not container_running(container):
                raise SandboxError(f"sandbox container stopped during {' '.join(args)} (deadline or engine)")
            raise SandboxError(f"agent {' '.join(args)} failed (exit {code}): {detail}")
        return out

    def _pump(self, container: Any, sock: Any, reader: AgentReader, deadline: float) -> str:
        """Feed *reader* the frames of *sock* (an exec's or the attach stream) until it
        ends, the detached command finishes, or the watch stops it; returns the
        watch's reason ("timeout", "stopped") or ""."""
        stream = (demux_adaptor(*frame) for frame in frames_iter(sock, tty=False))  # type: ignore[no-untyped-call]
        watch = _ExecWatch(self.client.api, container.id, sock, deadline, ended=reader.finished)
        for stdout, stderr in watch.run(stream):
            if stderr:
                reader.stderr(stderr)
            if stdout:
                reader.stdout(stdout)
            if reader.exited:
                break
            if time.monotonic() > deadline:
                return "timeout"
        return watch.why

    def _collect(self, container: Any, dest: Path, streamed: io.BytesIO | None = None) -> None:
        """Stream the agent's output directory out of the container (tmpfs: no get_archive),
        or read the tar that ``agent run --collect`` already sent (*streamed*)."""
        if streamed is not None:
            streamed.seek(0)
            _extract(streamed, dest)
            return
        api = self.client.api
        exec_id = engine_call(
            "collect traces",
            api.exec_create,
            container.id,
            [AGENT, "collect"],
            user="root",
            stdout=True,
            stderr=False,
        )["Id"]
        buf = io.BytesIO()
        for chunk in engine_call("collect traces", api.exec_start, exec_id, stream=True):
            buf.write(chunk)
            if buf.tell() > MAX_COLLECT_BYTES:
                raise SandboxError("trace output exceeds 2 GiB")
        buf.seek(0)
        _extract(buf, dest)


def _engine_memory(client: docker.DockerClient) -> int | None:
    """The engine host's memory in bytes (what a run's limits may grow into), or None."""
    try:
        total = engine_call("engine info", client.info).get("MemTotal")
    except EngineError:
        return None
    return int(total) if isinstance(total, int) and total > 0 else None


def _extract(buf: io.BytesIO, dest: Path) -> None:
    """The files of the agent's output tar into *dest*."""
    try:
        with tarfile.open(fileobj=buf, mode="r|") as tar:
            for member in tar:
                # Only plain names we expect: top-level files and kept evidence
                # files/<sha256>; the agent is ours, but the bytes pass through a
                # container the candidate ran in, so never trust a path.
                name = member.name
                if not member.isfile():
                    continue
                if _KEPT_FILE.fullmatch(name):
                    (dest / "files").mkdir(exist_ok=True)
                elif "/" in name or name.startswith(".") or not name:
                    continue
                src = tar.extractfile(member)
                if src is not None:
                    (dest / name).write_bytes(src.read())
    except tarfile.TarError as exc:
        raise SandboxError(f"could not read traces from the sandbox: {exc}") from exc


class DockerSession(SessionABC):
    """One open sandbox container: phases run in it, then :meth:`close` removes it."""

    def __init__(
        self, backend: DockerSandbox, run_id: str, staging: Path, options: RunOptions, hostname: str
    ) -> None:
        self.backend = backend
        self.run_id = run_id
        self.staging = staging
        self.options = options
        self.hostname = hostname
        self.container: Any = None
        self.finished: list[AgentPhase] = []
        self.recorder: EbpfRecorder | None = None

    def start_recorder(self) -> None:
        """Start the host-side eBPF recorder on this session's container."""
        self.container.reload()
        pid = int(self.container.attrs["State"]["Pid"])
        out = self.staging.parent / "ebpf"  # not the trace dir: collected files land there
        out.mkdir(exist_ok=True)
        self.recorder = EbpfRecorder(pid, out, tasks=self.options.limits.pids)
        self.recorder.start()

    def write_plan(self, plan: Plan) -> None:
        path = self.staging / "plan.json"
        tmp = self.staging / ".plan.json.tmp"
        tmp.write_text(json.dumps({**plan, "hostname": self.hostname}))
        tmp.chmod(AGENT_ONLY)
        tmp.replace(path)  # atomic: the agent never reads half a plan

    def run_phases(
        self,
        plan: Plan,
        observer: Observer,
        on_need: Callable[[dict[str, Any]], None] | None = None,
        on_result: Callable[[AgentPhase, Path | None], None] | None = None,
    ) -> RawRun:
        """Run every phase, collect the traces; the container stays until :meth:`close`.

        *on_need* answers the agent's ``need`` messages (adaptive rounds) while it waits."""
        backend, container, options = self.backend, self.container, self.options
        self.write_plan(plan)
        trace_dir = self.staging.parent / "traces"
        trace_dir.mkdir(exist_ok=True)
        phases = self.finished  # also read after an interrupt, for a partial report
        t0 = [time.monotonic()]
        current = [DEFAULT_PASS]  # the pass a round's need comes from (its hooks are that pass's)
        skipped: list[str] = []  # extra passes the agent decided against, and why (report notes)

        def on_message(kind: str, msg: dict[str, Any]) -> None:
            if kind == "phase":
                t0[0] = time.monotonic()
                current[0] = str(msg.get("pass") or DEFAULT_PASS)
                if msg.get("pass"):
                    observer.status(f"extra pass {msg['pass']}: {msg['phase']}")
                observer.phase_started(Phase(msg["phase"]))
            elif kind == "result":
                ap = AgentPhase.model_validate(msg)
                phases.append(ap)
                observer.phase_finished(ap.phase, ap.status, time.monotonic() - t0[0])
                if on_result is not None:
                    live = None
                    if self.recorder is not None:
                        # the handler reads the phase's records: bpftrace must have written them
                        if self.recorder.sync(1.0) is None:
                            time.sleep(0.3)
                        live = self.recorder.live_path
                    on_result(ap, live)
            elif kind == "need" and on_need is not None:
                on_need({**msg, "pass": current[0]})
            elif kind == "skipped":
                skipped.append(f"extra pass {msg.get('pass')} called for and not run: {msg.get('why')}"[:300])

        # One exec runs every phase (a failed install stops it: later phases would
        # observe nothing); the budget covers each phase, its windows and restarts.
        budget = sum(options.timeouts[p] + options.window * 6 + 60 for p in options.phases)
        budget += options.window * 20 + pass_budget(options)
        if self.recorder is not None:
            observer.status("waiting for the eBPF recorder to attach")
            self.recorder.wait_ready()  # never a step before every probe is attached
        try:
            # --collect: the traces follow on the same stream (no second exec, no
            # second agent start), after the agent's "done"
            tar = io.BytesIO()
            raw = backend._exec_json(
                container,
                ["run", "--collect", *(p.value for p in options.phases)],
                timeout=budget,
                observer=observer,
                on_message=on_message,
                tail=tar,
                detach=detached(options),
            )
            if "done" not in raw or not phases:
                raise SandboxError(f"agent stopped before finishing the phases: {raw.get('error', {})}")
            if self.recorder is not None:
                self.recorder.interrupt()  # bpftrace drains and detaches while files are collected
            backend._collect(container, trace_dir, tar if "collect" in raw else None)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineError(f"engine failed mid-run: {str(exc).splitlines()[0][:200]}") from exc
        inventory = next((p.inventory for p in phases if p.phase is Phase.INSTALL), {})
        harness = {
            f"{'' if p.pass_name == DEFAULT_PASS else p.pass_name + '.'}{p.phase.value}.{s.tag}": tuple(
                s.argv
            )
            for p in phases
            for s in p.steps
        }
        recorded: dict[str, Any] = {"problems": tuple(skipped)}
        if self.recorder is not None:
            stats = self.recorder.stop()
            recorded |= {
                "recorder": "ebpf",
                "recorder_trace": str(self.recorder.trace_path),
                "wall_offset": stats.wall_offset,
                "recorder_rss_kb": stats.peak_rss_kb,
                "recorder_loader": stats.loader,
            }
            if stats.exit_code not in (0, None):
                recorded["problems"] += (f"eBPF recorder exited with {stats.exit_code}: {stats.stderr_tail}",)
        return RawRun(
            run_id=self.run_id,
            container=container.name,
            hostname=self.hostname,
            phases=tuple(phases),
            trace_dir=str(trace_dir),
            harness_argv=harness,
            inventory=inventory,
            runtime=options.runtime,
            **recorded,
        )

    def keep(self) -> str:
        """Leave the container for inspection (it stops itself at its deadline; `pkgsandbox
        sweep` removes it); the candidate's processes are already gone."""
        container, self.container = self.container, None
        if container is None:
            return ""
        return (
            f"kept container {container.name}: `docker exec -it {container.name} bash` to inspect "
            f"(traces in {OUT}); it stops at its deadline; `pkgsandbox sweep --all` "
            "removes it"
        )

    def close(self) -> None:
        # the container first: the recorder, once interrupted, is detaching meanwhile
        # (what it records from now on is past its final sync, and dropped)
        if self.container is not None:
            self.backend._remove(self.container)
            self.container = None
        if self.recorder is not None:
            self.recorder.kill()


class _ExecWatch:
    """Ends an exec's output stream that would otherwise block forever: docker-py waits
    for data without a timeout, and when a gVisor sandbox dies (measured: a fork bomb
    kills runsc, exit 2) the engine never closes the exec's connection. Every 2 s it
    checks the deadline and that the container still runs; if not, it shuts the socket,
    which ends the stream, and says why."""

    def __init__(
        self, api: Any, container_id: str, sock: Any, deadline: float, ended: Callable[[], bool] | None = None
    ) -> None:
        self.api, self.container_id, self.sock, self.deadline = api, container_id, sock, deadline
        self.ended = ended  # a detached command finished (its stream itself never ends)
        self.why = ""
        self._done = threading.Event()

    def _watch(self) -> None:
        polls = 0
        while not self._done.wait(0.5):
            polls += 1
            if self.ended is not None and self.ended():
                with contextlib.suppress(OSError):
                    getattr(self.sock, "_sock", self.sock).shutdown(socket.SHUT_RDWR)
                return
            if polls % 4:
                continue  # the deadline and the container every 2 s
            if time.monotonic() > self.deadline:
                self.why = "timeout"
            else:
                try:
                    state = self.api.inspect_container(self.container_id)["State"]
                    if not state.get("Running"):
                        self.why = "stopped"
                except docker.errors.NotFound:
                    self.why = "stopped"
                except (docker.errors.DockerException, requests.exceptions.RequestException):
                    continue
            if self.why:
                with contextlib.suppress(OSError):
                    getattr(self.sock, "_sock", self.sock).shutdown(socket.SHUT_RDWR)
                return

    def run(
        self, stream: Iterator[tuple[bytes | None, bytes | None]]
    ) -> Iterator[tuple[bytes | None, bytes | None]]:
        """*stream*'s frames until it ends or the watch ends it."""
        threading.Thread(target=self._watch, name="pkgsandbox-exec-watch", daemon=True).start()
        try:
            yield from stream
        except OSError:
            if not self.why:
                raise
        finally:
            self._done.set()
            with contextlib.suppress(OSError):
                self.sock.close()


def detached(options: RunOptions) -> bool:
    """Whether the agent commands the candidate runs under are PID 1's children (see
    :mod:`sandbox.agent.detach`): under runc. gVisor keeps ``docker exec``'s (its
    parent pid 0 stays among its tells)."""
    return options.runtime == "runc"


def pass_budget(options: RunOptions) -> float:
    """Seconds the extra passes may add (each re-runs startup, import and, where the
    profile runs it, exercise; the time and Windows passes execute too, where the
    profile does; the Windows pass may re-install first, within the import timeout;
    ``secrets`` brings its ``replay`` and ``control`` passes)."""
    again = [Phase.STARTUP, Phase.IMPORT, *([Phase.EXERCISE] if Phase.EXERCISE in options.phases else [])]
    one = sum(options.timeouts.get(p, 60.0) + options.window * 6 + 60 for p in again)
    install = min(options.timeouts.get(Phase.INSTALL, 600.0), options.timeouts.get(Phase.IMPORT, 300.0))
    execute = (
        options.timeouts.get(Phase.EXECUTE, 30.0) + options.window * 6 + 60
        if Phase.EXECUTE in options.phases
        else 0.0
    )
    return sum(
        one * (3 if name == "secrets" else 1)
        + (execute if name in ("time", "windows") else 0)
        + (install + options.window * 6 + 60 if name == "windows" else 0)
        for name, when in options.passes.items()
        if when != "never"
    )


def container_running(container: Any) -> bool:
    try:
        container.reload()
        return bool(container.status == "running")
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return False


def probe_container(
    client: docker.DockerClient, image: ImageInfo, plan: Plan, options: RunOptions, staging: Path
) -> dict[str, Any]:
    """Create a sandbox container exactly as a run does and report what the candidate
    uid sees from inside it (capabilities, no-new-privs, seccomp, writable paths,
    network), plus whether strace works under the recorder's privileges."""
    backend = DockerSandbox(client, image)
    run_id = secrets.token_hex(6)
    (staging / "plan.json").write_text(json.dumps({**plan, "hostname": "probe"}))
    (staging / "plan.json").chmod(AGENT_ONLY)
    container = backend._create(run_id, staging, time.time() + 300, options, realistic_hostname())
    try:
        engine_call("start probe container", container.start)
        seen = backend._exec_json(container, ["probe"], timeout=60, observer=Observer())
        code, out = container.exec_run(
            ["strace", "-f", "-o", "/dev/null", "-e", "trace=%process", "true"], user="root"
        )
        attrs = client.api.inspect_container(container.id)["HostConfig"]
        return {
            "probe": seen.get("probe", {}),
            "strace_ok": code == 0,
            "strace_output": out.decode("utf-8", "replace")[-300:],
            "host_config": {
                "NetworkMode": attrs.get("NetworkMode"),
                "ReadonlyRootfs": attrs.get("ReadonlyRootfs"),
                "PidsLimit": attrs.get("PidsLimit"),
                "Memory": attrs.get("Memory"),
                "NanoCpus": attrs.get("NanoCpus"),
                "SecurityOpt": attrs.get("SecurityOpt"),
                "CapAdd": attrs.get("CapAdd"),
                "CapDrop": attrs.get("CapDrop"),
                "Binds": attrs.get("Binds"),
                "Mounts": attrs.get("Mounts"),
            },
        }
    finally:
        backend._remove(container)


def tells_container(
    client: docker.DockerClient, image: ImageInfo, plan: Plan, options: RunOptions, staging: Path
) -> dict[str, Any]:
    """Open a sandbox exactly as a vet does (setup, sinkhole) and report what a process
    of the candidate, started like a step (recorder in front), can read about where it runs."""
    backend = DockerSandbox(client, image)
    session = backend.open(staging, plan, options, Observer())
    try:
        out = backend._exec_json(
            session.container, ["tells"], timeout=120, observer=Observer(), detach=detached(options)
        )
        seen: dict[str, Any] = out.get("tells", {})
        return seen
    finally:
        session.close()
