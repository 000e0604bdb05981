# ruff: noqa: E501  (captured strace lines are quoted verbatim above each regex)
"""Lexical helpers for strace ``-f -yy -ttt -s N`` output (stateless).

House rule: every regex has a real captured line directly above it (from
``tests/data/strace/``).  The regexes are written so that alternatives never
overlap, which keeps matching linear on hostile input (file names, socket names
and written data are chosen by the package under test).
"""

from __future__ import annotations

import posixpath
import re

from sandbox.models import Address

# --- strings -----------------------------------------------------------------

# 20    1795628174.070201 write(4</tmp/d1/sub/rel.txt>, "hello\0\1world\n", 13) = 13
# 21    1795628332.947231 write(6</tmp/copy>, "xxxx[… 1024 x in all …]xxxx"..., 2000) = 2000
STRING_RE = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"(\.\.\.)?', re.S)

# 24    1795628333.084926 execve("/usr/local/sbin/sh", ["sh", "-c", "echo \"quoted \\\"x\\\"\" 'single' \303\251 > /dev/null"], 0x7fff3fb90650 /* 7 vars */) = -1 ENOENT (No such file or directory)
_ESCAPE_RE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", re.S)

_SIMPLE_ESCAPES = {
    "n": 10,
    "t": 9,
    "r": 13,
    "v": 11,
    "f": 12,
    "a": 7,
    "b": 8,
    "e": 27,
    "\\": 92,
    '"': 34,
    "'": 39,
    "?": 63,
}


def unescape(text: str) -> str:
    """Undo strace's C escaping and decode the bytes as UTF-8.

    Bytes that are not UTF-8 come back as ``\\xNN`` (``backslashreplace``) so the
    result is always serialisable; the cost is that such a path is ambiguous with
    one that really contains a backslash.
    """
    if "\\" not in text:
        return text
    parts = _ESCAPE_RE.split(text)
    buf = bytearray()
    for i, part in enumerate(parts):
        if not i & 1:
            buf += part.encode("utf-8", "surrogateescape")
        elif part[0] == "x" and len(part) > 1:
            buf.append(int(part[1:], 16))
        elif "0" <= part[0] <= "7":
            buf.append(int(part, 8) & 0xFF)
        else:
            code = _SIMPLE_ESCAPES.get(part)
            buf += bytes((code,)) if code is not None else part.encode("utf-8", "surrogateescape")
    return buf.decode("utf-8", "backslashreplace")


def count_truncated(text: str) -> int:
    """Count quoted strings that strace cut at ``-s`` (``"abc"...``)."""
    if '"...' not in text:
        return 0
    return sum(1 for m in STRING_RE.finditer(text) if m.group(2))


def odd_quotes(text: str) -> bool:
    """True if *text* holds an odd number of unescaped double quotes.

    Used to reject a ``) = `` found inside a quoted argument: the text after it
    then always closes that string.
    """
    if '"' not in text:
        return False
    if "\\" not in text:
        return bool(text.count('"') & 1)
    return bool(_ESCAPE_RE.sub("", text).count('"') & 1)


# --- results -----------------------------------------------------------------

# 20    1795628174.069999 openat(3</tmp/d1>, "sub/rel.txt", O_WRONLY|O_CREAT|O_CLOEXEC, 0644) = 4</tmp/d1/sub/rel.txt>
# 20    1795628174.081712 kill(1, SIGKILL) = -1 EPERM (Operation not permitted)
# 21    1795628332.956778 personality(0xffffffff) = 0 (PER_LINUX)
# 21    1795628332.946504 memfd_create("payload", MFD_CLOEXEC) = 10</memfd:payload>(deleted)
# 28    1795628333.097443 <... execve resumed>) = -1 (errno 18446744073709551595)
# 20    1795628174.416680 exit_group(0)   = ?
# Fault injection by the sandbox's seccomp TRACE + strace -e inject (see runner/seccomp.py):
# 11    1795628144.161801 mount("none", "/tmp", "tmpfs", 0, NULL) = -1 EPERM (Operation not permitted) (INJECTED)
RESULT_RE = re.compile(
    r"(-?\d+|\?|0x[0-9a-fA-F]+)"
    r"(?:<(.*)>(?:\(deleted\))?"
    r"| (E[A-Z0-9]+) \([^()]*\)"
    r"| (E[A-Z0-9]+)"
    r"| \(errno (\d+)\)"
    r"| \([^()]*\)"
    r"| <unavailable>)?"
    r"(?: \(INJECTED\))?",
    re.S,
)

# --- arguments -----------------------------------------------------------------

# Groups: dirfd, its path decoration, path string, cut marker, pointer, the next argument.
# 20    1795628174.070791 newfstatat(4</tmp/d1/sub/moved.txt>, "", {st_mode=S_IFREG|0755, st_size=13, ...}, AT_EMPTY_PATH) = 0
# 20    1795628174.009803 newfstatat(0</dev/null<char 1:3>>, "", {st_mode=S_IFCHR|0666, st_rdev=makedev(0x1, 0x3), ...}, AT_EMPTY_PATH) = 0
# 21    1795628332.946789 openat(AT_FDCWD</tmp>, 0x1234, O_RDONLY) = -1 EFAULT (Bad address)
AT_PATH_RE = re.compile(
    r"(AT_FDCWD|-?\d+)(?:<([^<>]*)(?:<[^<>]*>)?>(?:\(deleted\))?)?, "
    r'(?:"([^"\\]*(?:\\.[^"\\]*)*)"(\.\.\.)?|(0x[0-9a-fA-F]+|NULL))'
    r"(?:, ([^,)]*))?",
    re.S,
)

# Groups: path string, cut marker, pointer, the next argument.
# 20    1795628174.070468 chmod("d1/sub/moved.txt", 0755) = 0
# 20    1795628173.998615 readlink("/usr/bin/python3.11", 0x7ffe09838670, 4096) = -1 EINVAL (Invalid argument)
PATH_RE = re.compile(
    r'(?:"([^"\\]*(?:\\.[^"\\]*)*)"(\.\.\.)?|(0x[0-9a-fA-F]+|NULL))(?:, ([^,)]*))?',
    re.S,
)

# 20    1795628173.967097 execve("/usr/bin/setpriv", ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", "env", "HOME=/home/dev", "python3", "/cap/behave.py"], 0x7ffe10593030 /* 7 vars */) = 0
# 19    1795628474.225135 execve("/bin/true", ["/bin/true", "a", "a", [… 1021 more "a" …], ...], 0x7ffe9dc04150 /* 8 vars */ <unfinished ...>
ARGV_RE = re.compile(r'\[((?:"[^"\\]*(?:\\.[^"\\]*)*"(?:\.\.\.)?(?:, )?)*)(\.\.\.)?\]', re.S)

# 21    1795628332.943885 writev(4</tmp/x/y/g.txt>, [{iov_base="vec1-", iov_len=5}, {iov_base="vec2\n", iov_len=5}], 2) = 10
IOV_BASE_RE = re.compile(r'iov_base="([^"\\]*(?:\\.[^"\\]*)*)"(\.\.\.)?', re.S)

# 20    1795628174.075282 clone(child_stack=0x7f07e03aef70, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, parent_tid=[21], tls=0x7f07e03af6c0, child_tidptr=0x7f07e03af990) = 21
CLONE_NEW_RE = re.compile(r"CLONE_NEW[A-Z]+")

# Characters that change nesting or need a token of their own when splitting arguments.
# 21    1795628332.954646 sendmsg(15<UDP:[127.0.0.1:55786]>, {msg_name={sa_family=AF_INET, sin_port=htons(5353), sin_addr=inet_addr("198.51.100.9")}, msg_namelen=16, msg_iov=[{iov_base="sm", iov_len=2}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = -1 ENETUNREACH (Network is unreachable)
_SPECIAL_RE = re.compile(r'["<(\[{)\]},]')


def decoration_end(text: str, start: int) -> int:
    """Index just past the ``-yy`` decoration whose ``<`` is at *start*.

    Path decorations escape ``<`` and ``>`` (``\\76``); the only nesting is a
    device suffix (``</dev/null<char 1:3>>``).  Socket and pipe decorations are
    ``NAME:[...]`` and may hold ``->``, so they end at ``]>``.
    """
    close = text.find(">", start + 1)
    if close < 0:
        return len(text)
    if text.startswith("/", start + 1):
        nested = text.find("<", start + 1, close)
        if nested >= 0:
            close = text.find(">", close + 1)
            if close < 0:
                return len(text)
    else:
        bracket = text.find(":[", start + 1, close)
        if bracket >= 0:
            end = text.find("]>", bracket)
            if end >= 0:
                close = end + 1
    if text.startswith("(deleted)", close + 1):
        return close + 10
    return close + 1


def split_args(text: str, limit: int = 64) -> list[str]:
    """Split strace arguments at top-level commas (at most *limit* pieces).

    Quoted strings, fd decorations and bracketed structures are kept whole.
    The remainder after *limit* - 1 commas is returned as the last piece.
    """
    out: list[str] = []
    depth = 0
    start = 0
    pos = 0
    n = len(text)
    search = _SPECIAL_RE.search
    while pos < n:
        m = search(text, pos)
        if m is None:
            break
        i = m.start()
        c = text[i]
        if c == '"':
            sm = STRING_RE.match(text, i)
            pos = sm.end() if sm else n
            continue
        if c == "<":
            # Only an fd decoration opens here (``3</x>``, ``AT_FDCWD</>``); a
            # bare ``<`` (``1<<CAP_CHOWN``) is ordinary text.
            if i > 0 and (text[i - 1].isdigit() or text.endswith("AT_FDCWD", 0, i)):
                pos = decoration_end(text, i)
            else:
                pos = i + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth <= 0:
            out.append(text[start:i].strip())
            start = i + 1
            if len(out) >= limit - 1:
                break
        pos = i + 1
    out.append(text[start:].strip())
    return out


def split_fd(arg: str) -> tuple[str, str | None]:
    """``'3</tmp/d1>'`` → ``('3', '/tmp/d1')``; an undecorated fd gives ``None``."""
    i = arg.find("<")
    if i < 0:
        return arg, None
    body = arg[i + 1 :]
    if body.endswith(">(deleted)"):
        body = body[:-10]
    elif body.endswith(">"):
        body = body[:-1]
    else:
        return arg[:i], None
    return arg[:i], body


def deco_path(deco: str | None) -> str | None:
    """The file path of an fd decoration, or None for sockets, pipes and the like."""
    if not deco or deco[0] != "/":
        return None
    nested = deco.find("<")
    if nested >= 0:  # ``/dev/null<char 1:3>``
        deco = deco[:nested]
    return unescape(deco)


def is_socket(deco: str | None) -> bool:
    """True for socket decorations: ``TCP:[…]``, ``UNIX-STREAM:[…]``, ``NETLINK:[…]``, ``socket:[…]``."""
    if not deco:
        return False
    if deco.startswith("socket:["):
        return True
    return deco[0].isupper() and ":[" in deco


def normalise(path: str) -> str:
    """Lexically normalise an absolute path (no symlink resolution).

    A leading ``//`` is collapsed too: Linux treats it as ``/`` and rules that
    match on prefixes must not be dodged by it.
    """
    if "/." in path or "//" in path or (path.endswith("/") and len(path) > 1):
        path = posixpath.normpath(path)
        if path.startswith("//"):
            path = "/" + path.lstrip("/")
    return path


# --- socket addresses -----------------------------------------------------------

# 20    1795628174.072140 connect(4<TCP:[22276]>, {sa_family=AF_INET, sin_port=htons(8443), sin_addr=inet_addr("192.0.2.10")}, 16) = -1 ENETUNREACH (Network is unreachable)
_SA_INET_RE = re.compile(r'\{sa_family=AF_INET, sin_port=htons\((\d+)\), sin_addr=inet_addr\("([0-9.]*)"\)')

# 20    1795628174.073154 connect(6<TCPv6:[22278]>, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 EADDRNOTAVAIL (Cannot assign requested address)
_SA_INET6_RE = re.compile(
    r'\{sa_family=AF_INET6, sin6_port=htons\((\d+)\), [^{}"]*inet_pton\(AF_INET6, "([0-9a-fA-F:.]*)"'
)

# 20    1795628174.073625 connect(7<UNIX-STREAM:[22279]>, {sa_family=AF_UNIX, sun_path="/var/run/docker.sock"}, 23) = -1 ENOENT (No such file or directory)
# 21    1795628332.955394 bind(17<UNIX-STREAM:[25614]>, {sa_family=AF_UNIX, sun_path=@"abstract-name"}, 16) = 0
_SA_UNIX_RE = re.compile(r'\{sa_family=AF_UNIX(?:, sun_path=(@?)"([^"\\]*(?:\\.[^"\\]*)*)")?')

# 21    1795628332.956180 sendto(19<NETLINK:[ROUTE:21]>, [{nlmsg_len=20, nlmsg_type=RTM_GETLINK, nlmsg_flags=NLM_F_REQUEST|NLM_F_DUMP, nlmsg_seq=1, nlmsg_pid=0}, {ifi_family=AF_UNSPEC, ...}], 20, 0, {sa_family=AF_NETLINK, nl_pad=0x25ce, nl_pid=0, nl_groups=00000000}, 12) = 20
_SA_NETLINK_RE = re.compile(r"\{sa_family=AF_NETLINK, (?:nl_pad=[0-9a-fx]+, )?nl_pid=(\d+)")

# 20    1795628174.412574 getsockname(7<UNIX-STREAM:[22279]>, {sa_family=AF_UNIX}, [110 => 2]) = 0
_SA_FAMILY_RE = re.compile(r"\{sa_family=(\w+)")

# Groups: v6 marker, local v6 host, local v4 host, local port, remote v6, remote v4, remote port.
# 21    1795628332.953506 write(13<TCP:[127.0.0.1:45968->127.0.0.1:41099]>, "write tcp", 9) = 9
# 10    1795628826.556242 sendto(6<UDPv6:[[::1]:51884->[::1]:9]>, "udp6", 4, 0, NULL, 0) = 4
# 21    1795628332.948116 listen(12<TCP:[127.0.0.1:41099]>, 1) = 0
_INET_DECO_RE = re.compile(
    r"[A-Z][A-Z0-9/]*(v6)?:\[(?:\[([0-9a-fA-F:.]*)\]|([0-9.]*)):(\d+)"
    r"(?:->(?:\[([0-9a-fA-F:.]*)\]|([0-9.]*)):(\d+))?\]$"
)

# 20    1795628174.074310 write(8<UNIX-STREAM:[22280->22281]>, "raw write on socket", 19) = 19
# 21    1795628332.955514 listen(17<UNIX-STREAM:[25614,@"abstract-name"]>, 1) = 0
_UNIX_DECO_RE = re.compile(r'UNIX(?:-[A-Z]+)?:\[(\d+)(?:->(\d+))?(?:,(@?)"([^"\\]*(?:\\.[^"\\]*)*)")?\]$')

# 21    1795628333.103383 getsockname(19<NETLINK:[ROUTE:21]>, {sa_family=AF_NETLINK, nl_pid=21, nl_groups=00000000}, [12]) = 0
# 21    1795628332.956042 bind(19<NETLINK:[25616]>, {sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12) = 0
_NETLINK_DECO_RE = re.compile(r"NETLINK:\[(?:([A-Z_0-9]+):)?(\d+)\]$")

# 20    1795628174.072502 socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, IPPROTO_IP) = 5<UDP:[22277]>
_INODE_DECO_RE = re.compile(r"([A-Za-z][A-Za-z0-9/-]*):\[(\d+)(?:\]|->|,)")


def parse_sockaddr(arg: str) -> tuple[Address | None, bool]:
    """Parse one printed ``struct sockaddr`` argument.

    Returns ``(address, degraded)``: a hex pointer (strace could not read the
    memory) is degraded, ``NULL`` or an absent address is not.
    """
    if not arg.startswith("{sa_family="):
        return None, arg.startswith("0x")
    m = _SA_INET_RE.match(arg)
    if m:
        return Address(family="inet", host=m.group(2), port=int(m.group(1))), False
    m = _SA_INET6_RE.match(arg)
    if m:
        return Address(family="inet6", host=m.group(2), port=int(m.group(1))), False
    m = _SA_UNIX_RE.match(arg)
    if m:
        path = unescape(m.group(2)) if m.group(2) is not None else ""
        return Address(family="unix", path=(m.group(1) or "") + path), False
    m = _SA_NETLINK_RE.match(arg)
    if m:
        return Address(family="netlink", port=int(m.group(1))), False
    m = _SA_FAMILY_RE.match(arg)
    return Address(family="other", host=m.group(1) if m else ""), False


def msg_name(arg: str) -> tuple[Address | None, bool]:
    """Address of a printed ``struct msghdr`` (sendmsg) or ``struct mmsghdr[]`` (sendmmsg).

    ``msg_name`` is printed first, before any data the package controls, so only
    that position is trusted.
    """
    for prefix in ("{msg_name=", "[{msg_hdr={msg_name="):
        if arg.startswith(prefix):
            return parse_sockaddr(arg[len(prefix) :])
    return None, False


def mmsg_elements(arg: str, limit: int) -> list[str]:
    """The first *limit* elements of a printed ``struct mmsghdr[]`` (sendmmsg), each
    ``{msg_hdr={msg_name=…}, msg_len=N}``, split by braces outside quoted strings (whose
    quotes strace escapes): a message's bytes cannot open or close an element."""
    out: list[str] = []
    if not arg.startswith("["):
        return out
    depth, start, i, n = 0, 0, 1, len(arg)
    while i < n and len(out) < limit:
        c = arg[i]
        if c == '"':
            i += 1
            while i < n and arg[i] != '"':
                i += 2 if arg[i] == "\\" else 1
        elif c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                out.append(arg[start : i + 1])
        elif c == "]" and depth == 0:
            break
        i += 1
    return out


def socket_inode(deco: str) -> str | None:
    """``'TCP:[22276]'`` → ``'TCP:22276'`` (a key that survives dup and fork)."""
    m = _INODE_DECO_RE.match(deco)
    return f"{m.group(1)}:{m.group(2)}" if m else None


# strace -yy names a socket's protocol: TCP, TCPv6, UDP, UDPv6, UNIX-STREAM, UNIX-DGRAM …
_STREAM_PROTOS = ("TCP", "TCPv6", "UNIX-STREAM", "UNIX-SEQPACKET", "SCTP", "SCTPv6")
_DGRAM_PROTOS = ("UDP", "UDPv6", "UDPLITE", "UDPLITEv6", "UNIX-DGRAM", "NETLINK", "RAW", "RAWv6")


def deco_socktype(deco: str | None) -> str:
    """``'TCP:[22276]'`` → ``'SOCK_STREAM'``, ``'UDP:[…]'`` → ``'SOCK_DGRAM'``; ``''``
    when the decoration names no protocol (an undecorated or unknown fd)."""
    proto = (deco or "").split(":", 1)[0]
    if proto in _STREAM_PROTOS:
        return "SOCK_STREAM"
    if proto in _DGRAM_PROTOS:
        return "SOCK_DGRAM"
    return ""


def deco_addresses(deco: str) -> tuple[Address | None, Address | None]:
    """Local and remote addresses of a socket decoration (either may be None)."""
    m = _INET_DECO_RE.match(deco)
    if m:
        family = "inet6" if m.group(1) else "inet"
        local = Address(family=family, host=m.group(2) or m.group(3) or "", port=int(m.group(4)))
        remote = None
        if m.group(7) is not None:
            remote = Address(family=family, host=m.group(5) or m.group(6) or "", port=int(m.group(7)))
        return local, remote
    m = _UNIX_DECO_RE.match(deco)
    if m:
        path = (m.group(3) or "") + unescape(m.group(4)) if m.group(4) is not None else ""
        local = Address(family="unix", path=path)
        return local, Address(family="unix") if m.group(2) else None
    m = _NETLINK_DECO_RE.match(deco)
    if m:
        return Address(family="netlink", host=m.group(1) or "", port=int(m.group(2))), None
    return None, None
