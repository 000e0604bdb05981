import ctypes, os, signal, socket, struct, subprocess, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
os.chdir("/tmp")
os.makedirs("x/y", exist_ok=True)
# fchdir then relative open
d = os.open("x", os.O_RDONLY | os.O_DIRECTORY)
os.fchdir(d)
open("y/f.txt", "w").close()
os.chdir("..")                      # relative chdir
os.symlink("x/y/f.txt", "sym")       # symlink
os.symlink("y/f.txt", "sym2", dir_fd=d)  # symlinkat
os.link("x/y/f.txt", "hard")         # linkat
os.link("y/f.txt", "hard2", src_dir_fd=d, dst_dir_fd=d)
os.unlink("hard2", dir_fd=d)         # unlinkat
os.mkdir("z", dir_fd=d)              # mkdirat
os.rmdir("z", dir_fd=d)              # unlinkat AT_REMOVEDIR
os.rename("y/f.txt", "y/g.txt", src_dir_fd=d, dst_dir_fd=d)  # renameat
print(libc.syscall(316, -100, b"hard", -100, b"hard3", 1))    # renameat2 RENAME_NOREPLACE
os.mkfifo("fifo")                    # mknodat
os.truncate("x/y/g.txt", 10)
fd = os.open("x/y/g.txt", os.O_RDWR | os.O_APPEND)
os.ftruncate(fd, 5)
os.writev(fd, [b"vec1-", b"vec2\n"])
os.pwrite(fd, b"pw", 0)
os.pwritev(fd, [b"a", b"b"], 0) if hasattr(os, "pwritev") else None
os.fchmod(fd, 0o600)
os.chmod("x/y/g.txt", 0o640, dir_fd=None)
os.chown("x/y/g.txt", os.getuid(), -1)
os.lchown("sym", os.getuid(), -1)
os.fchown(fd, os.getuid(), -1)
os.chown("g.txt", os.getuid(), -1, dir_fd=os.open("x/y", os.O_RDONLY))  # fchownat
os.utime("x/y/g.txt", (1, 1))
try: os.getxattr("x/y/g.txt", "user.k")
except OSError: pass
os.listxattr("x/y/g.txt")
os.access("x/y/g.txt", os.R_OK, follow_symlinks=False)  # faccessat2
os.statvfs("/tmp")
out = os.open("/tmp/copy", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
os.sendfile(out, os.open("/etc/hostname", os.O_RDONLY), 0, 100)
r, w = os.pipe()
os.write(w, b"pipe data")
os.splice(r, out, 9)
m = os.memfd_create("payload")
os.write(m, b"\x7fELF\xff\xfe")
# unreadable pointer -> degraded
libc.open(ctypes.c_void_p(0x1234), 0)
libc.syscall(437, -100, b"/etc/hostname", ctypes.byref((ctypes.c_uint64 * 3)(0, 0, 0)), 24)  # openat2
# strings with awkward bytes and names
weird = b'/tmp/we"ird>na\nme\xff'
os.close(os.open(weird, os.O_WRONLY | os.O_CREAT))
os.write(out, b"x" * 2000)         # truncated string
# sockets on loopback
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
c = socket.create_connection(srv.getsockname()); a, _ = srv.accept()
c.sendall(b"over tcp"); a.recv(100); os.write(c.fileno(), b"write tcp")
u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u1.bind(("127.0.0.1", 0))
u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u2.connect(u1.getsockname())
u2.send(b"udp connected"); u1.recvfrom(100)
try: u1.sendmsg([b"sm"], [], 0, ("198.51.100.9", 5353))
except OSError: pass
u1.sendmsg([b"sm2"], [], 0, u2.getsockname()); u2.recvmsg(100)
ab = socket.socket(socket.AF_UNIX); ab.bind("\0abstract-name"); ab.listen(1)
ac = socket.socket(socket.AF_UNIX); ac.connect("\0abstract-name")
nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0); nl.bind((0, 0))
nl.sendto(struct.pack("=LHHLL", 20, 18, 0x301, 1, 0) + b"\0\0\0\0", (0, 0))
nl.recv(65536)
# privileged stuff (fails)
for nr, args in [(105, (0,)), (272, (0x10000000,)), (135, (0xffffffff,)), (321, (0, 0, 0)), (425, (8, 0)), (175, (0, 0, b"")), (169, (0, 0, 0, 0))]:
    libc.syscall(nr, *args)
try: os.setuid(0)
except OSError: pass
# processes
p = subprocess.Popen(["sleep", "5"]); time.sleep(0.1)
pf = os.pidfd_open(p.pid)
libc.syscall(438, pf, 0, 0)  # pidfd_getfd
libc.ptrace(16, p.pid, 0, 0)  # PTRACE_ATTACH
libc.process_vm_readv(p.pid, 0, 0, 0, 0, 0)
os.kill(p.pid, signal.SIGKILL); p.wait()
q = subprocess.Popen(["python3", "-c", "import os; os.abort()"]); q.wait()
subprocess.run(["sh", "-c", 'echo "quoted \\"x\\"" \'single\' é > /dev/null'])
subprocess.run(["true"] + ["arg%d" % i for i in range(40)] + ["y" * 1100])
# execveat
fdt = os.open("/bin/true", os.O_RDONLY)
if os.fork() == 0:
    libc.syscall(322, fdt, b"", (ctypes.c_char_p * 2)(b"true-via-fd", None), (ctypes.c_char_p * 1)(None), 0x1000)
    os._exit(9)
os.wait()
# thread that chdirs (shared cwd) and a thread exec in a child
def t1():
    os.chdir("/tmp/x")
    open("y/g.txt").close()
th = threading.Thread(target=t1); th.start(); th.join()
open("y/g.txt").close()
if os.fork() == 0:
    def t2():
        os.execv("/bin/true", ["true", "from-thread"])
    threading.Thread(target=t2).start(); time.sleep(5); os._exit(1)
os.wait()
print("done")
