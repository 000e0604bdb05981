#!/usr/bin/python3 -IS
"""runc, with the container made to look like a workstation from inside.

containerd-shim runs this as it would run runc (registered with dockerd as
``pkgsandbox-runc`` by ``pkgsandbox doctor --provision``, which installs a copy of this
file). Standard library only: it runs under the host's ``/usr/bin/python3``, not the
project's venv. Every command but ``create``, ``exec`` and ``delete`` is runc's as is.

- ``create``: the engine's bind mounts of its own ``/etc/hosts``, ``/etc/hostname`` and
  ``/etc/resolv.conf`` (their host paths name the engine in ``/proc/self/mountinfo``)
  are dropped from the bundle's ``config.json`` and their content written into the
  root filesystem instead. After runc has made the container's first process (held
  until ``start``), it is moved into an ``init.scope`` cgroup below the container's,
  and a ``user.slice/user-1000.slice/session-N.scope`` is made beside it: inside the
  container's cgroup namespace ``/proc/1/cgroup`` then reads as on a systemd machine
  rather than ``/`` (a namespace root, which only a container shows).
- ``exec``: the process starts in that session scope (runc's ``--cgroup``), so the
  agent and the candidate below it read a login session's cgroup.
- The root: a btrfs snapshot of the image (:mod:`sandbox.oci.roots`) where the volume
  is mounted, so that ``/proc/self/mounts`` shows a workstation's root, not Docker's
  overlay with its ``/var/lib/docker`` layer paths.
- ``delete``: the state this wrapper kept is removed with the container, its root too.

A step that fails leaves the container as runc made it (a tell, never a broken run).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

RUNC_PATHS = ("/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc")
STATE_DIR = "/run/pkgsandbox-oci"
NETWORK_FILES = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
INIT_SCOPE = "init.scope"
# runc's global options that take a value (the command is the first other word)
_GLOBAL_VALUES = {"--root", "--log", "--log-format", "--criu", "--rootless"}


def runc() -> str:
    """The real runc."""
    return next((p for p in RUNC_PATHS if os.access(p, os.X_OK)), "runc")


def split_argv(argv: list[str]) -> tuple[list[str], str, list[str]]:
    """runc's argv (without argv[0]) as (global options, command, the command's args)."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        opt = argv[i]
        i += 2 if opt in _GLOBAL_VALUES else 1
    if i >= len(argv):
        return argv, "", []
    return argv[:i], argv[i], argv[i + 1 :]


def option(args: list[str], *names: str) -> str | None:
    """The value of a command option (``--bundle X`` or ``--bundle=X``), or None."""
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg[len(name) + 1 :]
    return None


def session_scope(container_id: str) -> str:
    """The login session cgroup the container's execs run in (a number per container)."""
    digits = "".join(c for c in container_id[:8] if c in "0123456789abcdef") or "0"
    return f"user.slice/user-1000.slice/session-{2 + int(digits, 16) % 7}.scope"


def drop_network_binds(config: dict[str, object]) -> dict[str, str]:
    """Remove the engine's network-file bind mounts from *config* (in place); returns
    {destination: host source} for the files to write into the root instead."""
    mounts = config.get("mounts")
    if not isinstance(mounts, list):
        return {}
    kept, files = [], {}
    for m in mounts:
        dest = m.get("destination") if isinstance(m, dict) else None
        if dest in NETWORK_FILES and m.get("type", "bind") == "bind" and isinstance(m.get("source"), str):
            files[dest] = m["source"]
        else:
            kept.append(m)
    config["mounts"] = kept
    return files


def cgroup_dirs(pid: int, cgroup_text: str, mountinfo: str) -> list[str]:
    """The host directories of process *pid*'s cgroup in every hierarchy (v1 and v2),
    from its ``/proc/PID/cgroup`` and the host's ``/proc/self/mountinfo``."""
    unified: str | None = None
    v1: list[tuple[set[str], str]] = []  # (super options, mount point) of each v1 hierarchy
    for line in mountinfo.splitlines():
        pre, _, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if len(fields) < 5 or len(tail) < 3 or fields[3] != "/":
            continue  # a hierarchy's root only (not a container's view of a part of it)
        if tail[0] == "cgroup2" and unified is None:
            unified = fields[4]
        elif tail[0] == "cgroup":
            v1.append((set(tail[2].split(",")), fields[4]))
    out = []
    for line in cgroup_text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        # a v1 line names its controllers ("cpu,cpuacct", "name=systemd"): the mount
        # whose options hold them all; the v2 line ("0::/path") names none
        want = set(parts[1].split(",")) if parts[1] else set()
        base = next((m for opts, m in v1 if want <= opts), None) if want else unified
        if base is not None:
            out.append(os.path.join(base, parts[2].lstrip("/")).rstrip("/"))
    return out


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def make_cgroup(base: str, sub: str) -> str:
    """mkdir -p *sub* below *base*; a v1 cpuset level gets its parent's cpus and mems
    (an empty cpuset takes no task)."""
    path = base
    for part in sub.split("/"):
        parent, path = path, os.path.join(path, part)
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        for name in ("cpuset.cpus", "cpuset.mems"):
            if os.path.exists(os.path.join(parent, name)):
                with open(os.path.join(parent, name)) as fh:
                    _write(os.path.join(path, name), fh.read().strip() or "\n")
    return path


def place(pid: int, container_id: str) -> None:
    """Move the container's first process to ``init.scope``; make the session scope."""
    with open(f"/proc/{pid}/cgroup") as fh:
        cg = fh.read()
    with open("/proc/self/mountinfo") as fh:
        mi = fh.read()
    dirs = cgroup_dirs(pid, cg, mi)
    if not dirs:
        raise OSError("no cgroup directories found")
    for base in dirs:
        make_cgroup(base, session_scope(container_id))
        _write(os.path.join(make_cgroup(base, INIT_SCOPE), "cgroup.procs"), str(pid))


def write_root_files(rootfs: str, files: dict[str, str]) -> None:
    """Each engine file's content at its destination in *rootfs* (never through a link)."""
    for dest, source in files.items():
        with open(source, "rb") as fh:
            data = fh.read()
        target = os.path.join(rootfs, dest.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def _log(msg: str) -> None:
    sys.stderr.write(f"pkgsandbox-runc: {msg}\n")


def _roots() -> Any:
    """:mod:`sandbox.oci.roots`: the package's, or (the installed copy, run by the
    host's python3 without the project) the file beside this one."""
    if __package__:
        from . import roots

        return roots
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.realpath(__file__)), "roots.py")
    spec = importlib.util.spec_from_file_location("pkgsandbox_roots", path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _new_root(container_id: str, rootfs: str, runc_root: str) -> str | None:
    """A btrfs snapshot root for the container (:mod:`sandbox.oci.roots`), or None
    where there is no volume or it fails (the engine's overlay root then stays)."""
    try:
        roots = _roots()
        if not roots.ready():
            return None
        roots.gc()
        return str(roots.new_root(container_id, rootfs, runc_root))
    except Exception as exc:  # any failure: the run goes on with the engine's root
        _log(f"overlay root kept: {exc!r}")
        with contextlib.suppress(Exception):
            _roots().remove(container_id)
        return None


def create(glob: list[str], args: list[str]) -> int:
    """Rewrite the bundle, run ``runc create``, then place its process."""
    import subprocess

    bundle = option(args, "--bundle", "-b") or "."
    container_id = args[-1] if args else ""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as fh:
            config = json.load(fh)
        files = drop_network_binds(config)
        root = os.path.join(bundle, config.get("root", {}).get("path", "rootfs"))
        snap = _new_root(container_id, root, option(glob, "--root") or "/run/runc") if container_id else None
        if snap is not None:
            config["root"]["path"] = root = snap
        write_root_files(root, files)
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(config, fh)
        os.replace(tmp, path)
    except (OSError, ValueError, AttributeError) as exc:
        _log(f"config left as is: {exc}")
    code = subprocess.call([runc(), *glob, "create", *args])
    pid_file = option(args, "--pid-file")
    if code == 0 and pid_file and container_id:
        try:
            with open(pid_file) as fh:
                place(int(fh.read().strip()), container_id)
            os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
            with open(os.path.join(STATE_DIR, container_id), "w") as fh:
                fh.write(session_scope(container_id))
        except (OSError, ValueError) as exc:
            _log(f"cgroups left as is: {exc}")
    return code


def main(argv: list[str]) -> int:
    """Dispatch one runc invocation."""
    glob, command, args = split_argv(argv)
    if command == "create":
        return create(glob, args)
    if command == "exec" and args:
        try:
            with open(os.path.join(STATE_DIR, args[-1])) as fh:
                args = ["--cgroup", fh.read().strip(), *args]
        except OSError:
            pass
    elif command == "delete" and args:
        import subprocess

        code = subprocess.call([runc(), *argv])
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(STATE_DIR, args[-1]))
        try:
            _roots().remove(args[-1])
        except Exception as exc:  # the next create's gc tries again
            _log(f"root not removed yet: {exc!r}")
        return code
    os.execv(runc(), [runc(), *glob, command, *args] if command else [runc(), *argv])
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
