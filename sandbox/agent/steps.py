"""Running one traced step: strace → setpriv → choom → argv, its window, its result."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import selectors
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import Any

from . import guard, passes, protocol, watch
from .common import OUT, candidate_env

# What a developer types at prompts: input() in setup.py gets answers, not EOFError.
# Each reading interpreter buffers up to 8 KiB of stdin, and pip runs setup.py
# several times, so the pipe is grown to hold many buffers' worth.
ANSWERS = b"y\n" * 4096
ANSWER_BYTES = 1 << 20  # fs.pipe-max-size's default: answers for ~128 buffered readers
F_SETPIPE_SZ = 1031
# The window ends early once every survivor is parked for good (watch.parked), looked
# at from this long after its start and found unchanged this long apart.
PARKED_AFTER = 0.5
PARKED_HOLD = 0.5


class Capture:
    """Bounded head + tail capture of a byte stream (floods cannot exhaust memory)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > self.cap:
                del self.tail[: len(self.tail) - self.cap]

    def text(self) -> str:
        body = bytes(self.head)
        if self.tail:
            skipped = self.total - len(self.head) - len(self.tail)
            if skipped > 0:
                body += f"\n[... {skipped} bytes not kept ...]\n".encode()
            body += bytes(self.tail)
        return body.decode("utf-8", "replace")


def privilege_drop(plan: dict[str, Any]) -> list[str]:
    """setpriv + choom: candidate uid, no capabilities at all, no-new-privs, OOM-first."""
    return protocol.privilege_drop(plan["uid"], plan["gid"])


class StepRun:
    """One traced command: strace → setpriv → choom → argv, with watch and window.

    Under the eBPF recorder (``plan["recorder"] == "ebpf"``) nothing traces from
    inside: the host records the container's candidate-uid tasks, and the step is
    setpriv → choom → argv with no tracer to see (``TracerPid: 0``). The step's
    start on the monotonic clock (the one the recorder stamps records with) tells
    the host's decoder which records are this step's.
    """

    def __init__(
        self, plan: dict[str, Any], phase: str, tag: str, argv: list[str], *, driver: bool = False
    ) -> None:
        self.plan = plan
        self.driver = driver
        self.phase = phase
        self.tag = tag
        self.argv = argv
        # An extra pass (plan["_pass"], set by cmd_phase) runs under its own env overlay
        # and writes its own traces: the default pass's are never overwritten or mixed.
        self.pass_name = str(plan.get("_pass") or "default")
        prefix = "" if self.pass_name == "default" else f"{self.pass_name}."
        self.trace = OUT / f"{prefix}{phase}.{tag}.strace"
        self.output = Capture(int(plan.get("output_cap", 65536)))
        self.ctl_buffer = b""
        self.messages: list[dict[str, Any]] = []
        self.status = "ok"
        self.exit_code: int | None = None
        self.lingering: list[dict[str, Any]] = []
        self.window_used = 0.0
        self.problems: list[str] = []
        self.strace_rc: int | None = None
        self.main_pid: int | None = None
        self.oom_before = 0
        self.ebpf = plan.get("recorder") == "ebpf"
        self.start_ns = 0
        self.sweepers: list[int] = []  # pids of the agent's kill(-1) children (watch.kill_all)
        # stdin, stdout and stderr on a terminal (a pty) instead of pipes: a user's own
        # session, where code gated on ``isatty()`` runs
        self.tty = False

    def command(self) -> list[str]:
        if self.ebpf:
            return [*privilege_drop(self.plan), *self.argv]
        strace = [a.replace("{output}", str(self.trace)) for a in self.plan["strace"]]
        # -E: the preload reaches the tracee only, never strace itself.
        only_tracee = [f"-E{k}={v}" for k, v in passes.tracee_env(self.plan, self.pass_name).items()]
        return [*strace, *only_tracee, "--", *privilege_drop(self.plan), *self.argv]

    def environment(self) -> dict[str, str]:
        """The step's environment. Under eBPF no strace ``-E`` puts the pass's
        tracee-only variables (libfaketime) on the first exec: they go in here, the
        first exec being the same privilege drop strace would have started."""
        env = passes.pass_env(self.plan, self.pass_name, candidate_env(self.plan))
        if self.ebpf:
            env.update(passes.tracee_env(self.plan, self.pass_name))
        checkout = self.plan.get("_checkout")
        if checkout:  # an import from the unpacked sdist: in it, and importable from it
            env["PWD"] = str(checkout)
        # folders imported by bare name (flat.py) first, then the checkout; a pass's own
        # entries (its stubs) stay ahead of both
        extra = [*(self.plan.get("_pythonpath") or []), *([str(checkout)] if checkout else [])]
        if extra:
            env["PYTHONPATH"] = ":".join(p for p in (env.get("PYTHONPATH"), *extra) if p)
        return env

    def _read_ctl(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not data:
            return
        self.ctl_buffer += data
        if len(self.ctl_buffer) > 1 << 20:  # a candidate spamming fd 3: drop, keep going
            self.ctl_buffer = b""
        *lines, self.ctl_buffer = self.ctl_buffer.split(b"\n")
        for line in lines:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict):
                self.messages.append(msg)
                self.on_message(msg)

    def on_message(self, msg: dict[str, Any]) -> None:
        """Hook for drivers that report progress on fd 3."""

    def main_done(self) -> bool:
        """Whether the step's own work is over: its first process exited, or (for our
        drivers only, ``driver=True``) it said ``done`` on fd 3 and only lingers for
        the threads it leaves."""
        if self.driver and any(m.get("ev") == "done" for m in self.messages):
            return True
        return self.main_pid is not None and not _alive(self.main_pid)

    def driver_done(self) -> bool:
        """Whether our driver said it finished the candidate's work (it now only
        lingers for the threads that work left behind)."""
        return self.driver and any(m.get("ev") == "done" for m in self.messages)

    def overdue(self, now: float) -> str | None:
        """A reason to stop the step early, or None."""
        return None

    def run(self, timeout: float, window: float) -> StepRun:
        uid, gid = self.plan["uid"], self.plan["gid"]
        # Keep our own pipe ends above 10 so that fd 3 is free for the driver's
        # progress pipe, which the tracee must find at exactly fd 3.
        if self.tty:
            out_r, out_w = (_high_fd(fd) for fd in _terminal())
            in_r = _high_fd(os.dup(out_w))
        else:
            out_r, out_w = (_high_fd(fd) for fd in os.pipe())
            in_r, in_w = (_high_fd(fd) for fd in os.pipe())
            _feed_answers(in_w)
        ctl_r, ctl_w = (_high_fd(fd) for fd in os.pipe())
        os.dup2(ctl_w, 3, inheritable=False)
        os.close(ctl_w)
        os.set_blocking(out_r, False)
        os.set_blocking(ctl_r, False)
        start = time.monotonic()
        self.oom_before = _oom_kills()
        self.start_ns = time.monotonic_ns()
        proc = subprocess.Popen(
            self.command(),
            stdin=in_r,
            stdout=out_w,
            stderr=out_w,
            pass_fds=(3,),
            cwd=self.plan.get("_checkout") or self.plan["project"],
            env=self.environment(),
            preexec_fn=guard.recorder_preexec,
        )
        os.close(out_w)
        os.close(in_r)
        os.close(3)
        sel = selectors.DefaultSelector()
        sel.register(out_r, selectors.EVENT_READ, "out")
        sel.register(ctl_r, selectors.EVENT_READ, "ctl")
        deadline = start + timeout
        window_start: float | None = None
        cpu_at_start: dict[int, float] = {}
        wake_at_start: dict[int, dict[int, int]] = {}
        threads_cpu: dict[int, dict[int, float]] = {}
        settled = False
        killed = False
        extensions = 0
        parked: dict[tuple[int, int], int] | None = None  # see watch.parked
        next_parked_check = 0.0
        try:
            while True:
                for key, _ in sel.select(timeout=0.05):
                    if key.data == "out":
                        try:
                            data = os.read(out_r, 65536)
                        except BlockingIOError:
                            data = b"x"[:0]
                        except OSError:  # EIO: a terminal's last writer closed it
                            data = b"x"[:0]
                        if data:
                            self.output.feed(data)
                        else:
                            sel.unregister(out_r)
                    else:
                        self._read_ctl(ctl_r)
                if self.main_pid is None:
                    # no tracer in between under eBPF: the step's process is ours
                    self.main_pid = proc.pid if self.ebpf else _first_child(proc.pid)
                now = time.monotonic()
                if proc.poll() is not None and (
                    # strace exits once every tracee has; under eBPF ``proc`` is the step's
                    # own process, and what it leaves running is judged by the window below
                    not self.ebpf or killed or not watch.candidate_processes(uid)
                ):
                    break
                if killed:
                    if now > deadline + 10:
                        proc.terminate()  # strace detaches and flushes on SIGTERM
                    continue
                reason = self.overdue(now)
                if reason:
                    self.status = "timeout"
                    self.problems.append(reason)
                    self._finish(uid, gid, record=False)  # the step itself overran: not a survivor
                    killed = True
                    continue
                if window_start is None:
                    if self.main_done():
                        window_start = now
                        alive = watch.candidate_processes(uid)
                        cpu_at_start = watch.cpu_snapshot(alive)
                        wake_at_start = watch.thread_snapshot(alive)
                        threads_cpu = {p.pid: watch.thread_cpu(p.pid) for p in alive}
                    elif now > deadline:
                        self.status = "timeout"
                        self.problems.append(f"{self.tag}: still running after {timeout:.0f}s")
                        self._finish(uid, gid, record=False)
                        killed = True
                    continue
                survivors = watch.candidate_processes(uid)
                if not survivors:
                    continue  # strace is about to exit
                if not settled and now - window_start >= min(protocol.CPU_SETTLE_SECONDS, window / 2):
                    # CPU is judged from here: what thread pools spend spinning down after
                    # the step's last job is not work left running (wake-ups and waits
                    # still count from the window's start)
                    settled = True
                    cpu_at_start = watch.cpu_snapshot(survivors)
                    threads_cpu = {p.pid: watch.thread_cpu(p.pid) for p in survivors}
                if (
                    now - window_start >= window
                    and extensions < watch.FINISH_EXTENSIONS
                    and watch.finishing(survivors)
                ):
                    # a slow interpreter exit under load (a big import's teardown gets a
                    # quarter of a CPU at load 8), not a survivor yet: a busy loop posing
                    # as one only buys time, and is judged after the last extension
                    extensions += 1
                    window_start = now
                    # CPU stays counted from the settle: a payload that burns through
                    # the extensions and then blocks for ever is judged on all of it
                    continue
                if now >= next_parked_check and now - window_start >= PARKED_AFTER:
                    # Every survivor parked for good (no timeout, no clock, no thread woke
                    # since the last look): nothing can happen for the rest of the window,
                    # so it ends now (a BLAS pool after each numpy import cost 5 s a step).
                    next_parked_check = now + PARKED_HOLD
                    linger = self.main_pid if self.driver_done() else None
                    again = watch.parked(survivors, linger)
                    if again is not None and again == parked:
                        window = now - window_start
                    parked = again
                if now - window_start >= window:
                    # Judge survivors by what they did *during* the window and what their
                    # threads wait for: idle worker threads (BLAS pools parked without a
                    # timeout) are noted; busy, polling or sleeping-until-later threads and
                    # extra processes count.
                    self.lingering = [
                        watch.describe(
                            p,
                            cpu_at_start.get(p.pid),
                            self.main_pid,
                            wake_at_start.get(p.pid),
                            threads_cpu.get(p.pid),
                        )
                        for p in survivors
                    ]
                    self._finish(uid, gid, record=False)
                    killed = True
            self.window_used = (time.monotonic() - window_start) if window_start else 0.0
        finally:
            watch.kill_all(uid, gid, sweepers=self.sweepers)
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            # drain what is left of the output
            try:
                while True:
                    data = os.read(out_r, 65536)
                    if not data:
                        break
                    self.output.feed(data)
            except (BlockingIOError, OSError):
                pass
            self._read_ctl(ctl_r)
            sel.close()
            os.close(out_r)
            os.close(ctl_r)
        self.strace_rc = proc.returncode
        # strace exits with its tracee's status; the trace is the fallback when
        # strace itself had to be stopped.
        if self.status == "ok" and proc.returncode is not None and proc.returncode >= 0:
            self.exit_code = proc.returncode
        elif self.main_pid is not None:
            self.exit_code = _exit_code_from_trace(self.trace, self.main_pid)
        return self

    def _finish(self, uid: int, gid: int, record: bool) -> None:
        if record:
            self.lingering = [watch.describe(p) for p in watch.candidate_processes(uid)]
        watch.kill_all(uid, gid, sweepers=self.sweepers)

    def result(self) -> dict[str, Any]:
        size = self.trace.stat().st_size if self.trace.exists() else 0
        # eBPF: the host holds the trace and judges whether it is complete
        complete = self.ebpf or (self.trace.exists() and _ends_with_newline(self.trace))
        if _out_nearly_full():
            complete = False
            self.problems.append("trace storage full: trace truncated")
        return {
            "tag": self.tag,
            "argv": self.argv,
            "status": self.status,
            "exit_code": self.exit_code,
            "main_pid": self.main_pid,
            "trace": "" if self.ebpf else self.trace.name,
            "start_ns": self.start_ns,
            "trace_bytes": size,
            "trace_complete": complete,
            "lingering": self.lingering,
            "window": round(self.window_used, 3),
            "output": self.output.text(),
            "output_bytes": self.output.total,
            "problems": self.problems,
            "strace_rc": self.strace_rc,
            "oom_kills": max(0, _oom_kills() - self.oom_before),
            "sweepers": self.sweepers,
        }


class ImportRun(StepRun):
    """The import driver: per-module timeouts from its progress messages."""

    def __init__(
        self, plan: dict[str, Any], tag: str, argv: list[str], module_timeout: float, phase: str = "import"
    ) -> None:
        super().__init__(plan, phase, tag, argv)
        self.module_timeout = module_timeout
        self.current: tuple[str, float] | None = None
        self.current_t0 = 0.0
        self.last_t = time.time()  # no message's time precedes the driver's launch
        self.done = False
        self.unreached = 0  # the caller's calls its budget did not reach
        self.results: list[dict[str, Any]] = []

    def on_message(self, msg: dict[str, Any]) -> None:
        ev, name = msg.get("ev"), str(msg.get("m", ""))
        stamp = self._stamp(msg.get("t"))
        if ev == "start":
            self.current = (name, time.monotonic())
            self.current_t0 = stamp
        elif ev == "end" and self.current and self.current[0] == name:
            took = time.monotonic() - self.current[1]
            err = str(msg.get("err", ""))[:500]
            self.results.append(
                {
                    "name": name,
                    "status": "ok" if msg.get("ok") else ("timeout" if err == "timeout" else "error"),
                    "duration": round(took, 3),
                    "detail": err,
                    "t0": self.current_t0,
                    "t1": stamp,
                }
            )
            self.current = None
        elif ev == "done":
            self.done = True
            # the candidate can write on this pipe too: a count, or nothing
            unreached = msg.get("unreached")
            self.unreached = unreached if isinstance(unreached, int) and unreached > 0 else 0

    def _stamp(self, sent: object) -> float:
        # The driver's clock reading when it wrote the message: the agent reads the pipe
        # later (a busy machine: milliseconds), and a span opened on receipt missed the
        # call's first syscalls. The driver runs in the candidate's process, so its time
        # is believed only between the previous message's and now: a forged one can move
        # a label within the window it truly ran in, never outside.
        now = time.time()
        t = sent if isinstance(sent, float) and self.last_t <= sent <= now else now
        self.last_t = t
        return t

    def main_done(self) -> bool:
        return self.done or super().main_done()

    def driver_done(self) -> bool:
        return self.done

    def outcomes(self) -> list[dict[str, Any]]:
        """Every module's result, and an error for the one the interpreter died in
        (it started and never ended: a crash, ``os._exit`` or a kill)."""
        if self.current is None:
            return list(self.results)
        died = {
            "name": self.current[0],
            "status": "error",
            "duration": 0,
            "detail": "interpreter exited during import",
        }
        return [*self.results, died]

    def overdue(self, now: float) -> str | None:
        if self.current and not self.done and now - self.current[1] > self.module_timeout:
            name = self.current[0]
            self.results.append(
                {"name": name, "status": "timeout", "duration": round(now - self.current[1], 3), "detail": ""}
            )
            self.current = None
            return f"import of {name} exceeded {self.module_timeout:.0f}s"
        return None


def _feed_answers(fd: int) -> None:
    """Fill the step's stdin pipe with answers (grown to hold them: no writer thread,
    no blocking) and close it, so readers get EOF after the last answer."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, F_SETPIPE_SZ, ANSWER_BYTES)
    os.set_blocking(fd, False)
    view = memoryview(ANSWERS * (ANSWER_BYTES // len(ANSWERS)))
    with contextlib.suppress(OSError):  # EAGAIN: the pipe is full
        while view:
            view = view[os.write(fd, view) :]
    os.close(fd)


def _oom_kills() -> int:
    """The container's OOM kills (private cgroupns). cgroup v1 counts them per memory
    cgroup, not its subtree, and the runc wrapper runs the container's processes in
    cgroups below the namespace root: every one is summed. v2's ``memory.events`` at the
    root counts its subtree."""
    total, v1 = 0, False
    for dirpath, _dirs, files in os.walk("/sys/fs/cgroup/memory"):
        if "memory.oom_control" in files:
            v1 = True
            total += _oom_kill_line(os.path.join(dirpath, "memory.oom_control"))
    return total if v1 else _oom_kill_line("/sys/fs/cgroup/memory.events")


def _oom_kill_line(path: str) -> int:
    try:
        with open(path) as fh:
            for line in fh:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _terminal() -> tuple[int, int]:
    """A pty (master, slave) the size of a default terminal window."""
    master, slave = pty.openpty()
    with contextlib.suppress(OSError):
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    return master, slave


def _high_fd(fd: int) -> int:
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


def _first_child(pid: int) -> int | None:
    """The step's main process: strace's child once it has exec'd. strace also forks
    short-lived children of its own (the ``--seccomp-bpf`` probe); taking one of
    those for the main process ended the step at once under load (exit code lost,
    the real main process reported as lingering), so a child still running strace's
    own image is not taken (the caller asks again on its next turn). An exiting probe
    has an empty command line (psutil also answers "" for its exe): never taken either,
    or the step's window started as it died and the real command counted as a survivor."""
    try:
        import psutil

        parent = psutil.Process(pid)
        own = parent.cmdline()[:1]
        for kid in parent.children():
            try:
                cmd = kid.cmdline()[:1]
                if cmd and cmd != own:
                    return int(kid.pid)
            except psutil.Error:
                continue
    except Exception:
        return None
    return None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        try:
            fh.seek(-1, os.SEEK_END)
        except OSError:
            return True  # empty file
        return fh.read(1) == b"\n"


def _out_nearly_full() -> bool:
    st = os.statvfs(OUT)
    return st.f_bavail * st.f_frsize < 1 << 20


_EXITED = re.compile(rb"^(\d+)\s+\S+\s+\+\+\+ (?:exited with (\d+)|killed by (\w+))")


def _exit_code_from_trace(trace: Path, pid: int) -> int | None:
    """The main process's exit status, read back from the trace's last lines."""
    if not trace.exists():
        return None
    with trace.open("rb") as fh:
        try:
            fh.seek(-65536, os.SEEK_END)
        except OSError:
            fh.seek(0)
        tail = fh.read().splitlines()
    for line in reversed(tail):
        m = _EXITED.match(line)
        if m and int(m.group(1)) == pid:
            return int(m.group(2)) if m.group(2) is not None else -1
    return None
