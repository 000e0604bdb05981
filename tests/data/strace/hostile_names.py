# File names and data that imitate strace syntax, written from two threads so some
# calls are split into <unfinished ...> / <... resumed> pairs.
import os, socket, threading
os.chdir("/tmp")
NAMES = ['a) = 0', 'b) = -1 ENOENT (x)', 'c <unfinished ...>', 'd) = 5<e>', 'f", O_RDONLY) = 3</g>',
         'h\\i', 'l>m<n', 'o <... openat resumed>) = 0', 'p) = 3</q>(deleted)']
def churn(tag):
    for _ in range(30):
        for n in NAMES:
            fd = os.open(n + tag, os.O_WRONLY | os.O_CREAT)
            os.write(fd, b'x) = 0 <unfinished ...>')
            os.close(fd)
ts = [threading.Thread(target=churn, args=(t,)) for t in ("1", "2")]
[t.start() for t in ts]; [t.join() for t in ts]
s = socket.socket(socket.AF_UNIX); s.bind("/tmp/s) = 7<x>"); s.listen(1)
c = socket.socket(socket.AF_UNIX); c.connect("/tmp/s) = 7<x>"); a, _ = s.accept()
c.send(b"hi"); os.write(c.fileno(), b"w")
ab = socket.socket(socket.AF_UNIX); ab.bind("\0peer"); ab.listen(1)
cl = socket.socket(socket.AF_UNIX); cl.connect("\0peer"); os.write(cl.fileno(), b"to peer")
