import ctypes, os, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
for nr, args in [(165, (b"none", b"/mnt", b"tmpfs", 0, None)), (166, (b"/mnt", 0)), (250, (0, 0)), (248, (b"user", b"k", b"v", 1, -3)),
                 (298, (None, 0, -1, -1, 0)), (308, (3, 0)), (313, (-1, b"", 0)), (176, (b"mod", 0)), (200, (os.getpid(), 18)),
                 (311, (1, None, 0, None, 0, 0)), (106, (0,)), (126, (None, None))]:
    libc.syscall(nr, *args)
libc.syscall(101, 0, 0, 0, 0)  # ptrace(PTRACE_TRACEME)
try: os.chdir("/nonexistent")
except OSError: pass
os.chdir("/")
subprocess.run(["/bin/true"] + ["a"] * 1030)
try: subprocess.run(["./rel-missing"])
except OSError: pass
subprocess.run(["sleep", "30"])
