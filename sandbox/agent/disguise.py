"""The time pass's disguise: what a candidate interpreter reads of the sandbox's
tells, answered like a workstation (runs inside the sandbox only; standard library).

See :data:`DISGUISE`; :func:`disguise_config` draws the per-container values.
"""

from __future__ import annotations

from typing import Any

# The time pass is the one that wakes dormant code, so its interpreters also see no
# tell the kernel view still gives away (TracerPid under strace, overlay mounts, a
# cgroup namespace root, a handful of processes, veth MACs, a short uptime): open(),
# os.open() and os.listdir() answer those reads like a workstation would.  Python-level
# only, and a lie to the candidate: recording stays strace's (the real read is made,
# and recorded, first).  Native code and subprocesses still see the truth.
DISGUISE = r"""
def _dt_disguise():
    import builtins, io, os, re
    CFG = __CFG__
    own = re.compile(r"^/proc/(?:self|thread-self|\d+)(?:/task/\d+)?/")
    fake_pids = {str(p): c for p, c in CFG["procs"]}

    def status(text):
        return re.sub(r"(?m)^TracerPid:\s*\d+", "TracerPid:\t0", text)

    def touch(path):
        try:  # the candidate's read, made for real: the recorder sees what it asked
            with real_open(path, "rb") as fh:
                fh.read()
        except OSError:
            pass

    def content(path):
        if not isinstance(path, str) or not path.startswith(("/proc/", "/sys/class/net/")):
            return None
        m = own.match(path)
        rest = path[m.end():] if m else None
        if rest == "status":
            with real_open(path) as fh:
                return status(fh.read())
        if rest in ("mounts", "mountinfo") or path == "/proc/mounts":
            touch(path)
            return CFG["mountinfo"] if rest == "mountinfo" else CFG["mounts"]
        if rest == "cgroup":
            touch(path)
            return "0::/init.scope\n" if path.startswith("/proc/1/") else CFG["cgroup"]
        if path == "/proc/uptime":
            with real_open(path) as fh:
                up, idle = (float(x) for x in fh.read().split()[:2])
            return "%.2f %.2f\n" % (up + CFG["uptime"], idle + CFG["uptime"] * 1.7)
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "proc" and parts[2] in fake_pids:
            comm = fake_pids[parts[2]]
            touch(path)
            if parts[3] == "comm":
                return comm + "\n"
            if parts[3] == "cmdline":
                return comm + "\0"
            if parts[3] == "stat":
                return "%s (%s) S 1 %s %s 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0\n" % (
                    parts[2], comm, parts[2], parts[2])
        if len(parts) == 6 and parts[3] == "net" and parts[5] == "address" and parts[4] != "lo":
            touch(path)
            return CFG["macs"].get(parts[4], CFG["macs"]["*"]) + "\n"
        return None

    real_open, real_os_open, real_listdir = builtins.open, os.open, os.listdir

    def fake_open(file, mode="r", *args, **kwargs):
        if hasattr(file, "__fspath__"):
            file = os.fspath(file)
        if isinstance(file, str) and not any(c in mode for c in "wax+"):
            text = content(file)
            if text is not None:
                return io.BytesIO(text.encode()) if "b" in mode else io.StringIO(text)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, mode=0o777, *, dir_fd=None):
        if hasattr(path, "__fspath__"):
            path = os.fspath(path)
        if isinstance(path, str) and dir_fd is None and not flags & (os.O_WRONLY | os.O_RDWR):
            text = content(path)
            if text is not None and len(text) < 60000:
                r, w = os.pipe()
                os.write(w, text.encode())
                os.close(w)
                return r
        return real_os_open(path, flags, mode, dir_fd=dir_fd)

    def fake_listdir(path="."):
        names = real_listdir(path)
        if isinstance(path, str) and path.rstrip("/") == "/proc":
            names = names + [p for p in fake_pids if p not in names]
        return names

    builtins.open = io.open = fake_open
    os.open, os.listdir = fake_os_open, fake_listdir

try:
    _dt_disguise()
except Exception:
    pass
del _dt_disguise
"""

WORKSTATION_PROCS = (
    "systemd-journal",
    "systemd-udevd",
    "systemd-oomd",
    "systemd-resolve",
    "systemd-timesyn",
    "accounts-daemon",
    "avahi-daemon",
    "cron",
    "dbus-daemon",
    "NetworkManager",
    "irqbalance",
    "polkitd",
    "rsyslogd",
    "snapd",
    "switcheroo-cont",
    "systemd-logind",
    "udisksd",
    "wpa_supplicant",
    "ModemManager",
    "cupsd",
    "gdm3",
    "gnome-shell",
    "pipewire",
    "wireplumber",
    "pulseaudio",
    "gnome-terminal-",
    "bash",
    "Xwayland",
    "ibus-daemon",
    "evolution-sourc",
    "gvfsd",
    "tracker-miner-f",
    "code",
    "firefox",
    "Isolated Web Co",
    "ssh-agent",
    "gpg-agent",
    "kworker/0:1-events",
    "kthreadd",
)
# Vendor prefixes of common laptop and desktop NICs (globally administered).
NIC_OUIS = ("3c:52:82", "f8:75:a4", "d4:81:d7", "00:e0:4c", "8c:8c:aa", "a4:bb:6d", "54:e1:ad", "98:fa:9b")


def disguise_config(rng: Any = None) -> dict[str, Any]:
    """Per-container values of the disguise: process table, MACs, mounts, cgroup, uptime."""
    import random

    r = rng or random.SystemRandom()
    pids = sorted(r.sample(range(2, 9000), r.randrange(160, 260)))
    procs = [[p, r.choice(WORKSTATION_PROCS)] for p in pids]
    oui = r.choice(NIC_OUIS)
    macs = {
        n: oui + "".join(f":{r.randrange(256):02x}" for _ in range(3)) for n in ("*", "eth0", "eth1", "eth2")
    }
    root = r.choice(["/dev/nvme0n1p2", "/dev/nvme0n1p3", "/dev/sda2", "/dev/mapper/vgubuntu-root"])
    mounts = (
        f"{root} / ext4 rw,relatime,errors=remount-ro 0 0\n"
        "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"
        "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\n"
        "udev /dev devtmpfs rw,nosuid,relatime,mode=755,inode64 0 0\n"
        "devpts /dev/pts devpts rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=000 0 0\n"
        "tmpfs /run tmpfs rw,nosuid,nodev,noexec,relatime,mode=755,inode64 0 0\n"
        "tmpfs /dev/shm tmpfs rw,nosuid,nodev,inode64 0 0\n"
        "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0\n"
        f"{root[:-1]}1 /boot/efi vfat rw,relatime,fmask=0077,dmask=0077 0 0\n"
        "tmpfs /run/user/1000 tmpfs rw,nosuid,nodev,relatime,mode=700,uid=1000,gid=1000,inode64 0 0\n"
    )
    mountinfo = "".join(
        f"{24 + i} {1 if i == 0 else 24} 0:{21 + i} / {line.split()[1]} {line.split()[3]} shared:{i + 1}"
        f" - {line.split()[2]} {line.split()[0]} {line.split()[3]}\n"
        for i, line in enumerate(mounts.splitlines())
    )
    return {
        "procs": procs,
        "macs": macs,
        "mounts": mounts,
        "mountinfo": mountinfo,
        "cgroup": f"0::/user.slice/user-1000.slice/session-{r.randrange(2, 9)}.scope\n",
        "uptime": float(r.randrange(3 * 3600, 40 * 3600)),
    }


__all__ = ["DISGUISE", "NIC_OUIS", "WORKSTATION_PROCS", "disguise_config"]
