"""Agent entry point: ``agent {setup,phase NAME,collect,probe}`` (runs as root in the sandbox)."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from . import fsdiff, guard, init, passes, protocol, rounds, sinkhole, tells, trust, watch

PLAN_PATH = Path(os.environ.get("PKGSANDBOX_PLAN", protocol.PLAN_PATH))
OUT = Path(protocol.OUT)
RUN_DIR = Path(protocol.RUN_DIR)
VENV_TEMPLATE = Path(protocol.VENV_TEMPLATE)
STAGE = PLAN_PATH.parent
STAGE_ARTIFACTS = STAGE / "artifacts"
# What a developer types at prompts: input() in setup.py gets answers, not EOFError.
# Each reading interpreter buffers up to 8 KiB of stdin, and pip runs setup.py
# several times, so the pipe is grown to hold many buffers' worth.
ANSWERS = b"y\n" * 4096
ANSWER_BYTES = 1 << 20  # fs.pipe-max-size's default: answers for ~128 buffered readers
F_SETPIPE_SZ = 1031
_ROUNDS: rounds.Rounds | None = None
EXIT_OK, EXIT_USAGE, EXIT_FAIL = 0, 2, 3


def emit(kind: str, **fields: Any) -> None:
    """One JSON line to the host (our stdout is the docker exec stream, not the candidate's)."""
    sys.stdout.write(json.dumps({"type": kind, **fields}) + "\n")
    sys.stdout.flush()


def load_plan() -> dict[str, Any]:
    with PLAN_PATH.open() as fh:
        plan: dict[str, Any] = json.load(fh)
    return plan


# --------------------------------------------------------------------------- setup

HOME_FILES = {
    ".bashrc": "# ~/.bashrc: executed by bash(1) for non-login shells.\n"
    "case $- in *i*) ;; *) return;; esac\nHISTCONTROL=ignoreboth\nshopt -s histappend\n"
    "HISTSIZE=1000\nHISTFILESIZE=2000\nalias ll='ls -alF'\nalias gs='git status'\n"
    "export EDITOR=nano\n[ -f ~/.venv/bin/activate ] && . ~/.venv/bin/activate\n",
    ".profile": "# ~/.profile: executed by the command interpreter for login shells.\n"
    'if [ -n "$BASH_VERSION" ] && [ -f "$HOME/.bashrc" ]; then . "$HOME/.bashrc"; fi\n'
    'if [ -d "$HOME/.local/bin" ] ; then PATH="$HOME/.local/bin:$PATH"; fi\n',
    ".bash_history": "cd project\ngit pull\nsource .venv/bin/activate\npip install -r requirements.txt\n"
    "pytest -q\ngit status\ngit commit -am 'fix flaky test'\ngit push\nls -la\nvim app/settings.py\n",
    ".gitconfig": "[user]\n\tname = {name}\n\temail = {user}@{domain}\n[pull]\n\trebase = true\n"
    "[init]\n\tdefaultBranch = main\n",
}


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def copy_venv(dest: Path) -> None:
    """Copy the pre-built venv template and point its scripts' shebangs at *dest*."""
    shutil.copytree(VENV_TEMPLATE, dest, symlinks=True)
    old, new = str(VENV_TEMPLATE).encode(), str(dest).encode()
    for script in (dest / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if old in data[:4096]:
            script.write_bytes(data.replace(old, new))
    cfg = dest / "pyvenv.cfg"
    if cfg.exists():
        cfg.write_text(cfg.read_text().replace(str(VENV_TEMPLATE), str(dest)))
    _pip_keeps_stdin(dest)


def _pip_keeps_stdin(venv: Path) -> None:
    """pip runs setup.py / build hooks with a closed stdin pipe, so ``input()`` there
    raises EOFError; a developer's terminal answers. Let the hooks inherit pip's
    stdin (the step's pipe of answers). Harness-side only: pip is ours."""
    for path in venv.glob("lib/python*/site-packages/pip/_internal/utils/subprocess.py"):
        text = path.read_text()
        patched = text.replace(
            "            stdin=subprocess.PIPE,\n", "            stdin=None,\n", 1
        ).replace("        assert proc.stdin\n        proc.stdin.close()\n", "", 1)
        if patched != text:
            path.write_text(patched)
            for cached in path.parent.glob("__pycache__/subprocess.*.pyc"):
                cached.unlink()


def cmd_setup(plan: dict[str, Any]) -> int:
    """Prepare the trace directory, a lived-in HOME and the project's venv."""
    OUT.mkdir(parents=True, exist_ok=True)
    OUT.chmod(0o700)
    # The sinkhole first: its rules install in the background while HOME and the
    # venv are prepared below, and nothing of the candidate runs before setup ends.
    net = sinkhole.Setup(plan, OUT) if plan.get("sinkhole", {}).get("enabled") else None
    home = Path(plan["home"])
    project = Path(plan["project"])
    ident = plan.get("identity", {})
    fmt = {
        "name": ident.get("full_name", "Alex Morgan"),
        "user": plan["user"],
        "domain": ident.get("domain", "example.com"),
    }
    for name, text in HOME_FILES.items():
        _write(home / name, text.format(**fmt) if "{" in text else text)
    for extra in (".cache", ".local/bin", ".config", "Downloads", "Documents"):
        (home / extra).mkdir(parents=True, exist_ok=True)
    project.mkdir(parents=True, exist_ok=True)
    _write(project / "README.md", "# service\n\nInternal API service.\n")
    _write(project / "requirements.txt", "flask==3.0.3\nrequests==2.32.3\n")
    _git_checkout(project, fmt)
    # Honeytokens (generated per run on the host): credential files relative to
    # HOME (the project's .env included), mode 0600 like the real ones.
    for rel, content in plan.get("home_files", {}).items():
        target = home / rel
        _write(target, content, 0o600)
    for rel, b64 in plan.get("home_blobs", {}).items():  # binary honeytokens (SQLite, leveldb)
        target = home / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(b64))
        target.chmod(0o600)
    passes.install_stubs()
    for private in (".ssh", ".aws", ".kube", ".docker", ".gnupg"):
        if (home / private).is_dir():
            (home / private).chmod(0o700)
    copy_venv(Path(plan["venv"]))
    if net is not None and net.tls and "pid" in net.info:
        try:
            trust_ca(net, Path(plan["venv"]))
        except Exception as exc:  # TLS capture is a bonus: never the reason setup fails
            net.info.setdefault("tls", {}).setdefault("problems", []).append(f"{type(exc).__name__}: {exc}")
    home.chmod(0o750)  # before chown: root has no CAP_FOWNER here
    _chown_tree(home, plan["uid"], plan["gid"])
    look_like_a_workstation(plan)
    if plan.get("evidence"):
        fsdiff.save(OUT, fsdiff.snapshot())
    emit("setup", ok=True, venv=plan["venv"], sinkhole=net.wait() if net else {})
    return EXIT_OK


def trust_ca(net: sinkhole.Setup, venv: Path) -> None:
    """The run's CA (made by the sinkhole daemon) into the system store and the
    Python bundles (see trust.py); what was done goes to sinkhole.json."""
    t0 = time.monotonic()
    tls: dict[str, Any] = net.info.setdefault("tls", {})
    state = trust.wait_state(5.0)
    if not state.get("ca_pem"):
        tls.update(enabled=False, problems=[state.get("error", "no CA")])
        return
    problems = trust.install_system(state["ca_pem"], state["stem"], state["hash"])
    patched, more = trust.patch_bundles(trust.python_roots(venv), state["ca_pem"])
    tls.update(
        enabled=True,
        ca=state["stem"],
        bundles=patched,
        problems=problems + more,
        seconds=round(time.monotonic() - t0, 3),
    )


def patch_venv_bundles(plan: dict[str, Any]) -> None:
    """Before a phase that follows install: certifi and friends the install brought
    now trust the CA too (their files belong to the candidate: see trust.append_ca)."""
    state = trust.load_state()
    if state is None:
        return
    try:
        patched, problems = trust.patch_bundles(trust.python_roots(Path(plan["venv"])), state["ca_pem"])
    except Exception as exc:  # never the reason a phase fails
        patched, problems = [], [f"{type(exc).__name__}: {exc}"]
    if patched or problems:
        with contextlib.suppress(OSError), (OUT / "trust.jsonl").open("a") as fh:
            fh.write(json.dumps({"t": time.time(), "patched": patched, "problems": problems}) + "\n")
    if patched and plan.get("evidence"):
        # our own change: the evidence diff must not show it as the next phase's doing
        snap = fsdiff.load(OUT)
        for path in patched:
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if path in snap:
                    snap[path] = [st.st_size, st.st_mtime_ns, st.st_mode]
        fsdiff.save(OUT, snap)


def _git_checkout(project: Path, fmt: dict[str, str]) -> None:
    """A bare-bones .git so that the project looks like a clone (stealers read remotes)."""
    git = project / ".git"
    for sub in ("objects/info", "objects/pack", "refs/heads", "refs/tags", "info"):
        (git / sub).mkdir(parents=True, exist_ok=True)
    _write(git / "HEAD", "ref: refs/heads/main\n")
    _write(git / "description", "Unnamed repository; edit this file 'description' to name the repository.\n")
    _write(git / "info" / "exclude", "# git ls-files --others --exclude-from=.git/info/exclude\n")
    _write(
        git / "config",
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n"
        '\tlogallrefupdates = true\n[remote "origin"]\n'
        f"\turl = git@github.com:{fmt['user']}/service.git\n"
        '\tfetch = +refs/heads/*:refs/remotes/origin/*\n[branch "main"]\n\tremote = origin\n'
        "\tmerge = refs/heads/main\n",
    )


ETC_HOSTS = """127.0.0.1\tlocalhost
127.0.1.1\t{hostname}

# The following lines are desirable for IPv6 capable hosts
::1     localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
"""


def look_like_a_workstation(plan: dict[str, Any]) -> list[str]:
    """Remove what says "container" where root can: /.dockerenv (Docker adds it to
    every container's init layer, whatever the image holds), and Docker's
    /etc/hosts and resolv.conf (files Docker bind-mounts per container: writing
    them changes only this container's copies). Returns what could not be done."""
    problems = []
    try:
        os.unlink("/.dockerenv")
    except FileNotFoundError:
        pass
    except OSError as exc:
        problems.append(f"/.dockerenv: {exc.strerror}")
    net = plan.get("sinkhole", {}).get("net", {})
    files = {"/etc/hosts": ETC_HOSTS.format(hostname=plan.get("hostname", "localhost"))}
    if net.get("gateway"):
        files["/etc/resolv.conf"] = f"# Generated by NetworkManager\nnameserver {net['gateway']}\n"
    for path, text in files.items():
        try:
            with open(path, "w") as fh:  # a bind mount: rewrite in place, never rename over it
                fh.write(text)
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror}")
    return problems


# --------------------------------------------------------------------------- tracing


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    if not found:
        raise RuntimeError(f"no site-packages under {venv}")
    return found[0]


def candidate_env(plan: dict[str, Any]) -> dict[str, str]:
    """The environment a developer's shell would give the candidate."""
    venv = plan["venv"]
    env = {
        "HOME": plan["home"],
        "USER": plan["user"],
        "LOGNAME": plan["user"],
        "SHELL": "/bin/bash",
        "PATH": f"{venv}/bin:{plan['home']}/.local/bin:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "VIRTUAL_ENV": venv,
        "PWD": plan["project"],
        "HOSTNAME": plan.get("hostname", "localhost"),
    }
    env.update(trust.env_vars(trust.load_state()))
    env.update(plan.get("env", {}))
    return env


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

    def command(self) -> list[str]:
        if self.ebpf:
            return [*privilege_drop(self.plan), *self.argv]
        strace = [a.replace("{output}", str(self.trace)) for a in self.plan["strace"]]
        # -E: the preload reaches the tracee only, never strace itself.
        only_tracee = [f"-E{k}={v}" for k, v in passes.tracee_env(self.plan, self.pass_name).items()]
        return [*strace, *only_tracee, "--", *privilege_drop(self.plan), *self.argv]

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

    def overdue(self, now: float) -> str | None:
        """A reason to stop the step early, or None."""
        return None

    def run(self, timeout: float, window: float) -> StepRun:
        uid, gid = self.plan["uid"], self.plan["gid"]
        # Keep our own pipe ends above 10 so that fd 3 is free for the driver's
        # progress pipe, which the tracee must find at exactly fd 3.
        out_r, out_w = (_high_fd(fd) for fd in os.pipe())
        ctl_r, ctl_w = (_high_fd(fd) for fd in os.pipe())
        in_r, in_w = (_high_fd(fd) for fd in os.pipe())
        _feed_answers(in_w)
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
            cwd=self.plan["project"],
            env=passes.pass_env(self.plan, self.pass_name, candidate_env(self.plan)),
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
        killed = False
        try:
            while True:
                for key, _ in sel.select(timeout=0.05):
                    if key.data == "out":
                        try:
                            data = os.read(out_r, 65536)
                        except BlockingIOError:
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
                if proc.poll() is not None:
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
                    elif now > deadline:
                        self.status = "timeout"
                        self.problems.append(f"{self.tag}: still running after {timeout:.0f}s")
                        self._finish(uid, gid, record=False)
                        killed = True
                    continue
                survivors = watch.candidate_processes(uid)
                if not survivors:
                    continue  # strace is about to exit
                if now - window_start >= window:
                    # Judge survivors by what they did *during* the window and what their
                    # threads wait for: idle worker threads (BLAS pools parked without a
                    # timeout) are noted; busy, polling or sleeping-until-later threads and
                    # extra processes count.
                    self.lingering = [
                        watch.describe(p, cpu_at_start.get(p.pid), self.main_pid, wake_at_start.get(p.pid))
                        for p in survivors
                    ]
                    self._finish(uid, gid, record=False)
                    killed = True
            self.window_used = (time.monotonic() - window_start) if window_start else 0.0
        finally:
            watch.kill_all(uid, gid)
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
        watch.kill_all(uid, gid)

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
        self.done = False
        self.results: list[dict[str, Any]] = []

    def on_message(self, msg: dict[str, Any]) -> None:
        ev, name = msg.get("ev"), str(msg.get("m", ""))
        if ev == "start":
            self.current = (name, time.monotonic())
            self.current_t0 = time.time()
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
                    "t1": time.time(),
                }
            )
            self.current = None
        elif ev == "done":
            self.done = True

    def main_done(self) -> bool:
        return self.done or super().main_done()

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
    """The container's OOM-kill counter (cgroup v1 memory controller, private cgroupns)."""
    for path in ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"):
        try:
            with open(path) as fh:
                for line in fh:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0


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


# --------------------------------------------------------------------------- phases


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def candidate_dist_info(site: Path, name: str) -> Path | None:
    want = _norm(name)
    for info in site.glob("*.dist-info"):
        dist = info.name[: -len(".dist-info")].rsplit("-", 1)[0]
        if _norm(dist) == want:
            return info
    return None


_EXT_SUFFIX = re.compile(r"\.(cpython-[^.]+|abi3|pypy[^.]*)?\.?so$")


def modules_from_record(info: Path, limit: int) -> tuple[list[str], int]:
    """Importable module names of a distribution: its top-level names first, then RECORD."""
    names: list[str] = []
    seen: set[str] = set()
    record = info / "RECORD"
    rows = record.read_text(errors="replace").splitlines() if record.exists() else []
    tops: list[str] = []
    top_file = info / "top_level.txt"
    if top_file.exists():
        tops = [t.strip() for t in top_file.read_text().splitlines() if t.strip()]
    for row in rows:
        rel = row.split(",", 1)[0]
        if rel.startswith(("..", "/")) or ".dist-info/" in rel or ".data/" in rel or "__pycache__" in rel:
            continue
        if rel.endswith(".py"):
            dotted = rel[:-3]
        elif rel.endswith(".so"):
            dotted = _EXT_SUFFIX.sub("", rel)
        else:
            continue
        parts = dotted.split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not parts or not all(p.isidentifier() for p in parts) or parts[-1] == "__main__":
            continue
        mod = ".".join(parts)
        if mod not in seen:
            seen.add(mod)
            names.append(mod)
    top_level = [t for t in tops if t.isidentifier()] or sorted({n.split(".")[0] for n in names})
    ordered = [t for t in top_level if t not in ("__main__",)]
    rest = sorted((n for n in names if n not in ordered), key=lambda n: (n.count("."), n))
    full = ordered + rest
    return full[:limit], max(0, len(full) - limit)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def inventory(plan: dict[str, Any]) -> dict[str, Any]:
    """What install put in place: distributions, .pth files, the candidate's modules."""
    site = site_packages(Path(plan["venv"]))
    dists = []
    for info in sorted(site.glob("*.dist-info")):
        stem = info.name[: -len(".dist-info")]
        name, _, version = stem.rpartition("-")
        dists.append({"name": name, "version": version})
    pths = []
    template = {p.name: p.read_bytes() for p in site_packages(VENV_TEMPLATE).glob("*.pth")}
    for pth in sorted(site.glob("*.pth")):
        data = pth.read_bytes()
        if template.get(pth.name) == data:
            continue  # shipped with the venv template, not by what was installed
        pths.append(
            {
                "path": str(pth),
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "head": data[:4096].decode("utf-8", "replace"),
                "executes": any(
                    line.startswith(("import ", "import\t"))
                    for line in data.decode("utf-8", "replace").splitlines()
                ),
            }
        )
    cand = candidate_dist_info(site, plan["candidate"]["name"])
    modules: list[str] = []
    capped = 0
    if cand is not None:
        modules, capped = modules_from_record(cand, int(plan.get("max_modules", 5000)))
    entry_points = ""
    if cand is not None and (cand / "entry_points.txt").exists():
        entry_points = (cand / "entry_points.txt").read_text(errors="replace")[:65536]
    return {
        "site_packages": str(site),
        "distributions": dists,
        "pth_files": pths,
        "candidate_dist_info": str(cand) if cand else None,
        "modules": modules,
        "modules_capped": capped,
        "entry_points": entry_points,
    }


def _pip_install(plan: dict[str, Any], names: list[str]) -> list[str]:
    """argv of a harness pip step installing staged index packages (wheels) into the venv."""
    return [
        f"{plan['venv']}/bin/python",
        "-m",
        "pip",
        "install",
        "--no-index",
        "--find-links",
        str(STAGE_ARTIFACTS),
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        *names,
    ]


def _with_flag(args: list[str], flag: str, extra: list[str] | None = None) -> list[str]:
    """pip *args* with *flag* right after ``install`` (and *extra* targets at the end)."""
    if flag in args:
        return args
    i = args.index("install") + 1
    return [*args[:i], flag, *args[i:], *(extra or [])]


def run_rounds() -> rounds.Rounds:
    global _ROUNDS
    if _ROUNDS is None:
        _ROUNDS = rounds.Rounds(load_plan(), STAGE)
    return _ROUNDS


def phase_install(plan: dict[str, Any], timeout: float, window: float) -> dict[str, Any]:
    """pip install of the candidate; on a missing module or distribution, a round (the
    host stages wheels) and the install re-runs in this container. Legacy setup.py
    sdists first get a developer's venv (the kit) and build without isolation."""
    py = f"{plan['venv']}/bin/python"
    args: list[str] = list(plan["install_args"])
    end = time.monotonic() + timeout
    steps: list[dict[str, Any]] = []
    problems: list[str] = []
    kit = list(plan.get("kit") or [])
    if kit:
        emit("status", phase="install", msg=f"developer packages: {' '.join(kit)}")
        res = (
            StepRun(plan, "install", "kit", _pip_install(plan, kit))
            .run(end - time.monotonic(), window)
            .result()
        )
        steps.append(res)
        if res["status"] == "ok" and res["exit_code"] == 0:
            args = _with_flag(args, "--no-build-isolation")
        else:
            problems.append("the developer packages did not install; building with isolation")
    rnd = run_rounds()
    attempt = 0
    while True:
        run = StepRun(plan, "install", str(attempt), [py, *args])
        step = run.run(max(1.0, end - time.monotonic()), window).result()
        steps.append(step)
        if step["status"] != "ok" or step["exit_code"] == 0 or time.monotonic() >= end:
            break
        modules, reqs = rounds.needs_from_output(step["output"])
        if not (modules or reqs):
            break
        reason = next(
            (
                ln.strip()
                for ln in reversed(step["output"].splitlines())
                if "No module named" in ln or "No matching distribution" in ln
            ),
            "",
        )
        answer = rnd.ask("install", modules, reqs, reason)
        if answer is None:
            if reqs and "--no-deps" not in args:
                # Dependencies nobody can supply (no Linux wheel …): install the candidate
                # alone with what was staged, as a developer would with --no-deps.
                args = _with_flag(args, "--no-deps", list(plan.get("dependency_files") or []))
                attempt += 1
                continue
            break
        names = [str(n) for n in answer.get("install") or []]
        changed = False
        if names:
            pip_res = StepRun(plan, "install", f"round{rnd.used}-pip", _pip_install(plan, names))
            steps.append(pip_res.run(max(1.0, end - time.monotonic()), window).result())
            changed = True
        if modules and names and "--no-build-isolation" not in args:
            # setup.py imports what its isolated build env cannot have: build in the venv
            build = [str(n) for n in plan.get("build_names") or []]
            if build:
                pip_res = StepRun(plan, "install", f"round{rnd.used}-build", _pip_install(plan, build))
                steps.append(pip_res.run(max(1.0, end - time.monotonic()), window).result())
            args = _with_flag(args, "--no-build-isolation")
        if reqs and answer.get("missing") and "--no-deps" not in args:
            args = _with_flag(args, "--no-deps", list(plan.get("dependency_files") or []))
            changed = True
        if not changed:
            break
        attempt += 1
    last = steps[-1]
    status = last["status"]
    if status == "ok" and last["exit_code"] != 0:
        status = "error"
    inv: dict[str, Any] = {}
    try:
        inv = inventory(plan)
    except Exception as exc:  # an install that failed may leave no site-packages
        last["problems"].append(f"inventory failed: {exc}")
    (OUT / "inventory.json").write_text(json.dumps(inv))
    return {"phase": "install", "status": status, "steps": steps, "inventory": inv, "problems": problems}


def phase_startup(plan: dict[str, Any], timeout: float, window: float) -> dict[str, Any]:
    py = f"{plan['venv']}/bin/python"
    commands = [
        ("python-c-pass", [py, "-c", "pass"]),
        ("pip-version", [py, "-m", "pip", "--version"]),
        ("long-running", [py, str(RUN_DIR / "pkgsandbox_keep.py")]),
    ]
    steps = []
    status = "ok"
    end = time.monotonic() + timeout
    for tag, argv in commands:
        left = end - time.monotonic()
        if left <= 0:
            status = "timeout"
            break
        emit("status", phase="startup", msg=" ".join(argv[1:])[:120])
        # the long-running driver says "done" at once: its window opens right away
        driver = argv[-1].endswith("pkgsandbox_keep.py")
        res = StepRun(plan, "startup", tag, argv, driver=driver).run(left, window).result()
        steps.append(res)
        if res["status"] == "timeout":
            status = "timeout"
        elif res["exit_code"] not in (0, None) and status == "ok":
            status = "error"
    return {"phase": "startup", "status": status, "steps": steps}


def phase_import(plan: dict[str, Any], timeout: float, window: float) -> dict[str, Any]:
    inv_path = OUT / "inventory.json"
    inv = json.loads(inv_path.read_text()) if inv_path.exists() else {}
    modules: list[str] = list(inv.get("modules") or [])
    if not modules:
        if inv.get("candidate_dist_info"):
            return {
                "phase": "import",
                "status": "ok",
                "steps": [],
                "modules": [],
                "problems": ["the candidate installs no importable module"],
            }
        return {
            "phase": "import",
            "status": "error",
            "steps": [],
            "modules": [],
            "problems": ["the candidate's distribution was not found after install"],
        }
    py = f"{plan['venv']}/bin/python"
    module_timeout = float(plan.get("module_timeout", 30))
    end = time.monotonic() + timeout
    steps = []
    results: list[dict[str, Any]] = []
    status = "ok"
    remaining = modules
    attempt = 0
    while remaining:
        left = end - time.monotonic()
        if left <= 0 or attempt >= 25:
            status = "timeout"
            results.extend(
                {"name": m, "status": "skipped", "duration": 0, "detail": "not reached"} for m in remaining
            )
            break
        emit("status", phase="import", msg=f"importing {len(remaining)} modules (run {attempt + 1})")
        driver = str(RUN_DIR / "pkgsandbox_import.py")
        run = ImportRun(plan, str(attempt), [py, driver, *remaining], module_timeout)
        run.run(left, window)
        res = run.result()
        res["argv"] = [*res["argv"][:2], f"<{len(remaining)} modules>"]
        steps.append(res)
        results.extend(run.results)
        if res["status"] == "timeout":
            status = "timeout"
        attempted = {r["name"] for r in run.results}
        if run.current is not None:  # the interpreter died inside this module
            name = run.current[0]
            results.append(
                {"name": name, "status": "error", "duration": 0, "detail": "interpreter exited during import"}
            )
            attempted.add(name)
        if run.done or not attempted:
            break
        idx = max(remaining.index(n) for n in attempted if n in remaining)
        remaining = remaining[idx + 1 :]
        attempt += 1
    if status == "ok":
        results, more = _import_rounds(plan, modules, results, end, window)
        steps += more
    return {
        "phase": "import",
        "status": status,
        "steps": steps,
        "modules": results,
        "modules_capped": inv.get("modules_capped", 0),
    }


def _import_rounds(
    plan: dict[str, Any], modules: list[str], results: list[dict[str, Any]], end: float, window: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Modules that failed on a module nobody installed: a round (the host stages the
    distribution providing it, a harness pip step installs it), then they import again."""
    rnd = run_rounds()
    own = {m.split(".")[0] for m in modules}
    steps: list[dict[str, Any]] = []
    py = f"{plan['venv']}/bin/python"
    while rnd.available() and end - time.monotonic() > 1:
        missing = {
            r["name"]: rounds.missing_module(str(r.get("detail", "")))
            for r in results
            if r["status"] == "error"
        }
        wanted = sorted({m for m in missing.values() if m and m not in own})
        if not wanted:
            break
        reason = next(str(r["detail"]) for r in results if missing.get(r["name"]) in wanted)
        answer = rnd.ask("import", wanted, [], reason)
        names = [str(n) for n in (answer or {}).get("install") or []]
        if not names:
            break
        pip_step = StepRun(plan, "import", f"round{rnd.used}-pip", _pip_install(plan, names))
        steps.append(pip_step.run(max(1.0, end - time.monotonic()), window).result())
        retry = [n for n, m in missing.items() if m in wanted]
        emit("status", phase="import", msg=f"round {rnd.used}: importing {len(retry)} modules again")
        run = ImportRun(
            plan,
            f"r{rnd.used}",
            [py, str(RUN_DIR / "pkgsandbox_import.py"), *retry],
            float(plan.get("module_timeout", 30)),
        )
        run.run(max(1.0, end - time.monotonic()), window)
        res = run.result()
        res["argv"] = [*res["argv"][:2], f"<{len(retry)} modules>"]
        steps.append(res)
        again = {r["name"]: r for r in run.results}
        if run.current is not None:
            again[run.current[0]] = {
                "name": run.current[0],
                "status": "error",
                "duration": 0,
                "detail": "interpreter exited during import",
            }
        results = [again.get(r["name"], r) if r["name"] in retry else r for r in results]
    return results, steps


def entry_point_scripts(text: str) -> list[str]:
    """Names of console_scripts and gui_scripts in an entry_points.txt."""
    names, section = [], ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif "=" in line and section in ("console_scripts", "gui_scripts"):
            name = line.split("=", 1)[0].strip()
            if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
                names.append(name)
    return names


def phase_execute(plan: dict[str, Any], timeout: float, window: float) -> dict[str, Any]:
    """Run each console/gui script with --help and --version, then call the public
    functions and classes of the candidate's modules with mock arguments."""
    inv_path = OUT / "inventory.json"
    inv = json.loads(inv_path.read_text()) if inv_path.exists() else {}
    venv = plan["venv"]
    per_call = float(plan.get("call_timeout", 10))
    end = time.monotonic() + timeout
    steps: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    status = "ok"
    for name in entry_point_scripts(inv.get("entry_points", ""))[:50]:
        for flag in ("--help", "--version"):
            left = end - time.monotonic()
            if left <= 0:
                status = "timeout"
                break
            emit("status", phase="execute", msg=f"{name} {flag}")
            tag = "script-" + re.sub(r"[^A-Za-z0-9._-]", "_", name) + flag
            t0 = time.time()
            step = StepRun(plan, "execute", tag, [f"{venv}/bin/{name}", flag])
            res = step.run(min(left, per_call * 3), window).result()
            res["context"] = f"entry point {name} {flag}"
            steps.append(res)
            calls.append(
                {
                    "name": f"entry point {name} {flag}",
                    "status": "timeout" if res["status"] == "timeout" else "ok",
                    "duration": round(time.time() - t0, 3),
                    "detail": f"exit {res['exit_code']}",
                    "t0": t0,
                    "t1": time.time(),
                }
            )
            if res["status"] == "timeout":
                status = "timeout"
    modules = [m for m in (inv.get("modules") or []) if not any(p.startswith("_") for p in m.split("."))][
        :300
    ]
    remaining = modules
    attempt = 0
    py = f"{venv}/bin/python"
    while remaining and status != "timeout":
        left = end - time.monotonic()
        if left <= 0 or attempt >= 25:
            status = "timeout"
            break
        emit("status", phase="execute", msg=f"calling public functions of {len(remaining)} modules")
        run = ImportRun(
            plan,
            f"calls-{attempt}",
            [py, str(RUN_DIR / "pkgsandbox_call.py"), str(per_call), *remaining],
            per_call + 5,
            phase="execute",
        )
        run.run(left, window)
        res = run.result()
        res["argv"] = [*res["argv"][:3], f"<{len(remaining)} modules>"]
        res["context"] = ""
        steps.append(res)
        calls.extend(run.results)
        if res["status"] == "timeout":
            status = "timeout"
        if run.done or not run.results:
            break
        last_module = run.results[-1]["name"].rsplit(".", 1)[0]
        idx = remaining.index(last_module) if last_module in remaining else len(remaining) - 1
        remaining = remaining[idx + 1 :]
        attempt += 1
    return {"phase": "execute", "status": status, "steps": steps, "modules": calls}


PHASES = {
    "install": phase_install,
    "startup": phase_startup,
    "import": phase_import,
    "execute": phase_execute,
}


def cmd_run(names: list[str]) -> int:
    """Run several phases in one exec (saves a round trip per phase); stops after a
    failed install. The plan is re-read: the host writes the candidate's part late.
    ``--pass NAME`` first: an extra pass (see :mod:`passes`) of startup and import."""
    pass_name = "default"
    if names[:1] == ["--pass"] and len(names) >= 2:
        pass_name, names = names[1], names[2:]
        if pass_name != "default" and not passes.pass_conf(load_plan(), pass_name):
            emit("error", msg=f"unknown pass {pass_name}")
            return EXIT_USAGE
        if set(names) - {"startup", "import"}:
            emit("error", msg="an extra pass re-runs startup and import only")
            return EXIT_USAGE
    installed = True
    for name in names:
        plan = load_plan()
        code = cmd_phase(plan, name, pass_name)
        if code != EXIT_OK:
            return code
        if name == "install":
            res = json.loads((OUT / "install.result.json").read_text())
            if res.get("status") != "ok":
                installed = False
                break
    if installed and pass_name == "default" and "import" in names:
        # The extra passes the plan asks for, after the default phases: each re-runs
        # startup and import when its trigger fired (or always).
        plan = load_plan()
        for extra in plan.get("passes") or {}:
            why = passes.should_run(plan, extra, OUT)
            if not why:
                continue
            for name in ("startup", "import"):
                code = cmd_phase({**load_plan(), "_why": why}, name, extra)
                if code != EXIT_OK:
                    return code
    emit("done")
    return EXIT_OK


def cmd_phase(plan: dict[str, Any], name: str, pass_name: str = "default") -> int:
    if name not in PHASES:
        emit("error", msg=f"unknown phase {name}")
        return EXIT_USAGE
    conf = plan["phases"].get(name) or plan["phases"].get("import") or {"timeout": 60}
    guard.become_subreaper()
    # NET_ADMIN was for setup's sinkhole rules only: nothing that runs in a phase keeps it.
    guard.drop_capabilities({guard.CAP_NET_ADMIN})
    extra = pass_name != "default"
    tag = f"{pass_name}:{name}" if extra else name
    with contextlib.suppress(OSError):
        sinkhole.PHASE_FILE.write_text(tag)  # the sinkhole tags what it captures with it
    if name != "install":
        patch_venv_bundles(plan)
    shift = float(passes.pass_conf(plan, pass_name).get("clock_shift") or 0)
    passes.set_clock(shift)  # the sinkhole's NTP and HTTP Date answers agree with the pass's clock
    started = time.time()
    emit("phase", phase=name, **({"pass": pass_name} if extra else {}))
    try:
        result = PHASES[name](
            {**plan, "_pass": pass_name}, float(conf["timeout"]), float(plan.get("window", 5.0))
        )
    except Exception as exc:
        emit("error", phase=name, msg=f"{type(exc).__name__}: {exc}")
        return EXIT_FAIL
    finally:
        passes.set_clock(0)
    if extra:
        result["pass"] = pass_name
        result["pass_note"] = str(plan.get("_why") or "")
    result["started"] = started
    result["duration"] = round(time.time() - started, 3)
    if plan.get("evidence"):
        try:
            site = site_packages(Path(plan["venv"]))
        except RuntimeError:
            site = None
        fsdiff.save(
            OUT, fsdiff.diff_and_keep(OUT, f"{pass_name}-{name}" if extra else name, fsdiff.load(OUT), site)
        )
    (OUT / f"{pass_name + '.' if extra else ''}{name}.result.json").write_text(json.dumps(result))
    emit("result", **result)
    return EXIT_OK


def cmd_collect() -> int:
    """Write a tar of the output directory to stdout (the host reads it from the exec stream).

    The sinkhole daemon is stopped first so that it writes the flows still open."""
    sinkhole.stop(out=OUT)
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as tar:
        for path in sorted(OUT.iterdir()):
            tar.add(path, arcname=path.name)
    sys.stdout.buffer.flush()
    return EXIT_OK


def cmd_probe(plan: dict[str, Any]) -> int:
    """Report what a process running exactly like the candidate sees (for doctor)."""
    code = (
        "import json,os,socket\n"
        "st={k:v.strip() for k,v in (l.split(':',1) for l in open('/proc/self/status') if ':' in l)}\n"
        "def can_write(p):\n"
        "    try:\n"
        "        f=open(p,'w'); f.close(); os.unlink(p); return True\n"
        "    except OSError: return False\n"
        "def rd(p):\n"
        "    try: return open(p).read().strip()\n"
        "    except OSError: return None\n"
        "def can_connect():\n"
        "    s=socket.socket(); s.settimeout(1)\n"
        "    try: s.connect(('192.0.2.1',80)); return True\n"
        "    except OSError as e: return str(e)\n"
        "r={'uid':os.getuid(),'gid':os.getgid(),'groups':os.getgroups(),"
        "'CapEff':st.get('CapEff'),'CapPrm':st.get('CapPrm'),'CapBnd':st.get('CapBnd'),"
        "'CapAmb':st.get('CapAmb'),'NoNewPrivs':st.get('NoNewPrivs'),'Seccomp':st.get('Seccomp'),"
        "'root_writable':can_write('/pkgsandbox-probe'),'home_writable':can_write(os.path.expanduser('~/.probe')),"
        "'connect':can_connect(),'ifaces':sorted(os.listdir('/sys/class/net')),"
        "'docker_sock':os.path.exists('/var/run/docker.sock'),'kill_init':None,"
        "'pids_max':rd('/sys/fs/cgroup/pids/pids.max'),"
        "'memory_limit':rd('/sys/fs/cgroup/memory/memory.limit_in_bytes'),"
        "'cpu_quota':rd('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'),'cpu_period':rd('/sys/fs/cgroup/cpu/cpu.cfs_period_us'),"
        "'etc_writable':can_write('/etc/pkgsandbox-probe'),'usr_writable':can_write('/usr/pkgsandbox-probe'),"
        "'dockerenv':os.path.exists('/.dockerenv'),'cgroup':open('/proc/self/cgroup').read()[:300]}\n"
        "try:\n    os.kill(1,0); r['kill_init']='allowed'\nexcept OSError as e: r['kill_init']=e.strerror\n"
        "print(json.dumps(r))\n"
    )
    argv = [*privilege_drop(plan), "python3", "-c", code]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=30,
        env=candidate_env(plan),
        cwd="/",
        preexec_fn=guard.recorder_preexec,
    )
    try:
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        emit("error", msg=f"probe failed: {proc.stderr.strip()[:300]}")
        return EXIT_FAIL
    emit("probe", **seen)
    return EXIT_OK


def cmd_tells(plan: dict[str, Any]) -> int:
    """Report what a process started exactly like a step (recorder in front, privilege
    drop, the candidate's environment and directory) reads about where it runs."""
    trace = OUT / "tells.strace"
    strace = [a.replace("{output}", str(trace)) for a in plan.get("strace", [])]
    argv = [*strace, *(["--"] if strace else []), *privilege_drop(plan), "python3", "-c", tells.PROBE]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        env=candidate_env(plan),
        cwd=plan["project"],
        preexec_fn=guard.recorder_preexec,
    )
    with contextlib.suppress(OSError):
        trace.unlink()
    try:
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        emit("error", msg=f"tells probe failed: {proc.stderr.strip()[:300]}")
        return EXIT_FAIL
    emit("tells", **seen)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        emit("error", msg="usage: agent {init SECONDS,setup,phase NAME,run PHASES,collect,probe,tells}")
        return EXIT_USAGE
    cmd = args[0]
    if cmd == "init" and len(args) == 2:
        return init.run(float(args[1]))
    if cmd == "collect":
        return cmd_collect()
    plan = load_plan()
    if cmd == "setup":
        return cmd_setup(plan)
    if cmd == "phase" and len(args) == 2:
        return cmd_phase(plan, args[1])
    if cmd == "run" and len(args) >= 2:
        return cmd_run(args[1:])
    if cmd == "probe":
        return cmd_probe(plan)
    if cmd == "tells":
        return cmd_tells(plan)
    emit("error", msg=f"unknown command {' '.join(args)}")
    return EXIT_USAGE
