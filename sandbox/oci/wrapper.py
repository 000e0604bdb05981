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


# Where systemd puts a unit in each cgroup v1 hierarchy (a hybrid host's
# /proc/PID/cgroup): the full path in its own hierarchy, the unified one and the
# controllers it accounts by default; its slice in cpu, cpuacct, blkio and devices
# (a service: its own path there too); the root in every other (cpuset, freezer,
# net_cls, perf_event, hugetlb, rdma …). "" is the unified (v2) hierarchy.
_FULL = frozenset({"name=systemd", "", "memory", "pids"})
_SLICE = frozenset({"cpu", "cpuacct", "blkio", "devices"})


def unit_path(controllers: frozenset[str], path: str, service: bool = False) -> str | None:
    """The cgroup (below the namespace root) a unit at *path* shows in a hierarchy of
    *controllers*; None: the root."""
    if controllers & _FULL or (service and controllers & _SLICE):
        return path
    if controllers & _SLICE:
        return path.split("/", 1)[0]
    return None


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


def cgroup_dirs(container_id: str, cgroup_text: str, mountinfo: str) -> list[tuple[frozenset[str], str]]:
    """(controllers, host directory) of a container process's cgroup in every hierarchy
    (v1 and v2), from its ``/proc/PID/cgroup`` and the host's ``/proc/self/mountinfo``.
    Only hierarchies that place it in the container's own cgroup (its path names the
    container): a line runc did not set (a hybrid host's unified one can name
    containerd's service) is another's cgroup, never touched."""
    unified: str | None = None
    v1: list[tuple[set[str], str]] = []  # (super options, mount point) of each v1 hierarchy
    for root, target, fstype, _source, opts in _roots().mount_rows(mountinfo):
        if root != "/":
            continue  # a hierarchy's root only (not a container's view of a part of it)
        if fstype == "cgroup2" and unified is None:
            unified = target
        elif fstype == "cgroup":
            v1.append((set(opts.split(",")), target))
    out = []
    for line in cgroup_text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or not container_id or container_id not in parts[2]:
            continue
        # a v1 line names its controllers ("cpu,cpuacct", "name=systemd"): the mount
        # whose options hold them all; the v2 line ("0::/path") names none
        want = frozenset(parts[1].split(",")) if parts[1] else frozenset({""})
        base = next((m for opts, m in v1 if want <= opts), None) if parts[1] else unified
        if base is not None:
            out.append((want, os.path.join(base, parts[2].lstrip("/")).rstrip("/")))
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


def _dirs_of(pid: int, container_id: str) -> list[tuple[frozenset[str], str]]:
    with open(f"/proc/{pid}/cgroup") as fh:
        cg = fh.read()
    with open("/proc/self/mountinfo") as fh:
        mi = fh.read()
    return cgroup_dirs(container_id, cg, mi)


def place(pid: int, container_id: str) -> tuple[list[str], str]:
    """Move the container's first process to ``init.scope`` and make the session scope.
    Returns runc's ``exec --cgroup`` arguments that start a process in the session,
    and (cgroup v1 with a unified hierarchy beside it) the unified session's
    ``cgroup.procs``, which the shell front writes the exec'd pid to: runc 1.1 takes
    ``:path`` for every hierarchy not named, never for the unified one alone
    (measured), and leaves it at the root."""
    dirs = _dirs_of(pid, container_id)
    if not dirs:
        raise OSError("no cgroup directory of the container found")
    v1 = any(controllers != {""} for controllers, _ in dirs)
    args, unified = [], ""
    for controllers, base in dirs:
        session = unit_path(controllers, session_scope(container_id))
        if session is not None:
            target = make_cgroup(base, session)
            if controllers == {""} and v1:
                unified = os.path.join(target, "cgroup.procs")
            else:
                args += [f"{c}:{session}" for c in sorted(controllers)]
        elif v1:
            args += [f"{c}:." for c in sorted(controllers)]  # the container's own (its root)
        init = unit_path(controllers, INIT_SCOPE)
        if init is not None:
            _write(os.path.join(make_cgroup(base, init), "cgroup.procs"), str(pid))
    return args, unified


def place_services(pid: int, container_id: str, wait: float = 2.0) -> int:
    """Move the children PID 1 forks as it starts (the decoy daemons) from its
    ``init.scope`` to a ``system.slice/<name>.service`` each, as systemd runs services;
    waits up to *wait* seconds for them to appear. Returns how many moved."""
    import time

    # PID 1 is in init.scope by now: the container's own cgroup is its parent there
    dirs = [
        (c, d[: -len(INIT_SCOPE) - 1] if d.endswith("/" + INIT_SCOPE) else d)
        for c, d in _dirs_of(pid, container_id)
    ]
    moved: set[int] = set()
    end = time.monotonic() + wait
    while True:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as fh:
                children = [int(c) for c in fh.read().split()]
        except OSError:
            return len(moved)
        for child in children:
            if child in moved:
                continue
            try:
                with open(f"/proc/{child}/cmdline", "rb") as fh:
                    argv0 = fh.read().split(b"\0", 1)[0].split(b" ", 1)[0].decode("utf-8", "replace")
                with open(f"/proc/{child}/cgroup") as fh:
                    if INIT_SCOPE not in fh.read():
                        continue  # not a service (an agent command the engine placed)
            except OSError:
                continue
            name = os.path.basename(argv0).rstrip(":") or "unknown"
            unit = f"system.slice/{name}.service"
            for controllers, base in dirs:
                sub = unit_path(controllers, unit, service=True)
                if sub is not None:
                    with contextlib.suppress(OSError):  # gone meanwhile
                        _write(os.path.join(make_cgroup(base, sub), "cgroup.procs"), str(child))
            moved.add(child)
        if time.monotonic() > end:
            return len(moved)
        time.sleep(0.1)


def write_root_files(rootfs: str, files: dict[str, str]) -> None:
    """Each engine file's content at its destination in *rootfs*, never through a link
    (in any component: the image's content decides what lies there)."""
    for dest, source in files.items():
        with open(source, "rb") as fh:
            data = fh.read()
        parts = [p for p in dest.split("/") if p]
        fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts[:-1]:  # each directory opened below the last, never followed
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                os.close(fd)
                fd = nxt
            out = os.open(
                parts[-1],
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
                dir_fd=fd,
            )
            try:
                os.write(out, data)
            finally:
                os.close(out)
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
                pid = int(fh.read().strip())
            cgroups, unified = place(pid, container_id)
            os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
            # read by the shell front (runc-wrapper.sh) at every exec: the pid, runc's
            # --cgroup arguments (no spaces), the unified session's cgroup.procs or ""
            with open(os.path.join(STATE_DIR, container_id), "w") as fh:
                fh.write(f"{pid}\n{' '.join(cgroups)}\n{unified}\n")
        except (OSError, ValueError) as exc:
            _log(f"cgroups left as is: {exc}")
    return code


def delete(glob: list[str], args: list[str]) -> int:
    """``runc delete``, then this wrapper's state and the container's root; a delete
    runc refused keeps them (the container still exists). Collects leftovers after."""
    import subprocess

    container_id = args[-1] if args else ""
    code = subprocess.call([runc(), *glob, "delete", *args])
    runc_root = option(glob, "--root") or "/run/runc"
    if code != 0 and os.path.exists(os.path.join(runc_root, container_id, "state.json")):
        return code
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(STATE_DIR, container_id))
    try:
        roots = _roots()
        roots.remove(container_id)
        roots.gc()  # here, off a run's critical path (delete overlaps judging)
    except Exception as exc:  # the next delete's collection tries again
        _log(f"root not removed yet: {exc!r}")
    return code


def main(argv: list[str]) -> int:
    """Dispatch one runc invocation (create, delete; ``--services ID`` from the shell
    front after ``start``); anything else is runc's."""
    if argv[:1] == ["--services"] and len(argv) == 2:
        try:
            with open(os.path.join(STATE_DIR, argv[1])) as fh:
                pid = int(fh.readline())
            place_services(pid, argv[1])
        except (OSError, ValueError) as exc:
            _log(f"services left in init.scope: {exc!r}")
        return 0
    glob, command, args = split_argv(argv)
    if command == "create":
        return create(glob, args)
    if command == "delete" and args:
        return delete(glob, args)
    os.execv(runc(), [runc(), *argv])
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
