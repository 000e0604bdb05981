"""PID 1 of the sandbox container: reaps orphans, enforces the deadline, looks like init.

Docker's own init (``docker-init -- sleep N``) is the first thing environment-aware
malware reads (``/proc/1/comm``, ``/proc/1/cmdline``). This one names itself like a
workstation's systemd: comm ``systemd`` (``prctl(PR_SET_NAME)``) and cmdline
``/sbin/init``, by rewriting its own argument area in place with the last byte left
non-NUL, the ``setproctitle`` convention under which the kernel returns the string
up to its first NUL. No privilege is needed for either; the candidate (another uid)
cannot read PID 1's environ, exe or memory, as on a real machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import time

COMM = b"systemd"
CMDLINE = b"/sbin/init"
PR_SET_NAME = 15
_SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def disguise(comm: bytes = COMM, cmdline: bytes = CMDLINE, fit: bool = False) -> bool:
    """Rename this process (comm and cmdline); False when the argument area is too small
    (with *fit*, the command line is cut to the area instead)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, comm, 0, 0, 0)
    with open("/proc/self/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); arg_start/arg_end are fields 48/49
    arg_start, arg_end = int(fields[45]), int(fields[46])
    if not arg_start:
        arg_start, arg_end = _argv_area(libc)
    size = arg_end - arg_start
    if fit and size >= 4:
        cmdline = cmdline[: size - 2]
    if size < len(cmdline) + 2:
        return False
    buf = cmdline + b"\0" + b" " * (size - len(cmdline) - 1)
    ctypes.memmove(arg_start, buf, size)
    return True


def _argv_area(libc: ctypes.CDLL) -> tuple[int, int]:
    """Where the argument strings are when /proc/self/stat does not say (gVisor prints
    0 for arg_start/arg_end): the kernel lays them out just before the environment
    strings, so they end where ``environ[0]`` begins. (0, 0) when that cannot hold."""
    with open("/proc/self/cmdline", "rb") as fh:
        raw = fh.read()
    environ = ctypes.POINTER(ctypes.c_void_p).in_dll(libc, "environ")
    first = environ[0] if environ else None
    if not first or not raw:
        return 0, 0
    start = first - len(raw)
    if ctypes.string_at(start, len(raw)) != raw:  # not laid out as expected: leave it
        return 0, 0
    return start, first


# Root daemons of a Debian/Ubuntu workstation (cmdline as ``ps`` shows it; comm is the
# kernel's: the executable's name cut to 15 bytes). A process count is the commonest
# sandbox check after PID 1's name; these idle children of init make it plausible.
# Root only: the candidate can neither signal nor trace them nor read their exe,
# environ or maps, as on a real machine, and the watch (candidate uid) never sees them.
DECOYS = (
    "/lib/systemd/systemd-journald",
    "/lib/systemd/systemd-udevd",
    "/lib/systemd/systemd-logind",
    "/usr/sbin/cron -f",
    "/usr/sbin/NetworkManager --no-daemon",
    "/sbin/wpa_supplicant -u -s -O /run/wpa_supplicant",
    "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups",
    "/usr/lib/polkit-1/polkitd --no-debug",
    "/usr/libexec/accounts-daemon",
    "/usr/libexec/udisks2/udisksd",
    "/usr/sbin/ModemManager",
    "/usr/sbin/cupsd -l",
    "/usr/sbin/cups-browsed",
    "/usr/sbin/thermald --systemd --dbus-enable --adaptive",
    "/usr/sbin/irqbalance --foreground",
    "/usr/lib/snapd/snapd",
    "/usr/sbin/gdm3",
    "gdm-session-worker [pam/gdm-password]",
    "/usr/libexec/power-profiles-daemon",
    "/usr/libexec/upowerd",
    "/usr/libexec/bluetooth/bluetoothd",
    "/usr/libexec/fwupd/fwupd",
    "/sbin/agetty -o -p -- \\u --noclear - linux",
    "/usr/sbin/rsyslogd -n -iNONE",
    "/usr/sbin/acpid",
    "/usr/libexec/switcheroo-control",
    "/usr/libexec/packagekitd",
    "/usr/libexec/boltd",
    "/usr/sbin/alsactl -E HOME=/run/alsa -s -n 19 -c rdaemon",
    "/usr/sbin/smartd -n",
    "/usr/libexec/iio-sensor-proxy",
    "/usr/sbin/kerneloops",
    "/usr/libexec/gnome-remote-desktop-daemon --system",
    "/usr/sbin/cupsd -C /etc/cups/cupsd.conf",
)
_COMM_FOR = {"sshd:": "sshd", "gdm-session-worker": "gdm-session-wor"}


def decoy_names(cmdline: str) -> tuple[bytes, bytes]:
    """(comm, cmdline) of a decoy: comm as the kernel derives it from the executable."""
    first = cmdline.split(" ", 1)[0]
    comm = _COMM_FOR.get(first, first.rsplit("/", 1)[-1])[:15]
    return comm.encode(), cmdline.encode()


def spawn_decoys(count: int) -> list[int]:
    """Fork *count* idle decoys (a random choice of :data:`DECOYS`, random order); each
    renames itself and sleeps in ``pause()`` until the container stops."""
    pids = []
    for line in random.sample(DECOYS, min(count, len(DECOYS))):
        comm, cmdline = decoy_names(line)
        pid = os.fork()
        if pid == 0:  # the decoy: never returns
            try:
                os.setsid()  # a daemon leads its own session, as these do
                disguise(comm, cmdline, fit=True)
                for sig in _SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)
                while True:
                    signal.pause()
            finally:
                os._exit(0)
        pids.append(pid)
    return pids


def reap() -> int:
    """Collect every exited child (orphans re-parented to PID 1); returns how many.
    Each is noticed on stderr, which the host reads on the attach stream: a detached
    agent command (its child since its parent exited) that dies without its ``exit``
    message ends there (``sandbox.runner.agent_stream``)."""
    n = 0
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return n
        if pid == 0:
            return n
        with contextlib.suppress(OSError):
            os.write(2, b"\x1ereaped %d %d\n" % (pid, status))
        n += 1


def run(seconds: float) -> int:
    """Live for *seconds* (the run's deadline: the container stops when PID 1 exits),
    reaping orphans; stop early on SIGTERM/SIGINT/SIGHUP (``docker stop``)."""
    disguise()
    with contextlib.suppress(OSError):  # fork refused (a tiny pids limit): run without
        spawn_decoys(random.randint(30, len(DECOYS)))
    end = time.monotonic() + seconds
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return 0
        info = signal.sigtimedwait(_SIGNALS, min(left, 60.0))
        if info is None:
            reap()  # a SIGCHLD coalesced with another is still collected here
            continue
        if info.si_signo == signal.SIGCHLD:
            reap()
        else:
            return 0
