"""The eBPF recorder: bpftrace on the host, attached to one sandbox container.

It runs outside the candidate's container (root on the host): nothing in the
container can see, signal or ptrace it. It keeps only tasks of the container's pid
namespace running as the candidate's uid, so the root agent's own work is never
recorded. :meth:`EbpfRecorder.wait_ready` returns only once every probe is
attached (the program's ``BEGIN`` record follows the attach), and the session
starts the candidate's first step only after it.

What :func:`ebpf_support` checks is what ``doctor`` reports and what ``--recorder
auto`` relies on (with a proof stamp written by ``doctor`` after a live attach).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from sandbox.agent.protocol import SANDBOX_UID
from sandbox.errors import RecorderUnavailable, SandboxError
from sandbox.models import Frozen
from sandbox.runner.bpfbuild import LOADER, OBJECT, available, mark_unloadable, pack_config
from sandbox.runner.btf import empty_btf, kernel_offsets
from sandbox.runner.ebpf_program import PERF_PAGES, STRLEN, build_program, map_keys

TRACEFS = Path("/sys/kernel/tracing")
BTF = Path("/sys/kernel/btf/vmlinux")
READY = b"\x1eREADY"  # then the run's nonce (ebpf_program)
TRACE_NAME = "ebpf.trace"
LIVE_NAME = "ebpf.out"  # bpftrace's output while it runs; the trace is its synced prefix
_PROOF = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pkgsandbox" / "ebpf-proof.json"


class RecorderStats(Frozen):
    """How the recorder ran (for the report's notes and the benchmark)."""

    trace: str  # file name in the run's trace directory
    wall_offset: float  # wall clock minus monotonic clock, seconds
    attach_seconds: float
    peak_rss_kb: int  # VmHWM of the bpftrace process
    exit_code: int | None
    stderr_tail: str = ""
    loader: str = "bpftrace"  # or "compiled" (sandbox.runner.bpfbuild)


class EbpfSupport(Frozen):
    """What this host offers the eBPF recorder (doctor's report, auto's choice)."""

    root: bool
    bpftrace: str | None  # path of the binary
    tracefs: bool
    btf: bool
    tracepoints: bool  # raw_syscalls and sched_process_exit
    x86_64: bool
    proven: bool  # doctor attached it on this kernel with this bpftrace (or build)
    compiled: bool = False  # the compiled recorder is built (sandbox.runner.bpfbuild)

    @property
    def usable(self) -> bool:
        return (
            self.root
            and (bool(self.bpftrace) or self.compiled)
            and self.tracefs
            and self.btf
            and self.tracepoints
            and self.x86_64
        )


def mount_tracefs() -> bool:
    """Mount tracefs where the kernel exposes it when it is not (root only)."""
    if (TRACEFS / "events").is_dir():
        return True
    if os.geteuid() != 0 or not TRACEFS.is_dir():
        return False
    subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACEFS)], capture_output=True, check=False)
    return (TRACEFS / "events").is_dir()


def _fingerprint(bpftrace: str | None) -> dict[str, str]:
    try:
        version = subprocess.run([bpftrace or "bpftrace", "--version"], capture_output=True, text=True).stdout
    except OSError:
        version = ""
    compiled = available()
    return {
        "kernel": os.uname().release,
        "bpftrace": version.strip(),
        "compiled": compiled.name if compiled is not None else "",
    }


def ebpf_support(*, mount: bool = False, proof: bool = True) -> EbpfSupport:
    """What the host offers; *mount* tries to mount tracefs first; *proof* checks
    doctor's stamp (runs ``bpftrace --version``: only ``auto`` and doctor need it)."""
    tracefs = mount_tracefs() if mount else (TRACEFS / "events").is_dir()
    events = TRACEFS / "events"
    tracepoints = (events / "raw_syscalls" / "sys_enter").is_dir() and (
        events / "sched" / "sched_process_exit"
    ).is_dir()
    binary = shutil.which("bpftrace")
    proven = False
    try:
        proven = json.loads(_PROOF.read_text()) == _fingerprint(binary) if binary and proof else False
    except (OSError, ValueError):
        proven = False
    return EbpfSupport(
        root=os.geteuid() == 0,
        bpftrace=binary,
        tracefs=tracefs,
        btf=BTF.exists(),
        tracepoints=tracepoints,
        x86_64=os.uname().machine == "x86_64",
        proven=proven,
        compiled=available() is not None,
    )


def prove(timeout: float = 120.0) -> tuple[bool, str]:
    """Attach the recorder's program (to this process's own namespace, uid nobody)
    and detach: the live proof ``--recorder auto`` needs. Stamps it on success."""
    support = ebpf_support(mount=True)
    if not support.usable:
        return False, "eBPF recorder unsupported here (see doctor)"
    stats, why = _attach_once(timeout)
    if stats is None and support.compiled and support.bpftrace and "too many" not in why:
        # the build does not load on this kernel (another verifier, another layout):
        # marked so (bpfbuild.mark_unloadable), bpftrace is tried and, when it attaches,
        # is the recorder here, rather than auto falling to strace
        mark_unloadable(why)
        stats, why2 = _attach_once(timeout)
        if stats is not None:
            why = f"the compiled recorder failed to attach ({why[:200]}): bpftrace's instead; "
        else:
            why = f"{why}; bpftrace: {why2}"
    if stats is None:
        return False, why
    _PROOF.parent.mkdir(parents=True, exist_ok=True)
    _PROOF.write_text(json.dumps(_fingerprint(support.bpftrace)))
    return True, (
        f"{why}attached in {stats.attach_seconds:.1f}s, peak RSS {rss_text(stats.peak_rss_kb)} "
        f"(VmHWM of the {stats.loader} recorder's only process)"
    )


def _attach_once(timeout: float) -> tuple[RecorderStats | None, str]:
    """Attach the recorder to this process's own namespace (uid nobody) and detach:
    its stats, or None and why not."""
    out = Path(f"/tmp/pkgsandbox-ebpf-proof-{os.getpid()}")
    out.mkdir(exist_ok=True)
    recorder = EbpfRecorder(os.getpid(), out, uid=65534)
    try:
        recorder.start()
        recorder.wait_ready(timeout)
        return recorder.stop(), ""
    except SandboxError as exc:
        return None, str(exc)
    finally:
        recorder.kill()  # reaped: stop() does not wait for a synced recorder's exit
        shutil.rmtree(out, ignore_errors=True)


def bpftrace_env(out_dir: Path, tasks: int = 512) -> dict[str, str]:
    """bpftrace's environment for the recorder's program, for a container of at most
    *tasks* tasks (writes ``out_dir/ebpf.btf``)."""
    no_types = out_dir / "ebpf.btf"
    no_types.write_bytes(empty_btf())
    return {
        **os.environ,
        # bpftrace would load the kernel's whole BTF into its heap for nothing (see
        # empty_btf): the recorder's peak RSS went from 102 to 89 MiB without it
        "BPFTRACE_BTF": str(no_types),
        "BPFTRACE_STRLEN": str(STRLEN),
        # PKGSANDBOX_EBPF_PERF_PAGES: a smaller ring makes drops easy to provoke (tests)
        "BPFTRACE_PERF_RB_PAGES": os.environ.get("PKGSANDBOX_EBPF_PERF_PAGES", str(PERF_PAGES)),
        # kernel memory, preallocated: 65536 keys cost the host 35 MiB of BPF maps
        "BPFTRACE_MAP_KEYS_MAX": str(map_keys(tasks)),
    }


def ring_bytes() -> int:
    """The compiled recorder's ring: as many bytes as bpftrace's perf rings on all CPUs
    (PKGSANDBOX_EBPF_PERF_PAGES per CPU), a power of two as the kernel wants."""
    pages = int(os.environ.get("PKGSANDBOX_EBPF_PERF_PAGES", str(PERF_PAGES)))
    want = max(1, pages) * 4096 * max(1, len(online_cpus()))
    return 1 << (want - 1).bit_length()


def rss_text(kb: int) -> str:
    """A peak RSS as the reports print it: MiB, and MB (issue 13's target is 100 MB)."""
    return f"{kb // 1024} MiB = {kb * 1024 / 1e6:.0f} MB"


class EbpfRecorder:
    """bpftrace recording one container's candidate tasks into ``out_dir/ebpf.trace``."""

    def __init__(
        self,
        container_pid: int,
        out_dir: Path,
        *,
        uid: int = SANDBOX_UID,
        tasks: int = 512,
        compiled: bool = True,
    ) -> None:
        self.container_pid = container_pid
        self.tasks = tasks  # the container's pids limit
        self.out_dir = out_dir
        self.uid = uid
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.ready_after = 0.0
        self.peak_rss_kb = 0
        self.interrupted = False
        # ends every record with a string, and every sync marker: secret (a candidate's
        # string cannot forge a record's end or a marker), per recorder
        self.nonce = secrets.token_hex(8)
        self.cut: int | None = None  # the trace's length at the final sync
        self.compiled = compiled  # the compiled recorder when built (bpfbuild), else bpftrace
        self.loader = ""  # which one ran

    @property
    def trace_path(self) -> Path:
        """The finished trace (after :meth:`stop`)."""
        return self.out_dir / TRACE_NAME

    @property
    def live_path(self) -> Path:
        """bpftrace's output so far (see :meth:`sync`)."""
        return self.out_dir / LIVE_NAME

    def start(self) -> None:
        """Build the program for the container's pid namespace and start bpftrace."""
        binary = shutil.which("bpftrace") or ""
        if not (binary or available()) or not mount_tracefs():
            raise RecorderUnavailable(
                "eBPF recorder: bpftrace or tracefs missing (run `pkgsandbox doctor --provision`)"
            )
        try:
            inum = os.stat(f"/proc/{self.container_pid}/ns/pid").st_ino
            level = _ns_level(self.container_pid)
        except OSError as exc:
            raise RecorderUnavailable(
                f"eBPF recorder: cannot read the container's pid namespace: {exc}"
            ) from exc
        compiled = available() if self.compiled else None
        if compiled is not None:
            config = self.out_dir / "ebpf.cfg"
            config.write_bytes(pack_config(inum, self.uid, level, kernel_offsets(), os.getpid()))
            argv = [str(compiled / LOADER), str(compiled / OBJECT), str(config), self.nonce]
            argv += [str(map_keys(self.tasks)), str(ring_bytes())]
            env = dict(os.environ)
            # what recorded, for the evidence bundle (bpftrace's counterpart: ebpf.bt)
            (self.out_dir / "ebpf.program").write_text(
                f"compiled eBPF recorder {compiled.name} (sandbox/data/bpf: recorder.bpf.c, loader.c)\n"
                f"pid namespace {inum} (level {level}), uid {self.uid}, sync pid {os.getpid()}\n"
                f"argv: {' '.join(argv)}\n"
            )
        else:
            program = self.out_dir / "ebpf.bt"
            program.write_text(build_program(inum, self.uid, level, nonce=self.nonce, sync=os.getpid()))
            argv = [binary, "-B", "none", "--no-warnings", str(program)]
            env = bpftrace_env(self.out_dir, self.tasks)
        self.loader = "compiled" if compiled is not None else "bpftrace"
        self.started = time.monotonic()
        with self.live_path.open("wb") as out, (self.out_dir / "ebpf.stderr").open("wb") as err:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,  # a Ctrl-C of the tool reaches it through stop(), in order
                preexec_fn=_die_with_parent,  # a SIGKILLed tool leaves no recorder behind
            )

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Block until every probe is attached; raise if bpftrace fails or times out."""
        if self.proc is None:
            raise RecorderUnavailable("eBPF recorder was not started")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with self.live_path.open("rb") as fh:
                    if READY in fh.read(65536):
                        self.ready_after = time.monotonic() - self.started
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                tail = self.stderr_tail()
                if "Argument list too long" in tail:
                    # the kernel attaches at most 64 programs to one tracepoint; each
                    # recorder puts one per record kind on raw_syscalls:sys_exit
                    raise RecorderUnavailable(
                        "eBPF recorder failed to attach: too many eBPF recorders (or other BPF "
                        "programs) on raw_syscalls:sys_exit at once",
                        advice="run fewer eBPF vets at a time (about 5 per host), or --recorder strace",
                    )
                raise RecorderUnavailable(f"eBPF recorder failed to attach: {tail}")
            time.sleep(0.05)
        self.kill()
        raise RecorderUnavailable(f"eBPF recorder did not attach within {timeout:.0f}s")

    def stderr_tail(self) -> str:
        try:
            text = (self.out_dir / "ebpf.stderr").read_text(errors="replace")
        except OSError:
            return ""
        lines = [ln for ln in text.splitlines() if "RLIMIT_MEMLOCK" not in ln and ln.strip()]
        return "\n".join(lines)[-600:]

    def _sample_rss(self) -> None:
        if self.proc is None:
            return
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
        except (OSError, ValueError, IndexError):
            pass

    def sync(self, timeout: float = 2.0) -> int | None:
        """Return once bpftrace has written every record the kernel gave it before this
        call: one marker syscall per CPU lands in that CPU's perf buffer behind them,
        and bpftrace reads each buffer in order. Returns the output's length through
        the last marker; None when it cannot be sure (a CPU this process may not run
        on, bpftrace gone, or a marker that did not come: a full ring drops it)."""
        cpus = online_cpus()
        if self.proc is None or self.proc.poll() is not None or not cpus:
            return None
        try:
            if not cpus <= os.sched_getaffinity(0):
                return None
            start = self.live_path.stat().st_size
        except OSError:
            return None
        since = time.monotonic_ns()  # bpftrace's nsecs is the same clock
        threads = [threading.Thread(target=_mark, args=(cpu,), daemon=True) for cpu in sorted(cpus)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout)
        marker = re.compile(rb"\x1eSYNC (\d+) (\d+) %s\n" % self.nonce.encode())
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.live_path.open("rb") as fh:
                    fh.seek(start)
                    tail = fh.read()
            except OSError:
                return None
            ends = {int(m[1]): start + m.end() for m in marker.finditer(tail) if int(m[2]) >= since}
            if set(ends) >= cpus:
                return max(ends.values())
            if time.monotonic() > deadline or self.proc.poll() is not None:
                return None
            time.sleep(0.005)

    def interrupt(self) -> None:
        """End the recording without waiting for bpftrace's detach (about a second for
        its two dozen programs: the kernel waits out an RCU grace period for each):
        once a :meth:`sync` proves bpftrace wrote everything, it is killed, and the
        kernel detaches while the caller collects and judges (:meth:`kill` reaps it).
        Without the proof, SIGINT: bpftrace drains, detaches and exits, and
        :meth:`stop` waits for it. Safe to call twice."""
        if self.proc is None or self.interrupted:
            return
        self._sample_rss()
        if self.proc.poll() is None:
            self.cut = self.sync()
            if self.cut is not None and self.loader == "compiled":
                # it detaches its programs at once, from a thread each (loader.c
                # detach_all): about half of what the kernel takes for them one by one
                # when a killed process exits; :meth:`kill` reaps it
                self.proc.terminate()
            elif self.cut is not None:
                self.proc.kill()
            else:
                # let bpftrace read what the last step wrote into the perf buffers
                time.sleep(0.2)
                self.proc.send_signal(signal.SIGINT)
        self.interrupted = True

    def stop(self) -> RecorderStats:
        """End the recording (:meth:`interrupt`), write the trace and describe the run."""
        code: int | None = None
        if self.proc is not None:
            self.interrupt()
            if self.cut is not None:
                code = 0  # synced: the trace is whole, bpftrace's exit is not waited for
                with self.live_path.open("rb") as src:
                    self.trace_path.write_bytes(src.read(self.cut))
                self.live_path.unlink(missing_ok=True)
            else:
                try:
                    code = self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.kill()
                    code = None
                if self.live_path.exists():
                    self.live_path.replace(self.trace_path)
        return RecorderStats(
            trace=TRACE_NAME,
            wall_offset=time.time() - time.monotonic(),
            attach_seconds=round(self.ready_after, 3),
            peak_rss_kb=self.peak_rss_kb,
            exit_code=code,
            stderr_tail=self.stderr_tail(),
            loader=self.loader or "bpftrace",
        )

    def kill(self) -> None:
        """Stop the recorder at once (error paths) or reap it after :meth:`interrupt`
        (the compiled one, still detaching, gets 2 s); safe to call twice."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.interrupted and self.loader == "compiled":
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(2)
                return
        self.proc.kill()
        self.proc.wait()


def online_cpus() -> set[int]:
    """The CPUs bpftrace opened a perf buffer on (empty when unknown)."""
    cpus: set[int] = set()
    try:
        text = Path("/sys/devices/system/cpu/online").read_text().strip()
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
    except (OSError, ValueError):
        return set()
    return cpus


def _mark(cpu: int) -> None:
    """One sync marker from *cpu*: this thread moves there, then makes the marker call."""
    try:
        os.sched_setaffinity(0, {cpu})  # 0: this thread only
        os.sched_get_priority_max(-1)
    except OSError:
        pass  # the marker is the call itself: EINVAL is expected


def _die_with_parent() -> None:
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def _ns_level(pid: int) -> int:
    """How deep the process's pid namespace is (1 for a container of the host)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return len(line.split()) - 2
    return 0
