"""The container runtime a sandbox runs under: ``runc`` (Docker's default: namespaces
and seccomp on the host kernel) or ``runsc`` (gVisor: a user-space kernel between the
candidate and the host's), and registering ``runsc`` and runc's wrapper
(:mod:`sandbox.oci.wrapper`, which runc sandboxes start under when the engine has it)
with a running engine.

Registration edits ``/etc/docker/daemon.json`` (merged, never clobbered) and reloads
dockerd with SIGHUP: the engine re-reads its runtimes without stopping a container.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Literal

from sandbox.errors import EngineError
from sandbox.oci import roots as oci_roots
from sandbox.oci import wrapper as oci_wrapper

Runtime = Literal["runc", "runsc"]
RUNTIMES: tuple[Runtime, ...] = ("runc", "runsc")
RUNSC = "runsc"
RUNSC_PATH = "/usr/bin/runsc"
# runsc refuses a container without its own network in the root network namespace
# ("cannot run with network enabled in root network namespace"); the sandbox has none anyway.
RUNSC_ARGS = ("--network=none",)
DAEMON_JSON = Path("/etc/docker/daemon.json")
# runc behind sandbox.oci.wrapper (a workstation's view from inside), installed by
# `doctor --provision`; the name is the engine's, never seen inside a sandbox
WRAPPED = "pkgsandbox-runc"
WRAPPER_PATH = Path("/usr/local/lib/pkgsandbox/runc-wrapper")
DOCKER_PID = Path("/var/run/docker.pid")


def merge_runsc(config: dict[str, Any], path: str = RUNSC_PATH) -> dict[str, Any]:
    """*config* (a daemon.json document) with ``runsc`` registered: every other key and
    runtime kept; an existing ``runsc`` entry keeps its own arguments and gains
    ``--network=none`` if it lacks it."""
    out = dict(config)
    runtimes = dict(out.get("runtimes") or {})
    entry = dict(runtimes.get(RUNSC) or {})
    entry.setdefault("path", path)
    args = [str(a) for a in entry.get("runtimeArgs") or []]
    for arg in RUNSC_ARGS:
        if arg not in args and not any(a.startswith("--network") for a in args):
            args.append(arg)
    entry["runtimeArgs"] = args
    runtimes[RUNSC] = entry
    out["runtimes"] = runtimes
    return out


def merge_wrapper(config: dict[str, Any], path: str) -> dict[str, Any]:
    """*config* (a daemon.json document) with the wrapped runc (:mod:`sandbox.oci.wrapper`)
    registered as ``pkgsandbox-runc`` at *path*; everything else kept."""
    out = dict(config)
    runtimes = dict(out.get("runtimes") or {})
    runtimes[WRAPPED] = {**dict(runtimes.get(WRAPPED) or {}), "path": path}
    out["runtimes"] = runtimes
    return out


def write_daemon_json(path: Path = DAEMON_JSON, *, wrapper: str | None = None) -> bool:
    """Register ``runsc`` in *path* (and the wrapped runc at *wrapper*); returns whether
    the file changed. A file that is not a JSON object is left alone
    (:class:`EngineError`): dockerd would not start."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    try:
        current = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise EngineError(f"{path} is not valid JSON ({exc}); not touching it") from exc
    if not isinstance(current, dict):
        raise EngineError(f"{path} is not a JSON object; not touching it")
    merged = merge_wrapper(current, wrapper) if wrapper else merge_runsc(current)
    if merged == current:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".pkgsandbox.tmp")
    tmp.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    tmp.chmod(0o644)
    tmp.replace(path)  # atomic: dockerd never reads half a file
    return True


def dockerd_pid() -> int | None:
    """The running dockerd's pid: its pid file, else the one process named dockerd."""
    try:
        pid = int(DOCKER_PID.read_text().strip())
        if Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd":
            return pid
    except (OSError, ValueError):
        pass
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "dockerd":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found[0] if len(found) == 1 else None


def registered(client: Any, name: str) -> bool:
    """Whether the engine knows the runtime *name* (``runc`` always)."""
    if name == "runc":
        return True
    try:
        return name in (client.info().get("Runtimes") or {})
    except Exception:  # any engine failure means "not usable"
        return False


def register_runsc(client: Any, log: Any, *, config: Path = DAEMON_JSON, wait: float = 15.0) -> None:
    """Register ``runsc`` with the running engine: merge daemon.json, SIGHUP dockerd (a
    reload; never a restart: other runs keep their containers), wait until it shows."""
    _register(client, log, RUNSC, None, config, wait)


def register_wrapper(
    client: Any, log: Any, *, dest: Path = WRAPPER_PATH, config: Path = DAEMON_JSON, wait: float = 15.0
) -> None:
    """Install the wrapped runc at *dest* (a copy of :mod:`sandbox.oci.wrapper`, run by
    the host's python3) and register it with the running engine as ``pkgsandbox-runc``."""
    if install_wrapper(dest):
        log(f"installed the sandbox's runc wrapper at {dest}")
    _register(client, log, WRAPPED, str(dest), config, wait)


def _register(client: Any, log: Any, name: str, wrapper: str | None, config: Path, wait: float) -> None:
    if registered(client, name):
        log(f"{name} already registered with the engine")
        return
    if write_daemon_json(config, wrapper=wrapper):
        log(f"registered {name} in {config}")
    pid = dockerd_pid()
    if pid is None:
        raise EngineError(
            f"{name} is in daemon.json but dockerd's pid is unknown",
            advice="send dockerd SIGHUP yourself (`kill -HUP <pid>`) to load it",
        )
    os.kill(pid, signal.SIGHUP)
    log(f"reloaded dockerd (SIGHUP to pid {pid})")
    end = time.monotonic() + wait
    while time.monotonic() < end:
        if registered(client, name):
            return
        time.sleep(0.3)
    raise EngineError(
        f"dockerd did not load the {name} runtime after SIGHUP",
        advice=f"check {config} and dockerd's log",
    )


def _wrapper_files(dest: Path) -> dict[Path, bytes]:
    """{installed path: content as shipped}: the shell front dockerd runs and the two
    modules beside it."""
    here = Path(oci_wrapper.__file__).parent
    return {
        dest: (here / "runc-wrapper.sh").read_bytes(),
        dest.parent / "wrapper.py": Path(oci_wrapper.__file__).read_bytes(),
        dest.parent / "roots.py": Path(oci_roots.__file__).read_bytes(),
    }


def wrapper_current(dest: Path = WRAPPER_PATH) -> bool:
    """Whether the installed copy is this version's."""
    try:
        return all(path.read_bytes() == data for path, data in _wrapper_files(dest).items())
    except OSError:
        return False


def install_wrapper(dest: Path = WRAPPER_PATH) -> bool:
    """Write the wrapper to *dest* (mode 755, atomically; the module beside it) unless
    it is there already; returns whether it changed."""
    if wrapper_current(dest):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    for path, data in _wrapper_files(dest).items():
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.chmod(0o755 if path == dest else 0o644)
        tmp.replace(path)
    return True


def engine_runtime(client: Any, runtime: str, dest: Path = WRAPPER_PATH) -> str:
    """The engine runtime a sandbox of *runtime* starts under: runc's wrapper when the
    engine has it (its installed copy refreshed when this version's differs), else as
    asked. Without the wrapper a run works; the container only looks like one."""
    if runtime != "runc" or not registered(client, WRAPPED):
        return runtime
    try:
        install_wrapper(dest)
    except OSError:  # not ours to write (another user's engine): use it only if current
        if not wrapper_current(dest):
            return runtime
    if os.geteuid() == 0 and os.path.exists(oci_roots.IMAGE):
        # attached again after a reboot (the volume's loop device is gone then)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            oci_roots.setup()
    return WRAPPED


def require(client: Any, name: str) -> None:
    """Fail before any container starts when the engine lacks the runtime *name*."""
    if not registered(client, name):
        raise EngineError(
            f"the container engine has no {name} runtime",
            advice="run `pkgsandbox doctor --provision` as root: it installs Debian's runsc and "
            "registers it (dockerd reloaded, not restarted)",
        )
