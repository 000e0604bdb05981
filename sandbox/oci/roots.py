"""Root filesystems that look like a workstation's: btrfs snapshots on a loop volume.

Docker gives a container an overlay root whose mount options name
``/var/lib/docker/overlay2/<64-hex id>``: ``/proc/self/mounts`` shows it to anyone. The
runc wrapper (:mod:`sandbox.oci.wrapper`) points the container's root at a fresh btrfs
snapshot instead (O(1), copy-on-write), of a read-only template holding the image's
files. Inside, the root then reads as an openSUSE machine's::

    /dev/nvme0n1p2 / btrfs rw,relatime,ssd,discard=async,space_cache=v2,subvolid=343,
        subvol=/@/.snapshots/50/snapshot 0 0        (one line)

- The volume: a sparse file on a loop device, mounted at :data:`TOP` (its top level).
  ``doctor --provision`` makes it (:func:`setup`); after a reboot it attaches it again.
- The device name: btrfs prints the path the device was last *scanned* with, and since
  6.x resolves a path that is not under ``/dev``. A child chrooted into :data:`CHROOT`,
  where ``dev/nvme0n1p2`` is a node for the loop device, scans it under that name: the
  host's ``/dev`` never holds it. Any later scan by path (``btrfs device scan``) renames
  it back, live, so each create checks and scans again.
- Templates: one read-only subvolume per prefix of the image's layer chain, each a
  snapshot of the one below plus a layer (overlayfs's whiteouts and opaque directories
  applied): images sharing base layers share their extents, a rebuilt image costs its
  new layers. Built by the first create that needs it (under a lock); unused for a week,
  removed.
- Per container: ``@/.snapshots/N/snapshot``; runc bind-mounts it as the root (btrfs
  prints ``subvol=`` from the subvolume itself). Removed at ``delete``; a create also
  collects those of containers runc no longer knows (a killed shim, a reboot).

Standard library only (run by containerd-shim under the host's python3).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import time
from collections.abc import Callable

BASE = "/var/lib/pkgsandbox/roots"
# the volume's backing file: /sys/block/loopN/loop/backing_file shows its path to anyone
IMAGE = "/var/lib/vdisk/disk0.img"
TOP = BASE + "/top"  # the volume's top level (subvolid 5), mounted on the host only
STATE = BASE + "/state"  # one JSON per container id
CHROOT = BASE + "/chroot"  # holds dev/DEVNAME, never the host's /dev
DEVNAME = "nvme0n1p2"
MOUNT_OPTS = "ssd,discard=async,space_cache=v2"  # a laptop's NVMe btrfs root
SNAPSHOTS = TOP + "/@/.snapshots"
TEMPLATES = TOP + "/tpl"
GC_AGE = 120.0  # a state entry younger than this may be a create in progress
TEMPLATE_AGE = 7 * 86400.0  # a template unused this long is removed
MAX_SIZE = 64 << 30

_IOC_SCAN_DEV = 0x50009404  # _IOW(0x94, 4, struct btrfs_ioctl_vol_args)
_IOC_SUBVOL_CREATE = 0x5000940E
_IOC_SNAP_DESTROY = 0x5000940F
_IOC_SNAP_CREATE_V2 = 0x50009417  # _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2)
_IOC_SUBVOL_SETFLAGS = 0x4008941A
_SUBVOL_RDONLY = 1 << 1
_FIRST_INODE = 256  # a subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID)


# ------------------------------------------------------------------ btrfs ioctls
def _vol_args(name: str, fd: int = 0) -> bytearray:
    # mutable: fcntl.ioctl passes a bytearray of any size (bytes only up to 1 KiB)
    return bytearray(struct.pack("=q4088s", fd, name.encode()))


def _ioctl_at(parent: str, request: int, arg: bytearray | bytes) -> None:
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, request, arg)
    finally:
        os.close(fd)


def subvol_create(parent: str, name: str) -> None:
    """A new empty subvolume *parent*/*name*."""
    _ioctl_at(parent, _IOC_SUBVOL_CREATE, _vol_args(name))


def snapshot(src: str, parent: str, name: str) -> None:
    """A writable snapshot of subvolume *src* at *parent*/*name*."""
    sfd = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:  # vol_args_v2: fd, transid, flags, a 32-byte union, name[4040]
        _ioctl_at(
            parent, _IOC_SNAP_CREATE_V2, bytearray(struct.pack("=qQQ32s4040s", sfd, 0, 0, b"", name.encode()))
        )
    finally:
        os.close(sfd)


def make_readonly(path: str) -> None:
    """Mark subvolume *path* read-only (templates never change)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, _IOC_SUBVOL_SETFLAGS, struct.pack("=Q", _SUBVOL_RDONLY))
    finally:
        os.close(fd)


def subvol_delete(parent: str, name: str) -> None:
    """Delete *parent*/*name* and every subvolume below it: any user may create a
    subvolume where it can write (no capability needed), and the kernel refuses to
    delete one that holds another."""
    try:
        _ioctl_at(parent, _IOC_SNAP_DESTROY, _vol_args(name))
        return
    except OSError as exc:
        if exc.errno != errno.ENOTEMPTY:
            raise
    nested = []
    for dirpath, dirnames, _ in os.walk(os.path.join(parent, name)):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            with contextlib.suppress(OSError):
                if os.lstat(p).st_ino == _FIRST_INODE:
                    nested.append(p)
    for p in sorted(nested, key=lambda x: x.count("/"), reverse=True):  # deepest first
        _ioctl_at(os.path.dirname(p), _IOC_SNAP_DESTROY, _vol_args(os.path.basename(p)))
    _ioctl_at(parent, _IOC_SNAP_DESTROY, _vol_args(name))


# --------------------------------------------------- the device's name (chroot)
def _in_chroot(fn: Callable[[], None]) -> None:
    """Run *fn* in a forked child chrooted to :data:`CHROOT` (fds opened before it
    stay usable)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chroot(CHROOT)
            fn()
            code = 0
        except BaseException as exc:  # the child must never return into the caller
            with contextlib.suppress(OSError):
                os.write(2, f"roots: {exc!r}\n".encode())
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError("a chrooted step failed")


def _scan_as_neutral_name() -> None:
    cfd = os.open("/dev/btrfs-control", os.O_RDWR | os.O_CLOEXEC)

    def child() -> None:
        fcntl.ioctl(cfd, _IOC_SCAN_DEV, _vol_args(f"/dev/{DEVNAME}"))

    try:
        _in_chroot(child)
    finally:
        os.close(cfd)


def _mount_top() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    tfd = os.open(TOP, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def child() -> None:
        os.fchdir(tfd)  # the target lies outside the chroot: mount on "."
        if libc.mount(f"/dev/{DEVNAME}".encode(), b".", b"btrfs", 0, MOUNT_OPTS.encode()) != 0:
            raise OSError(ctypes.get_errno(), "mount")

    try:
        _in_chroot(child)
    finally:
        os.close(tfd)


def mount_rows(text: str | None = None) -> list[tuple[str, str, str, str, str]]:
    """(root, mount point, fs type, source, super options) of each mount in *text*
    (``/proc/self/mountinfo``'s by default)."""
    if text is None:
        with open("/proc/self/mountinfo") as fh:
            text = fh.read()
    out = []
    for line in text.splitlines():
        pre, _, post = line.partition(" - ")
        f, g = pre.split(" "), post.split(" ")
        if len(f) >= 5 and len(g) >= 3:
            dec = [
                s.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
                for s in (f[3], f[4], g[1])
            ]
            out.append((dec[0], dec[1], g[0], dec[2], g[2]))
    return out


def ready() -> bool:
    """The volume is mounted at :data:`TOP` (under its neutral name: scanned again if a
    scan by path renamed it)."""
    mine = [m for m in mount_rows() if m[1] == TOP and m[2] == "btrfs"]
    if not mine:
        return False
    if mine[-1][3] != f"/dev/{DEVNAME}":
        _scan_as_neutral_name()
    return True


# -------------------------------------------------------------------- templates
def layer_chain(rootfs: str, mountinfo: str | None = None) -> list[str] | None:
    """The image's layers (diff directories, bottom first) under Docker's overlay root
    *rootfs*, without the container's own ``-init`` layer (``/.dockerenv``, empty
    ``/etc/hosts``); None when *rootfs* is not an overlay mount."""
    for _root, target, fstype, _src, opts in reversed(mount_rows(mountinfo)):
        if target == rootfs and fstype == "overlay":
            found = dict(o.partition("=")[::2] for o in opts.split(","))
            lower = found.get("lowerdir", "").split(":")  # top first; maybe relative l/<short> links
            base = os.path.dirname(os.path.dirname(rootfs))  # .../overlay2
            return [os.path.realpath(os.path.join(base, p)) for p in reversed(lower[1:])]
    return None


# how templates are made: a change rebuilds them (the key holds it)
TEMPLATE_FORMAT = "2"


def _key(chain: list[str]) -> str:
    return hashlib.sha256("\n".join([TEMPLATE_FORMAT, *chain]).encode()).hexdigest()[:16]


def _rm(path: str) -> None:
    if stat.S_ISDIR(os.lstat(path).st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def apply_layer(diff: str, dst: str) -> None:
    """Apply one overlay2 layer (its diff directory) onto the tree *dst* as overlayfs
    shows it: a 0:0 character device deletes (a whiteout), a directory marked
    ``trusted.overlay.opaque=y`` replaces the one below whole."""
    whiteouts, opaques = [], []
    for dirpath, dirnames, filenames in os.walk(diff):
        tdir = os.path.join(dst, os.path.relpath(dirpath, diff))
        for name in dirnames + filenames:
            src, tgt = os.path.join(dirpath, name), os.path.normpath(os.path.join(tdir, name))
            st = os.lstat(src)
            try:
                tst: os.stat_result | None = os.lstat(tgt)
            except FileNotFoundError:
                tst = None
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                whiteouts.append(tgt)
                if tst:
                    _rm(tgt)
            elif stat.S_ISDIR(st.st_mode):
                try:
                    opaque = os.getxattr(src, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
                except OSError:
                    opaque = False
                if opaque:
                    opaques.append(tgt)
                if tst and (opaque or not stat.S_ISDIR(tst.st_mode)):
                    _rm(tgt)
            elif tst and stat.S_ISDIR(tst.st_mode):
                _rm(tgt)
    # cp -a keeps owners, modes, times, hard links and xattrs (file capabilities); a
    # replaced file is unlinked first, never written through a link it shares
    subprocess.run(["cp", "-a", "--remove-destination", "--reflink=auto", diff + "/.", dst], check=True)
    for w in whiteouts:
        os.unlink(w)
    for o in opaques:
        os.removexattr(o, "trusted.overlay.opaque", follow_symlinks=False)


def _as_installed(root: str) -> None:
    """What Docker's per-container layer adds and an installed system has: the
    ``/etc/mtab`` link (an image may lack it)."""
    mtab = os.path.join(root, "etc/mtab")
    if os.path.isdir(os.path.join(root, "etc")) and not os.path.lexists(mtab):
        os.symlink("../proc/self/mounts", mtab)


def ensure_template(rootfs: str) -> str:
    """The read-only template subvolume of the image under *rootfs* (built if missing)."""
    chain = layer_chain(rootfs)
    if not chain:
        raise OSError(f"{rootfs} is not an overlay root")
    keys = [_key(chain[: k + 1]) for k in range(len(chain))]
    tpl = f"{TEMPLATES}/{keys[-1]}"
    with open(f"{TEMPLATES}/.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isdir(tpl):
            have = max(
                (k + 1 for k in range(len(keys)) if os.path.isdir(f"{TEMPLATES}/{keys[k]}")), default=0
            )
            work = f"work-{os.getpid()}"
            if have:
                snapshot(f"{TEMPLATES}/{keys[have - 1]}", TEMPLATES, work)
            else:
                subvol_create(TEMPLATES, work)
            for k in range(have, len(chain)):
                apply_layer(chain[k], f"{TEMPLATES}/{work}")
                if k == len(chain) - 1:
                    _as_installed(f"{TEMPLATES}/{work}")
                snapshot(f"{TEMPLATES}/{work}", TEMPLATES, f"tmp-{keys[k]}")
                make_readonly(f"{TEMPLATES}/tmp-{keys[k]}")
                os.rename(f"{TEMPLATES}/tmp-{keys[k]}", f"{TEMPLATES}/{keys[k]}")
            subvol_delete(TEMPLATES, work)
        for key in keys:  # in use: kept from the week-old sweep
            with open(f"{TEMPLATES}/{key}.used", "w"):
                pass
    return tpl


# ------------------------------------------------------------------ per container
def _next_number() -> int:
    """A free snapshot number, drawn at random (a counter would tell a candidate how
    many sandboxes ran before it); the directory is made here, claiming it."""
    import random

    for _ in range(1000):
        n = random.randint(2, 400 + len(os.listdir(SNAPSHOTS)))
        try:
            os.mkdir(f"{SNAPSHOTS}/{n}")
            return n
        except FileExistsError:
            continue
    raise OSError("no free snapshot number")


def new_root(container_id: str, rootfs: str, runc_root: str) -> str:
    """A fresh snapshot of the image's template for *container_id*; returns its path."""
    tpl = ensure_template(rootfs)
    n = _next_number()
    os.makedirs(STATE, mode=0o700, exist_ok=True)
    entry = {"n": n, "runc_root": runc_root, "created": time.time()}
    with open(f"{STATE}/{container_id}", "w") as fh:  # first: a crash leaves gc a trail
        json.dump(entry, fh)
    snapshot(tpl, f"{SNAPSHOTS}/{n}", "snapshot")
    return f"{SNAPSHOTS}/{n}/snapshot"


def remove(container_id: str) -> None:
    """Remove *container_id*'s snapshot and state (nothing to do for another's)."""
    try:
        with open(f"{STATE}/{container_id}") as fh:
            n = int(json.load(fh)["n"])
    except (OSError, ValueError, KeyError):
        return
    d = f"{SNAPSHOTS}/{n}"
    if os.path.lexists(d + "/snapshot"):
        subvol_delete(d, "snapshot")
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(d)
    os.unlink(f"{STATE}/{container_id}")


def gc(now: float | None = None) -> None:
    """Remove the snapshots of containers runc no longer knows, half-built and unused
    templates, and numbered directories no state entry claims."""
    now = time.time() if now is None else now
    claimed = set()
    for cid in os.listdir(STATE) if os.path.isdir(STATE) else []:
        try:
            with open(f"{STATE}/{cid}") as fh:
                entry = json.load(fh)
            if now - float(entry["created"]) < GC_AGE or os.path.exists(
                f"{entry['runc_root']}/{cid}/state.json"
            ):
                claimed.add(str(entry["n"]))
                continue
            remove(cid)
        except (OSError, ValueError, KeyError):
            continue
    if os.path.isdir(SNAPSHOTS):
        for n in os.listdir(SNAPSHOTS):
            d = f"{SNAPSHOTS}/{n}"
            with contextlib.suppress(OSError):
                if n.isdigit() and n not in claimed and now - os.stat(d).st_mtime > GC_AGE:
                    if os.path.lexists(d + "/snapshot"):
                        subvol_delete(d, "snapshot")
                    os.rmdir(d)
    if os.path.isdir(TEMPLATES):
        with open(f"{TEMPLATES}/.lock", "a") as lock:
            try:  # a build in progress: its half-built subvolumes are not leftovers
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            for name in os.listdir(TEMPLATES):
                path = f"{TEMPLATES}/{name}"
                with contextlib.suppress(OSError):
                    if name.startswith(("work-", "tmp-")):
                        subvol_delete(TEMPLATES, name)
                    elif len(name) == 16 and now - os.stat(path + ".used").st_mtime > TEMPLATE_AGE:
                        subvol_delete(TEMPLATES, name)
                        os.unlink(path + ".used")


# ------------------------------------------------------------------ the volume
def setup(log: Callable[[str], None] = lambda m: None) -> None:
    """Make (or attach again) the volume and mount it at :data:`TOP`. Root only; needs
    btrfs in the kernel and ``mkfs.btrfs`` (btrfs-progs) for a new volume."""
    if ready():
        return
    for d in (BASE, TOP, CHROOT + "/dev", os.path.dirname(IMAGE)):
        os.makedirs(d, mode=0o700, exist_ok=True)
    # two vets after a reboot would attach the image twice and mount it twice
    with open(f"{BASE}/.setup.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready():
            _setup_locked(log)


def _setup_locked(log: Callable[[str], None]) -> None:
    if not os.path.exists(IMAGE):
        free = shutil.disk_usage(os.path.dirname(IMAGE)).free
        size = min(MAX_SIZE, int(free * 0.5)) >> 30 << 30
        if size < 4 << 30:
            raise OSError(f"{size >> 30} GiB free for the root volume: 4 needed")
        with open(IMAGE + ".tmp", "wb") as fh:
            fh.truncate(size)  # sparse
        subprocess.run(["mkfs.btrfs", "-q", "-L", "root", IMAGE + ".tmp"], check=True, capture_output=True)
        os.replace(IMAGE + ".tmp", IMAGE)
        log(f"made a {size >> 30} GiB btrfs volume at {IMAGE}")
    loop = (
        _loop_of(IMAGE)
        or subprocess.run(
            ["losetup", "--find", "--show", IMAGE], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    rdev = os.stat(loop).st_rdev
    node = f"{CHROOT}/dev/{DEVNAME}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(node)
    os.mknod(node, 0o600 | stat.S_IFBLK, rdev)
    _scan_as_neutral_name()
    _mount_top()
    for sub in ("@", "tpl"):
        if not os.path.isdir(f"{TOP}/{sub}"):
            subvol_create(TOP, sub)
    os.makedirs(SNAPSHOTS, exist_ok=True)
    log(f"root volume mounted at {TOP} ({loop} as /dev/{DEVNAME})")


def _loop_of(image: str) -> str | None:
    out = subprocess.run(["losetup", "-j", image], capture_output=True, text=True).stdout
    return out.split(":", 1)[0] if out.strip() else None
