"""Per-syscall handlers: one complete call's arguments and result → Event fields."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from sandbox.models import Address, EventKind, Phase
from sandbox.trace import kernel_paths  # attributes read at call time: it imports this package
from sandbox.trace.strace._syntax import (
    ARGV_RE,
    AT_PATH_RE,
    CLONE_NEW_RE,
    IOV_BASE_RE,
    PATH_RE,
    STRING_RE,
    count_truncated,
    deco_addresses,
    deco_path,
    deco_socktype,
    decoration_end,
    is_socket,
    mmsg_elements,
    msg_name,
    normalise,
    parse_sockaddr,
    socket_inode,
    split_args,
    split_fd,
    unescape,
)
from sandbox.trace.strace.processes import _Proc, _Tasks
from sandbox.trace.strace.tables import (
    _AT_CALLS,
    _CHOWN,
    _COUNTS_OWN_CUTS,
    _FD_CALLS,
    _FLAGS_ARG,
    _OPENS,
    _PATH_CALLS,
    _PRIVILEGED,
    _PTRACE,
    _SIGNALS,
    _SILENT,
    _SOCK_CALLS,
    _SPAWN,
    _TWO_PATHS,
    _WRITES,
    K,
    _open_kind,
)

# messages of one sendmmsg recorded, each its own event (the eBPF program's MMSG_CAP)
MMSG_CAP = 8


class _Calls(_Tasks):
    """Turns calls into events (:meth:`call` dispatches on the syscall name)."""

    def __init__(self, phase: Phase, root_ppid: int | None) -> None:
        super().__init__(phase, root_ppid)
        self.sock_peer: dict[str, Address] = {}
        self.truncated = 0

    # --- calls -------------------------------------------------------------------------

    def call(
        self,
        no: int,
        tid: int,
        t: float,
        name: str,
        args: str,
        m: Any,
        *,
        forced: bool = False,
    ) -> None:
        """Turn one complete (or never-resumed, *m* None) call into an event."""
        tgid = self.tgid_of.get(tid)
        if tgid is None:
            tgid = self.task(tid, t)
        result: int | None = None
        errno: str | None = None
        rdeco: str | None = None
        if m is not None:
            ret, rdeco, e1, e2, e3 = m.groups()
            if ret != "?":
                result = int(ret, 16) if ret[:2] == "0x" else int(ret)
            errno = e1 or e2 or (f"errno {e3}" if e3 else None)
        elif forced:
            result = 0
        if '"...' in args and name not in _COUNTS_OWN_CUTS:
            self.truncated += count_truncated(args)
        values: dict[str, Any] = {
            "phase": self.phase,
            "pid": tgid,
            "time": t,
            "syscall": name,
            "result": result,
            "errno": errno,
        }
        proc = self.procs[tgid]
        if name in _AT_CALLS:
            self.at_call(proc, name, args, _AT_CALLS[name], values)
        elif name in _PATH_CALLS:
            self.path_call(proc, name, args, _PATH_CALLS[name], result, values)
        elif name in _FD_CALLS:
            self.fd_call(proc, name, args, _FD_CALLS[name], result, values)
        elif name in _WRITES:
            self.write_call(name, args, result, values)
        elif name in _TWO_PATHS:
            self.two_path_call(proc, name, args, values)
        elif name in _SOCK_CALLS:
            self.sock_call(name, args, _SOCK_CALLS[name], result, errno, values)
        elif name in _SPAWN:
            self.spawn_call(no, tgid, t, name, args, result, values)
        elif name == "execve" or name == "execveat":
            self.exec_call(proc, name, args, result, errno, values)
        elif name in _SIGNALS:
            self.signal_call(name, args, values)
        elif name in _PTRACE:
            self.ptrace_call(name, args, values)
        elif name in _PRIVILEGED:
            self.privileged_call(proc, name, args, values)
        elif name in _SILENT:
            return
        else:
            self.other_call(proc, name, args, rdeco, values)
        if result is not None and result >= 0 and rdeco is not None and rdeco[:1] == "/":
            if name in _OPENS:
                # the file the kernel opened (through /proc links, symlinks, "..")
                values["path"] = deco_path(rdeco)
            if name in _OPENS or name == "memfd_create":
                proc.fds[result] = values["path"]
        elif result is not None and result >= 0 and rdeco is not None:
            proc.fds.pop(result, None)  # that fd number is now a socket, pipe …
        elif result == 0 and name in ("symlink", "symlinkat"):
            link, target = values.get("path"), values.get("path2")
            if link and target and link.startswith("/") and target.startswith("/"):
                self.links[link] = target
        elif result == 0 and self.links and values.get("kind") is K.FILE_DELETE:
            self.links.pop(values.get("path") or "", None)
        more = values.pop("more", ())
        self.emit(no, tid, values)
        for extra in more:  # a sendmmsg's further messages, the other half of a swap
            self.emit(no, tid, {**values, **extra})

    def at_call(
        self, proc: _Proc, name: str, args: str, kind: EventKind | None, values: dict[str, Any]
    ) -> None:
        m = AT_PATH_RE.match(args)
        if m is None:
            self.degraded += 1
            values["kind"] = kind or K.FILE_READ
            return
        dirfd, deco, raw, _, ptr, nxt = m.groups()
        if deco is not None and "\\" in deco:
            deco = unescape(deco)
        at_cwd = dirfd == "AT_FDCWD"
        if at_cwd and deco is not None and deco[:1] == "/":
            proc.cwd = deco  # the decoration names the cwd at this call
        base = deco if deco is not None and deco[:1] == "/" else None
        if raw == "" and deco is not None and base is None:  # fstat of a pipe or socket: no path
            values["flags"] = deco
            values["kind"] = kind or K.FILE_READ
            return
        if raw is not None:
            values["path"] = self.resolve(proc, unescape(raw) if "\\" in raw else raw, base, at_cwd)
        elif ptr == "NULL" and base is not None:  # utimensat(fd, NULL, …) acts on the fd
            values["path"] = base
        else:
            self.degraded += 1
        if kind is None:
            if name == "openat2" and nxt is not None and nxt.startswith("{flags="):
                nxt = nxt[7:]
            kind = _open_kind(nxt)
            values["flags"] = nxt
        elif name in _CHOWN:
            values["flags"] = ", ".join(split_args(args, 4)[2:4])
        elif name in _FLAGS_ARG:
            values["flags"] = nxt
        values["kind"] = kind

    def path_call(
        self,
        proc: _Proc,
        name: str,
        args: str,
        kind: EventKind | None,
        result: int | None,
        values: dict[str, Any],
    ) -> None:
        m = PATH_RE.match(args)
        path: str | None = None
        nxt: str | None = None
        if m is None or m.group(1) is None:
            if name != "getcwd":
                self.degraded += 1
        else:
            raw = m.group(1)
            rel = unescape(raw) if "\\" in raw else raw
            nxt = m.group(4)
            if name == "getcwd":
                if result is not None and result > 0 and rel.startswith("/"):
                    proc.cwd = normalise(rel)
                    path = proc.cwd
            else:
                path = self.resolve(proc, rel, None, True)
                if name == "chdir" and result == 0 and path is not None and path.startswith("/"):
                    proc.cwd = path
        values["path"] = path
        if kind is None:
            kind = _open_kind(nxt)
            values["flags"] = nxt
        elif name in _CHOWN:
            values["flags"] = ", ".join(split_args(args, 3)[1:3])
        elif name in _FLAGS_ARG:
            values["flags"] = nxt
        values["kind"] = kind

    def two_path_call(self, proc: _Proc, name: str, args: str, values: dict[str, Any]) -> None:
        kind, d1, p1, d2, p2 = _TWO_PATHS[name]
        parts = split_args(args, 6)
        n = len(parts)
        old = self.arg_path(proc, parts[d1] if 0 <= d1 < n else None, parts[p1] if p1 < n else None)
        if name.startswith("symlink"):
            # The target is stored verbatim and resolved from the link's directory.
            m = STRING_RE.fullmatch(parts[0])
            target = unescape(m.group(1)) if m else None
            link = self.arg_path(proc, parts[d2] if 0 <= d2 < n else None, parts[p2] if p2 < n else None)
            if (
                target is not None
                and not target.startswith("/")
                and link is not None
                and link.startswith("/")
            ):
                target = normalise(posixpath.dirname(link).rstrip("/") + "/" + target)
            elif target is not None and target.startswith("/"):
                target = normalise(target)
            values["path"], values["path2"] = link, target
        else:
            new = self.arg_path(proc, parts[d2] if 0 <= d2 < n else None, parts[p2] if p2 < n else None)
            if kind is K.FILE_LINK:
                values["path"], values["path2"] = new, old
            else:
                values["path"], values["path2"] = old, new
            if n > 4:
                values["flags"] = parts[4]
                if "RENAME_EXCHANGE" in parts[4]:  # both names now hold what the other did
                    values["more"] = [{"path": new, "path2": old}]
        values["kind"] = kind

    def fd_call(
        self, proc: _Proc, name: str, args: str, kind: EventKind, result: int | None, values: dict[str, Any]
    ) -> None:
        _, deco, end = _lead_fd(args)
        path = deco_path(deco)
        if path is None:
            self.degraded += 1
        values["path"] = path
        values["kind"] = kind
        if name == "fchdir" and result == 0 and path is not None:
            proc.cwd = path
        elif name in _CHOWN:
            values["flags"] = ", ".join(split_args(args, 3)[1:3])
        elif name == "fchmod":
            values["flags"] = args[end:].lstrip(", ").strip()

    def write_call(self, name: str, args: str, result: int | None, values: dict[str, Any]) -> None:
        if name in ("sendfile", "sendfile64", "splice", "copy_file_range"):
            parts = [*split_args(args, 4), "", "", ""]
            out, src = (parts[2], parts[0]) if name in ("splice", "copy_file_range") else (parts[0], parts[1])
            deco = split_fd(out)[1]
            values["path2"] = deco_path(split_fd(src)[1])
        else:
            _fd, deco, end = _lead_fd(args)
            rest = args[end:]
            if rest.startswith(", "):
                if name in ("write", "pwrite64"):
                    values["data"] = self.buffer_arg(rest[2:], 1 if name == "write" else 2)
                else:
                    chunks = [m.group(1) for m in IOV_BASE_RE.finditer(rest)]
                    if chunks:
                        values["data"] = "".join(chunks)
        if result is not None and result >= 0:
            values["size"] = result
        if is_socket(deco):
            values["kind"] = K.SEND
            values["address"] = self.peer(deco)
        else:
            values["kind"] = K.FILE_WRITE
            path = deco_path(deco)
            if path is None:
                if deco is None:
                    self.degraded += 1
                elif deco[:1] != "/":  # pipe:[…], anon_inode:[…]: not a path, keep what it is
                    values["flags"] = deco
            values["path"] = path

    def buffer_arg(self, text: str, after: int) -> str | None:
        """The printed buffer followed by *after* numeric arguments, without quotes.

        It is the call's only string, so it ends at the last ``, `` before those
        numbers (quotes inside it are escaped).  Counts a buffer cut at ``-s``.
        """
        pieces = text.rsplit(", ", after)
        buf = pieces[0]
        if len(pieces) != after + 1 or len(buf) < 2 or buf[0] != '"':
            return None
        if buf.endswith('"...'):
            self.truncated += 1
            return buf[1:-4]
        return buf[1:-1] if buf[-1] == '"' else None

    def peer(self, deco: str | None) -> Address | None:
        """Where a socket fd sends: the decoration's remote end or an earlier connect."""
        if deco is None:
            return None
        local, remote = deco_addresses(deco)
        if remote is not None and (remote.family != "unix" or remote.path):
            return remote
        inode = socket_inode(deco)
        known = self.sock_peer.get(inode) if inode else None
        if known is not None:
            return known
        return remote or (local if local is not None and local.family == "unix" else None)

    def sock_call(
        self,
        name: str,
        args: str,
        kind: EventKind,
        result: int | None,
        errno: str | None,
        values: dict[str, Any],
    ) -> None:
        values["kind"] = kind
        parts = split_args(args, 6)
        deco = split_fd(parts[0])[1]
        address: Address | None = None
        degraded = False
        if name in ("connect", "bind"):
            if len(parts) > 1:
                address, degraded = parse_sockaddr(parts[1])
            if name == "connect" and deco_socktype(deco):
                values["flags"] = deco_socktype(deco)  # a stream connect sends a SYN; a datagram one nothing
            if (
                name == "connect"
                and address is not None
                and deco is not None
                and errno in (None, "EINPROGRESS")
            ):
                inode = socket_inode(deco)
                if inode:
                    self.sock_peer[inode] = address
        elif name == "listen":
            address = deco_addresses(deco)[0] if deco else None
        elif name in ("sendto", "recvfrom"):
            if len(parts) > 1 and parts[1].startswith('"'):
                m = STRING_RE.match(parts[1])
                if m:
                    values["data"] = m.group(1)
            if len(parts) > 4:
                address, degraded = parse_sockaddr(parts[4])
        elif name in ("accept", "accept4"):
            if len(parts) > 1:
                address, degraded = parse_sockaddr(parts[1])
        elif name == "sendmmsg" and len(parts) > 1:
            # each message names its own peer: one event per message (the first is this one)
            msgs = mmsg_elements(parts[1], MMSG_CAP)
            address, degraded = msg_name(parts[1])
            chunks = [m.group(1) for m in IOV_BASE_RE.finditer(msgs[0] if msgs else parts[1])]
            if chunks:
                values["data"] = "".join(chunks)
            more = []
            for msg in msgs[1:]:
                other, cut = msg_name("[" + msg)
                degraded = degraded or cut
                data = "".join(m.group(1) for m in IOV_BASE_RE.finditer(msg))
                more.append({"address": other or self.peer(deco), "data": data or None})
            values["more"] = more
        elif len(parts) > 1:  # sendmsg, recvmsg, recvmmsg
            address, degraded = msg_name(parts[1])
            chunks = [m.group(1) for m in IOV_BASE_RE.finditer(parts[1])]
            if chunks:
                values["data"] = "".join(chunks)
        if address is None and kind in (K.SEND, K.RECV):
            address = self.peer(deco)
        if degraded:
            self.degraded += 1
        if kind in (K.SEND, K.RECV) and result is not None and result >= 0 and not name.endswith("mmsg"):
            values["size"] = result
        values["address"] = address

    def spawn_call(
        self, no: int, tgid: int, t: float, name: str, args: str, result: int | None, values: dict[str, Any]
    ) -> None:
        values["kind"] = K.SPAWN
        flags = set()
        i = args.find("flags=")
        if i >= 0:
            j = i + 6
            while j < len(args) and args[j] not in ",}":
                j += 1
            flags = set(args[i + 6 : j].split("|"))
        thread = "CLONE_THREAD" in flags
        label = "thread" if thread else "process"
        spaces = sorted(f for f in flags if CLONE_NEW_RE.fullmatch(f))
        values["flags"] = "|".join([label, *spaces])
        if result is not None and result > 0:
            values["target"] = result
            ptgid = tgid
            if "CLONE_PARENT" in flags and not thread:
                parent = self.procs.get(tgid)
                ptgid = parent.ppid if parent is not None and parent.ppid is not None else tgid
            self.spawned(no, result, ptgid, thread, t)

    def exec_call(
        self, proc: _Proc, name: str, args: str, result: int | None, errno: str | None, values: dict[str, Any]
    ) -> None:
        values["kind"] = K.EXEC
        parts = split_args(args, 3 if name == "execve" else 5)
        base: str | None = None
        at_cwd = True
        if name == "execveat":
            dirfd, deco = split_fd(parts[0])
            base = deco_path(deco)
            at_cwd = dirfd == "AT_FDCWD"
            parts = parts[1:]
        path: str | None = None
        m = STRING_RE.fullmatch(parts[0]) if parts else None
        if m is not None:
            raw = m.group(1)
            text = unescape(raw) if "\\" in raw else raw
            fdm = kernel_paths.PROC_LINK_RE.match(text)
            if fdm is not None and (fdm.group(3) or fdm.group(4)) and fdm.end() == len(text):
                # exec through an fd: the path as given (PS029), the file behind it in path2
                path = normalise(text)
                real = self.proc_link(proc, text)
                values["path2"] = real if real != text else None
            else:
                path = self.resolve(proc, text, base, at_cwd)
        else:
            self.degraded += 1
        values["path"] = path
        argv: tuple[str, ...] | None = None
        am = ARGV_RE.match(parts[1]) if len(parts) > 1 else None
        if am is not None:
            items = [unescape(s.group(1)) for s in STRING_RE.finditer(am.group(1))]
            if am.group(2):
                items.append("...")
                self.truncated += 1
            argv = tuple(items)
        elif len(parts) > 1 and parts[1].startswith("0x"):
            self.degraded += 1
        values["argv"] = argv
        if name == "execveat" and len(parts) > 3:
            values["flags"] = parts[3]
        if result == 0 and errno is None:
            proc.argv = argv if argv is not None else ()
            proc.exe = path or ""
            proc.execs.append(proc.argv)

    def signal_call(self, name: str, args: str, values: dict[str, Any]) -> None:
        values["kind"] = K.SIGNAL
        parts = split_args(args, 4)
        target: int | None = None
        if name == "pidfd_send_signal":
            deco = split_fd(parts[0])[1]
            if deco and deco.startswith("pid:"):
                target = _int(deco[4:])
            signal = parts[1] if len(parts) > 1 else None
        elif name in ("tgkill", "rt_tgsigqueueinfo"):
            target = _int(parts[0])
            signal = parts[2] if len(parts) > 2 else None
        else:
            target = _int(parts[0])
            if name == "tkill" and target is not None:
                target = self.tgid_of.get(target, target)
            signal = parts[1] if len(parts) > 1 else None
        values["target"] = target
        values["flags"] = signal

    def ptrace_call(self, name: str, args: str, values: dict[str, Any]) -> None:
        values["kind"] = K.PTRACE
        parts = split_args(args, 3)
        if name == "ptrace":
            values["flags"] = parts[0]
            values["target"] = _int(parts[1]) if len(parts) > 1 else None
        elif name == "pidfd_getfd":
            deco = split_fd(parts[0])[1]
            values["target"] = _int(deco[4:]) if deco and deco.startswith("pid:") else None
        else:
            values["target"] = _int(parts[0])

    def privileged_call(self, proc: _Proc, name: str, args: str, values: dict[str, Any]) -> None:
        values["kind"] = K.PRIVILEGED
        values["flags"] = args
        if name in ("mount", "pivot_root"):
            parts = split_args(args, 3)
            m = STRING_RE.fullmatch(parts[1]) if len(parts) > 1 else None
            if m is not None:
                values["path"] = self.resolve(proc, unescape(m.group(1)), None, True)

    def other_call(
        self, proc: _Proc, name: str, args: str, rdeco: str | None, values: dict[str, Any]
    ) -> None:
        values["kind"] = K.OTHER
        if name == "memfd_create":
            m = STRING_RE.match(args)
            path = deco_path(rdeco)
            if path is None and m is not None:
                path = "/memfd:" + unescape(m.group(1))
            values["path"] = path
            values["flags"] = args[m.end() :].lstrip(", ") if m else None
        elif name in ("socket", "socketpair"):
            values["kind"] = K.SOCKET
            values["flags"] = ", ".join(split_args(args, 4)[:3])
        elif name == "pidfd_open":
            values["target"] = _int(split_args(args, 2)[0])
        elif name in ("wait4", "waitid"):
            values["target"] = _reaped(name, args, values["result"], values["errno"])


# What a wait reports without reaping: a stopped or continued child, or WNOWAIT.
_NOT_REAPED = ("WIFSTOPPED", "WIFCONTINUED", "CLD_STOPPED", "CLD_CONTINUED", "CLD_TRAPPED", "WNOWAIT")
_SI_PID = re.compile(r"\bsi_pid=(\d+)")


def _reaped(name: str, args: str, result: int | None, errno: str | None) -> int | None:
    """The child a wait4/waitid reaped (its zombie gone, its pid free), if any: the
    process-explosion judge counts a child until then. ECHILD on a wait for one pid:
    that child is gone already (reaped, or never a zombie under SIGCHLD ignored)."""
    if any(word in args for word in _NOT_REAPED):
        return None
    parts = split_args(args, 3)
    if name == "wait4":
        if result is not None and result > 0:
            return result
        asked = _int(parts[0]) if errno == "ECHILD" else None
        return asked if asked is not None and asked > 0 else None
    if result == 0 and (m := _SI_PID.search(args)) and int(m.group(1)) > 0:
        return int(m.group(1))
    if errno == "ECHILD" and parts[0] == "P_PID" and len(parts) > 1:
        return _int(parts[1])
    return None


def _int(text: str) -> int | None:
    try:
        return int(text, 0) if text[:2] in ("0x", "0X") else int(text)
    except ValueError:
        return None


def _lead_fd(args: str) -> tuple[str, str | None, int]:
    """The first argument as an fd: (fd, decoration or None, index after it)."""
    i = args.find("<")
    comma = args.find(",")
    if i > 0 and (comma < 0 or i < comma) and (args[:i].isdigit() or args[:i] == "AT_FDCWD"):
        end = decoration_end(args, i)
        fd, deco = split_fd(args[:end])
        return fd, deco, end
    end = comma if comma >= 0 else len(args)
    return args[:end], None, end
