"""Persistence rules: PS005 (start-up files, schedulers, installed hooks) and PS020
(writes outside the allowed paths)."""

from __future__ import annotations

import posixpath
import re

from sandbox.judge.cienv import RUNNER_FILE_COMMANDS
from sandbox.judge.rules.context import (
    HOME_DIR,
    MAX_EVIDENCE,
    TRACE_DIR,
    WRITE_KINDS,
    Context,
    dedupe,
    exec_name,
    make_finding,
    per_phase,
    written_text,
)
from sandbox.judge.rules.gitconfig import git_config_plants
from sandbox.judge.rules.hooks import decoded_exec, executes, round_hooks_installed
from sandbox.models import (
    Event,
    EventKind,
    Evidence,
    Finding,
    FsChange,
    Observation,
    Phase,
    ProcessInfo,
    Severity,
)

# A module file's forms the import system loads from a sys.path directory: source,
# sourceless bytecode, an extension module (x.so, x.abi3.so, x.cpython-311-….so), and
# the same as a package's __init__.
_LOADABLE = r"(?:/__init__)?(?:\.py|\.pyc|(?:\.[\w-]+)?\.so)$"


PERSISTENCE_PATHS = re.compile(
    "|".join(
        [
            HOME_DIR
            + r"/\.(?:bashrc|bash_profile|bash_login|bash_logout|bash_aliases|profile|zshrc|zprofile|zshenv|"
            r"zlogin|zlogout|cshrc|tcshrc|kshrc|xinitrc|xprofile|xsession|xsessionrc|vimrc|gdbinit|"
            r"tmux\.conf|pam_environment|npmrc|condarc)$",
            # s27 hostile read: what else runs or is trusted at a tool's next start -
            # zsh's and KDE's start-up, a launcher entry, ~/bin (first on Ubuntu's PATH),
            # ssh's config (ProxyCommand runs at every connection), other installers'
            # index settings, and any venv's activate script (the honey .bashrc sources one)
            HOME_DIR
            + r"/\.config/(?:zsh/\.z\w+|plasma-workspace/env/[^/]+|uv/uv\.toml|pypoetry/config\.toml)$",
            HOME_DIR + r"/\.local/share/applications/[^/]+\.desktop$",
            HOME_DIR + r"/bin/[^/]+$",
            HOME_DIR + r"/\.ssh/config$",
            r"/bin/activate(?:\.(?:csh|fish|ps1|nu|bat))?$",
            # pip's site config in any venv (every later install's index), Jupyter's
            # and IPython's Python config under a prefix (run at every start)
            r"/pip\.conf$",
            r"/etc/jupyter/jupyter_\w*config\.py$",
            r"/etc/ipython/ipython_\w*config\.py$",
            # what a developer's next command in the project runs: pytest's conftest
            # (not a package's own, installed in site-packages), direnv, VS Code's tasks
            r"^(?!.*/(?:site|dist)-packages/).*/conftest\.py$",
            r"/\.envrc$",
            r"/\.vscode/tasks\.json$",
            # what a developer's tools run or trust at their next start: an editor's
            # init, IPython's startup scripts and config, Jupyter's config (Python),
            # pip's and distutils' configuration (the index every later install
            # trusts), and a command dropped first on a login shell's PATH
            HOME_DIR + r"/\.config/nvim/init\.(?:vim|lua)$",
            HOME_DIR + r"/\.ipython/profile_[^/]+/(?:startup/[^/]+\.i?py|ipython_\w*config\.py)$",
            HOME_DIR + r"/\.jupyter/jupyter_\w*config\.py$",
            HOME_DIR + r"/(?:\.config/pip/pip\.conf|\.pip/pip\.conf|\.pydistutils\.cfg)$",
            HOME_DIR + r"/\.local/bin/[^/]+$",
            HOME_DIR + r"/\.config/(?:autostart|systemd/user|fish|environment\.d)(?:/|$)",
            HOME_DIR + r"/\.local/share/systemd(?:/|$)",
            HOME_DIR + r"/\.ssh/authorized_keys2?$",
            r"^/etc/(?:systemd|cron[^/]*|init\.d|rc\.local|profile\.d|profile$|bash\.bashrc$|ld\.so\.preload$"
            r"|environment$|sudoers)",
            r"^/var/spool/cron(?:/|$)",
            # only where `site` imports them: the top of a sys.path directory (a copy
            # vendored deep in a package, as debugpy ships, never runs at start-up), in
            # any form the import system loads (a sourceless .pyc, an extension module)
            r"/(?:site|dist)-packages/(?:sitecustomize|usercustomize)" + _LOADABLE,
            r"^/usr(?:/local)?/lib/python3[.\d]*/(?:sitecustomize|usercustomize)" + _LOADABLE,
            r"/\.git/hooks/[^/]+$",
            # Windows' Startup folders as the Windows pass lays them out in the honey tree
            # (%APPDATA%\Microsoft\Windows\Start Menu\Programs\Startup, ProgramData's):
            # a program dropped there runs at every logon
            r"/[Mm]icrosoft/[Ww]indows/[Ss]tart [Mm]enu/[Pp]rograms/[Ss]tart[Uu]p/[^/]",
            # a CI job's GITHUB_ENV / GITHUB_PATH files (the ci pass's): every later step
            # of the job starts with what they hold (LD_PRELOAD=…, a PATH entry first)
            RUNNER_FILE_COMMANDS,
        ]
    )
)


PERSISTENCE_TOOLS = frozenset({"crontab", "systemctl", "at", "launchctl", "update-rc.d", "schtasks"})


def rule_persistence(ctx: Context) -> list[Finding]:
    hits = []
    for e in ctx.events:
        if e.kind in WRITE_KINDS and e.kind is not EventKind.FILE_DELETE:
            target = e.path2 if e.kind is EventKind.FILE_RENAME and e.path2 else e.path
            if (target and PERSISTENCE_PATHS.search(target)) or (
                target and target.endswith(".pth") and e.phase is not Phase.INSTALL
            ):
                hits.append(e)
            elif e.kind is EventKind.FILE_LINK and e.path2 and PERSISTENCE_PATHS.search(e.path2):
                hits.append(e)  # a link to a start-up file: writes through it hide the path
        elif e.kind is EventKind.EXEC and exec_name(e) in PERSISTENCE_TOOLS:
            hits.append(e)
    hits += tampering(ctx)
    # Start-up hooks shipped in the wheel: pip (harness) writes them during install.
    hooks = _installed_hooks(ctx.obs.venv)
    hits += [
        e
        for e in ctx.harness
        if e.phase is Phase.INSTALL and e.kind is EventKind.FILE_WRITE and e.path and hooks.match(e.path)
    ]
    diffed = diff_persistence(ctx.obs.fs_changes, ctx.obs.venv)
    planted, planted_diff = git_config_plants(ctx)
    hits += planted
    diffed += planted_diff
    # a .pth a round's wheel installs, found afterwards with exactly the wheel's bytes,
    # is that dependency's (pip wrote it); anything else of that name stays a finding
    own = round_installed(ctx.obs)
    hits = [e for e in hits if not (own and (e.phase, _written(e)) in own)]
    diffed = [c for c in diffed if (c.phase, c.path) not in own]
    paths_only = path_only_pths(ctx)
    quiet = [e for e in hits if _written(e) in paths_only]
    quiet_diff = [c for c in diffed if c.path in paths_only]
    hits = [e for e in hits if _written(e) not in paths_only]
    diffed = [c for c in diffed if c.path not in paths_only]
    out = _path_only_findings(ctx, quiet, quiet_diff, paths_only)
    for phase in sorted({e.phase for e in hits} | {c.phase for c in diffed}, key=lambda p: p.order):
        uniq = dedupe([e for e in hits if e.phase is phase], lambda e: (e.pid, e.path, e.path2, e.argv))
        changes = [c for c in diffed if c.phase is phase]
        places = sorted({(e.path2 or e.path or exec_name(e)) for e in uniq} | {c.path for c in changes})
        out.append(
            make_finding(
                "PS005",
                phase,
                f"persistence: {', '.join(places[:6])}",
                # the trace's evidence first; the diff's after it (and alone when the trace missed it)
                [
                    *[ctx.evidence(e) for e in uniq][: MAX_EVIDENCE - min(len(changes), 5)],
                    *map(_diff_evidence, changes),
                ],
            )
        )
    return out


# A start-up module ``site`` imports from any sys.path entry, in any form the import
# system loads (source, sourceless .pyc, extension module, package): written anywhere,
# no .pth is path-only (a folder a .pth adds can reach it through "..", a link, or an
# archive on the path).
_MADE = (EventKind.FILE_WRITE, EventKind.FILE_RENAME, EventKind.FILE_LINK)
_HOOK_FILE = re.compile(r"/(?:site|user)customize(?:\.[^/]*|/__init__\.[^/]*)?$")


def path_only_pths(ctx: Context) -> dict[str, list[str]]:
    """The ``.pth`` files the candidate wrote whose every byte is known and none of
    whose lines ``site`` runs (no ``import`` line): a plugin system's search path, not
    start-up code. Mapped to the directories they add. The content is what the trace's
    writes say and what the snapshot diff found after the phase: a file rewritten in
    place (a seek, a hard link) shows the diff other bytes, and both must be complete
    and run nothing. None qualifies when the candidate wrote a start-up module
    (``sitecustomize``/``usercustomize``, any form) anywhere, a line names a file or
    link it wrote (an archive ``zipimport`` reads modules from) or a path through a
    link it made, or it put a module, a link or distribution metadata into a folder a
    line adds — those run at every start or at the next import of that name."""
    chunks: dict[str, list[str]] = {}
    unknown: set[str] = set()
    for e in ctx.events:
        if e.kind is not EventKind.FILE_WRITE or not (e.path or "").endswith(".pth"):
            continue
        if e.syscall.startswith(("write", "pwrite")):
            text = written_text(e)
            if text is None:
                unknown.add(e.path or "")
            else:
                chunks.setdefault(e.path or "", []).append(text)
        elif e.syscall not in ("open", "openat", "openat2", "creat"):
            unknown.add(e.path or "")  # written some other way (a copy, a rename onto it)
    found: dict[str, list[str]] = {}
    for c in ctx.obs.fs_changes:
        if not c.path.endswith(".pth"):
            continue
        if c.size and len(c.head.encode()) < c.size:
            unknown.add(c.path)  # the diff kept only the head: the rest is unseen
        else:
            found.setdefault(c.path, []).append(c.head)
    out: dict[str, list[str]] = {}
    for path in chunks.keys() | found.keys():
        texts = ["".join(chunks.get(path, [])), *found.get(path, [])]
        # bytes that are not plain text (a replaced or a non-ASCII one) make the byte
        # counts above unreliable and site's decoding locale-dependent: not known
        if path in unknown or any(executes(t) or not _PLAIN.fullmatch(t) for t in texts):
            continue
        site = path.rsplit("/", 1)[0]
        out[path] = sorted(
            {
                posixpath.normpath(line if line.startswith("/") else f"{site}/{line}")
                for text in texts
                for line in (raw.strip() for raw in text.splitlines())
                if line and not line.startswith("#")
            }
        )
    named = {d for dirs in out.values() for d in dirs}
    written = {
        posixpath.normpath(p)
        for p in [
            *(_written(e) for e in ctx.events if e.kind in _MADE and not e.errno),
            *(c.path for c in ctx.obs.fs_changes),
        ]
        if p
    }
    # (a __pycache__ copy is loaded only beside its source)
    if named & written or any(_HOOK_FILE.search(p) and "/__pycache__/" not in p for p in written):
        return {}
    links = {posixpath.normpath(e.path) for e in ctx.events if e.kind is EventKind.FILE_LINK and e.path}
    for d in named:
        # code or distribution metadata the run put in a folder it adds (a module named
        # like one another package imports if present, a dist-info whose entry points a
        # plugin host loads), or a link on the way to it: code for every interpreter
        inside = [p for p in written if p.startswith(d + "/")]
        if any(_PLANTED.search(p) or p in links for p in inside) or any(
            d == w or d.startswith(w + "/") for w in links
        ):
            return {}
    return out


_PLAIN = re.compile(r"[\t\n\r\x20-\x7e]*")
_PLANTED = re.compile(r"\.(?:py|pyc|so)$|\.(?:dist|egg)-info(?:/|$)|\.egg-link$")


def _path_only_findings(
    ctx: Context, hits: list[Event], changes: list[FsChange], paths: dict[str, list[str]]
) -> list[Finding]:
    out = []
    for phase in sorted({e.phase for e in hits} | {c.phase for c in changes}, key=lambda p: p.order):
        mine = [e for e in hits if e.phase is phase]
        theirs = [c for c in changes if c.phase is phase]
        files = sorted({_written(e) for e in mine} | {c.path for c in theirs})
        dirs = sorted({d for f in files for d in paths.get(f, [])})
        out.append(
            make_finding(
                "PS005",
                phase,
                f"a .pth adds {', '.join(dirs[:4]) or 'nothing'} to every interpreter's sys.path: "
                f"{', '.join(files[:4])} (no line of it runs at start-up)",
                [*[ctx.evidence(e) for e in mine][:MAX_EVIDENCE], *map(_diff_evidence, theirs[:2])],
                Severity.LOW,
            )
        )
    return out


def diff_persistence(changes: tuple[FsChange, ...], venv: str) -> list[FsChange]:
    """Persistence files the snapshot diff shows appeared or changed: start-up files,
    schedulers, git hooks, ``sitecustomize``/``usercustomize`` and venv activate scripts
    wherever they are, and ``.pth`` files no installed wheel's RECORD lists (a wheel's
    own ``.pth`` is judged from its content by the hook rules)."""
    hooks = _installed_hooks(venv)
    return [
        c
        for c in changes
        if PERSISTENCE_PATHS.search(c.path)
        or hooks.match(c.path)
        or (c.path.endswith(".pth") and not c.installed)
    ]


def _written(e: Event) -> str:
    return (e.path2 if e.kind is EventKind.FILE_RENAME else e.path) or ""


def round_installed(obs: Observation) -> set[tuple[Phase, str]]:
    """(phase, path) of the ``.pth`` files a round's wheel installed
    (:func:`~sandbox.judge.rules.hooks.round_hooks_installed`) that are no start-up
    payload: one that executes decoded code stays persistence. A candidate that writes
    the same name with other bytes, or rewrites the wheel's, is not covered."""
    return {
        (c.phase, c.path)
        for c, h in round_hooks_installed(obs)
        if not (executes(h.text) and decoded_exec(h.text))
    }


def _diff_evidence(c: FsChange) -> Evidence:
    return Evidence(
        phase=c.phase,
        pid=0,
        time=0.0,
        syscall="fsdiff",
        path=c.path,
        bytes=c.size,
        data=c.head[:512] or None,
        detail=f"from the filesystem diff: {c.change} after the phase (mode {c.mode or '?'}, "
        f"sha256 {c.sha256 or 'not hashed'})",
    )


_VENV_CORE = re.compile(r"/bin/(?:pip[\d.]*|python[\d.]*)")
_RECORD = re.compile(r"/(?:site|dist)-packages/[^/]+\.dist-info/RECORD$")
# Code another distribution installed: a module (source, extension) or a venv command.
_CODE = re.compile(r"\.(?:py|so)$|\.[\w-]+\.so$")


def tampering(ctx: Context) -> list[Event]:
    """The candidate's writes, after install, to the code of another installed
    package (a module outside its own top-level names) or to a command of the venv
    (``bin/pip``, ``bin/python``): it runs whenever that package or command does, and
    stays after the candidate is uninstalled. Bytecode caches are Python's own."""
    inv, venv = ctx.obs.inventory, ctx.obs.venv
    site = (inv.site_packages or "").rstrip("/")
    if not site and not venv:
        return []
    own = {m.split(".", 1)[0] for m in inv.modules}
    procs = {(p.pass_name, p.phase, p.pid): p for p in ctx.obs.processes}
    # a phase whose trace lost records may have lost a harness pip's fork or exec too:
    # pip then reads as the candidate's, and its own RECORD and bin writes are no proof
    # (such a run is incomplete, never clean; auto vets it again under strace)
    lossy = {(p.pass_name, p.phase) for p in ctx.obs.phases if not p.trace_complete}
    out = []
    for e in ctx.events:
        if e.errno or e.kind not in _MADE or _in_pip_step(e, procs, venv):
            continue
        target = _written(e)
        record = _RECORD.search(target) is not None
        if (e.pass_name, e.phase) in lossy and (record or e.phase is Phase.INSTALL):
            continue
        if record:
            # an installed distribution's file list, in any phase: a line added there
            # makes a planted file look installed (the snapshot diff trusts RECORDs),
            # and pip uninstalls what it lists. Only pip writes it (harness).
            out.append(e)
            continue
        if e.phase is Phase.INSTALL:
            # setup.py may put its dependencies' commands in bin (setup.py install),
            # never pip or the interpreter itself (s27: rewritten at install, no finding)
            if venv and target.startswith(venv + "/") and _VENV_CORE.fullmatch(target[len(venv) :]):
                out.append(e)
            continue
        if venv and target.startswith(f"{venv}/bin/") and "/" not in target[len(venv) + 5 :]:
            out.append(e)
            continue
        if not own or not site or not target.startswith(site + "/") or "/__pycache__/" in target:
            continue
        rel = target[len(site) + 1 :]
        top = rel.split("/", 1)[0]
        name = top.split(".", 1)[0]
        if (
            "/" in rel
            and name not in own
            and not top.endswith((".dist-info", ".egg-info"))
            and _CODE.search(rel)
        ):
            out.append(e)
    return out


def _in_pip_step(e: Event, procs: dict[tuple[str, Phase, int], ProcessInfo], venv: str) -> bool:
    """Whether *e* comes from a harness pip step's tree (a round's or the kit's install):
    its root process (the step's own, no parent in the trace, which the candidate
    cannot be) runs the venv's pip install from the stage. Such a pip reads code the
    candidate's imports cached (a ``.pyc``) and loses its harness label
    (:mod:`sandbox.judge.hooks`); what it installs is still the staged wheels."""
    p = procs.get((e.pass_name, e.phase, e.pid))
    for _ in range(64):
        if p is None or p.ppid is None:
            break
        p = procs.get((e.pass_name, e.phase, p.ppid))
    if p is None or p.ppid is not None or not p.argv or p.argv[0] != f"{venv}/bin/python":
        return False
    args = [a for a in p.argv[1:] if a != "-P"]
    return args[:5] == ["-m", "pip", "install", "--no-index", "--find-links"]


def _installed_hooks(venv: str) -> re.Pattern[str]:
    """Files that run at every interpreter start or venv activation when installed."""
    v = re.escape(venv)
    return re.compile(
        rf"^{v}/lib/python3\.\d+/site-packages/(?:sitecustomize|usercustomize){_LOADABLE}"
        rf"|^{v}/bin/activate(?:\.[a-z]+|_this\.py)?$"
    )


_WRITABLE = ("/tmp/", "/var/tmp/", "/dev/", "/proc/self/", "/proc/thread-self/", "/run/user/", "/memfd:")


def rule_write_outside(ctx: Context) -> list[Finding]:
    venv, home = ctx.obs.venv, ctx.obs.home
    allowed_roots = (venv + "/", home + "/.cache/", *_WRITABLE)
    hits = []
    for e in ctx.events:
        if e.kind not in WRITE_KINDS or e.kind is EventKind.FILE_CHMOD or ctx.is_allowed(e):
            continue
        target = e.path2 if e.kind is EventKind.FILE_RENAME and e.path2 else e.path
        if (
            not target
            or target.startswith(allowed_roots)
            or re.match(r"^/proc/\d+/(?:oom_score_adj|fd/)", target)
        ):
            continue
        if PERSISTENCE_PATHS.search(target) or target.startswith(TRACE_DIR):
            continue  # judged by PS005 / PS007
        hits.append(e)
    out = []
    for phase, evs in per_phase(hits).items():
        uniq = dedupe(evs, lambda e: (e.path, e.path2, e.kind))
        places = sorted({e.path2 or e.path or "" for e in uniq})
        out.append(
            make_finding(
                "PS020",
                phase,
                f"wrote outside allowed paths: {', '.join(places[:6])}",
                [ctx.evidence(e) for e in uniq],
            )
        )
    return out
