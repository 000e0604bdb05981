"""Commands planted in a git configuration: persistence that runs at the developer's
next git command (``core.fsmonitor`` at every ``git status``, ``core.sshCommand`` at
every fetch, an ``!`` alias, a credential helper, a filter or diff driver …).

A package has no business writing these files at all, but a write alone is PS020's
(LOW): what makes it persistence is a key whose value git runs, or bytes the trace
did not see (a copy, a rename onto the file, a capture cut short)."""

from __future__ import annotations

import re

from sandbox.judge.rules.context import HOME_DIR, Context, written_text
from sandbox.models import Event, EventKind, FsChange

GIT_CONFIG = re.compile(
    HOME_DIR + r"/(?:\.gitconfig|\.config/git/config)$|/\.git/(?:config|config\.worktree|modules/.+/config)$"
)
# Keys whose values git executes (git-config(1)); every key of a [pager] section (a
# command's pager); an include of another file (which may hold them); any value git
# runs as a shell command ("!" of an alias) or through the ext:: transport.
_RUN_KEYS = frozenset(
    {
        *("fsmonitor", "sshcommand", "hookspath", "pager", "editor", "askpass", "gitproxy", "textconv"),
        *("clean", "smudge", "process", "helper", "command", "driver", "program", "browser", "uploadpack"),
        *("receivepack", "packobjectshook", "alternaterefscommand", "external", "cmd", "sendmailcmd"),
        *("defaultkeycommand", "allow"),
    }
)
_SECTION = re.compile(r'\s*\[\s*([\w.-]+)(?:\s+"(?:[^"\\]|\\.)*")?\s*\]')


def runs_command(text: str) -> bool:
    """Whether git config *text* plants something git runs, read as git reads it: a
    section header may share its line with a key (``[core] fsmonitor = …``), keys are
    case-insensitive, a fragment without its header still names its key."""
    section = ""
    for line in text.splitlines():
        while (m := _SECTION.match(line)) is not None:  # a header, maybe a key after it
            section = m.group(1).lower()
            if section in ("include", "includeif"):
                return True
            line = line[m.end() :]
        key, eq, value = line.partition("=")
        key = key.strip().lower()
        if not eq or not key or key.startswith(("#", ";")):
            continue
        v = value.strip().strip('"').strip()
        if key.rsplit(".", 1)[-1] in _RUN_KEYS or section == "pager" or v.startswith(("!", "ext::")):
            return True
    return False


_WRITES = ("write", "pwrite")
_OPENS = ("open", "openat", "openat2", "creat")


def git_config_plants(ctx: Context) -> tuple[list[Event], list[FsChange]]:
    """The candidate's writes to a git configuration that plant a command (or whose
    bytes are unknown), and the snapshot diff's changed git configurations that hold one."""
    texts: dict[str, list[str | None]] = {}
    for e in ctx.events:
        if e.kind is EventKind.FILE_WRITE and e.path and e.syscall.startswith(_WRITES):
            texts.setdefault(e.path, []).append(written_text(e))
    hits = []
    for e in ctx.events:
        if e.errno or e.kind not in (EventKind.FILE_WRITE, EventKind.FILE_RENAME, EventKind.FILE_LINK):
            continue
        target = (e.path2 if e.kind is not EventKind.FILE_WRITE else e.path) or ""
        if not GIT_CONFIG.search(target):
            continue
        if e.kind is EventKind.FILE_WRITE and e.syscall.startswith(_OPENS):
            continue  # opened for writing: judged by what is written through it
        # what was written to the file, or to the file renamed onto it (git's own
        # writer fills config.lock and renames it)
        source = e.path or "" if e.kind is EventKind.FILE_RENAME else target
        seen = texts.get(source, []) + texts.get(source + ".lock", [])
        if e.kind is EventKind.FILE_LINK or not seen or any(t is None or runs_command(t) for t in seen):
            hits.append(e)
    # the diff keeps a file's head: a command in it, or a change the trace never saw
    # written past it, counts
    traced = {(e.path2 if e.kind is not EventKind.FILE_WRITE else e.path) for e in ctx.events}
    changes = [
        c
        for c in ctx.obs.fs_changes
        if GIT_CONFIG.search(c.path)
        and (runs_command(c.head) or (len(c.head.encode()) < c.size and c.path not in traced))
    ]
    return hits, changes
