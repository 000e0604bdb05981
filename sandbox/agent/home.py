"""Setup's helpers: a lived-in HOME, the project's venv, the run's CA, a workstation's look."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

from . import fsdiff, protocol, sinkhole, trust
from .common import KIT_PREFIX, OUT, VENV_TEMPLATE, site_packages

HOME_FILES = {
    ".bashrc": "# ~/.bashrc: executed by bash(1) for non-login shells.\n"
    "case $- in *i*) ;; *) return;; esac\nHISTCONTROL=ignoreboth\nshopt -s histappend\n"
    "HISTSIZE=1000\nHISTFILESIZE=2000\nalias ll='ls -alF'\nalias gs='git status'\n"
    "export EDITOR=nano\n[ -f ~/.venv/bin/activate ] && . ~/.venv/bin/activate\n",
    ".profile": "# ~/.profile: executed by the command interpreter for login shells.\n"
    'if [ -n "$BASH_VERSION" ] && [ -f "$HOME/.bashrc" ]; then . "$HOME/.bashrc"; fi\n'
    'if [ -d "$HOME/.local/bin" ] ; then PATH="$HOME/.local/bin:$PATH"; fi\n',
    ".bash_history": "cd project\ngit pull\nsource .venv/bin/activate\npip install -r requirements.txt\n"
    "pytest -q\ngit status\ngit commit -am 'fix flaky test'\ngit push\nls -la\nvim app/settings.py\n",
    ".gitconfig": "[user]\n\tname = {name}\n\temail = {user}@{domain}\n[pull]\n\trebase = true\n"
    "[init]\n\tdefaultBranch = main\n",
}


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    # chown(1) walks the ~1,700 files of HOME (the venv) several times faster than
    # a Python loop; the loop stays as the fallback.
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        if subprocess.run(["chown", "-hR", f"{uid}:{gid}", "--", str(root)], timeout=120).returncode == 0:
            return
    os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def start_venv_copy(dest: Path) -> subprocess.Popen[bytes] | None:
    """Start copying the pre-built venv template to *dest* in the background
    (``cp -a`` copies its ~1,700 files 2 to 4 times faster than shutil.copytree; setup
    prepares HOME meanwhile). :func:`copy_venv` finishes it."""
    try:
        return subprocess.Popen(["cp", "-a", "--", str(VENV_TEMPLATE), str(dest)], stdin=subprocess.DEVNULL)
    except OSError:
        return None


def copy_venv(dest: Path, started: subprocess.Popen[bytes] | None = None) -> None:
    """Copy the pre-built venv template (or finish the copy :func:`start_venv_copy`
    started) and point its scripts' shebangs at *dest*."""
    if started is not None and started.wait() != 0:
        shutil.rmtree(dest, ignore_errors=True)
        started = None
    if started is None:
        shutil.copytree(VENV_TEMPLATE, dest, symlinks=True)
    old, new = str(VENV_TEMPLATE).encode(), str(dest).encode()
    for script in (dest / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if old in data[:4096]:
            script.write_bytes(data.replace(old, new))
    cfg = dest / "pyvenv.cfg"
    if cfg.exists():
        cfg.write_text(cfg.read_text().replace(str(VENV_TEMPLATE), str(dest)))
    _pip_keeps_stdin(dest)


def install_kit(
    venv: Path, uid: int, gid: int, prefix: Path = KIT_PREFIX, pids: list[int] | None = None
) -> list[str]:
    """Put the image's developer kit (a ``pip install --prefix`` tree made at image
    build, see images/kit/) into *venv* as if the developer had pip-installed it;
    returns the distributions it added. The copy runs as the candidate's uid (the venv
    is theirs by now, and root here lacks CAP_DAC_OVERRIDE), before any of the
    candidate's code exists; it copies files the image build installed, nothing runs.
    The copying processes' pids go to *pids*: the eBPF recorder sees them (candidate
    uid) and must not take their writes into the venv for the candidate's."""
    drop = protocol.privilege_drop(uid, gid)
    added: list[str] = []

    def run(argv: list[str]) -> None:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        if pids is not None:
            pids.append(proc.pid)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        if code != 0:
            raise subprocess.CalledProcessError(code, argv)

    for src_dir, dest_dir in ((site_packages(prefix), site_packages(venv)), (prefix / "bin", venv / "bin")):
        names = sorted(os.listdir(src_dir)) if src_dir.is_dir() else []
        if not names:
            continue
        cp = ["cp", "-R", "-P", "--preserve=mode,timestamps", "--", *(str(src_dir / n) for n in names)]
        run([*drop, *cp, str(dest_dir)])
        added += [n.removesuffix(".dist-info").rsplit("-", 1)[0] for n in names if n.endswith(".dist-info")]
        if dest_dir.name == "bin":  # the scripts' shebangs name the template's interpreter
            sed = [
                "sed",
                "-i",
                f"1s|^#!{VENV_TEMPLATE}/|#!{venv}/|",
                "--",
                *(str(dest_dir / n) for n in names),
            ]
            run([*drop, *sed])
    return sorted(added)


def _pip_keeps_stdin(venv: Path) -> None:
    """pip runs setup.py / build hooks with a closed stdin pipe, so ``input()`` there
    raises EOFError; a developer's terminal answers. Let the hooks inherit pip's
    stdin (the step's pipe of answers). Harness-side only: pip is ours."""
    for path in venv.glob("lib/python*/site-packages/pip/_internal/utils/subprocess.py"):
        text = path.read_text()
        patched = text.replace(
            "            stdin=subprocess.PIPE,\n", "            stdin=None,\n", 1
        ).replace("        assert proc.stdin\n        proc.stdin.close()\n", "", 1)
        if patched != text:
            path.write_text(patched)
            for cached in path.parent.glob("__pycache__/subprocess.*.pyc"):
                cached.unlink()


def trust_ca(net: sinkhole.Setup, venv: Path) -> None:
    """The run's CA (made by the sinkhole daemon) into the system store and the
    Python bundles (see trust.py); what was done goes to sinkhole.json."""
    t0 = time.monotonic()
    tls: dict[str, Any] = net.info.setdefault("tls", {})
    state = trust.wait_state(5.0)
    if not state.get("ca_pem"):
        tls.update(enabled=False, problems=[state.get("error", "no CA")])
        return
    problems = trust.install_system(state["ca_pem"], state["stem"], state["hash"])
    patched, more = trust.patch_bundles(trust.python_roots(venv), state["ca_pem"])
    tls.update(
        enabled=True,
        ca=state["stem"],
        bundles=patched,
        problems=problems + more,
        seconds=round(time.monotonic() - t0, 3),
    )


def patch_venv_bundles(plan: dict[str, Any]) -> None:
    """Before a phase that follows install: certifi and friends the install brought
    now trust the CA too (their files belong to the candidate: see trust.append_ca)."""
    state = trust.load_state()
    if state is None:
        return
    try:
        patched, problems = trust.patch_bundles(trust.python_roots(Path(plan["venv"])), state["ca_pem"])
    except Exception as exc:  # never the reason a phase fails
        patched, problems = [], [f"{type(exc).__name__}: {exc}"]
    if patched or problems:
        with contextlib.suppress(OSError), (OUT / "trust.jsonl").open("a") as fh:
            fh.write(json.dumps({"t": time.time(), "patched": patched, "problems": problems}) + "\n")
    if patched and plan.get("evidence"):
        # our own change: the evidence diff must not show it as the next phase's doing
        snap = fsdiff.load(OUT)
        for path in patched:
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if path in snap:
                    snap[path] = [st.st_size, st.st_mtime_ns, st.st_mode]
        fsdiff.save(OUT, snap)


def _git_checkout(project: Path, fmt: dict[str, str]) -> None:
    """A bare-bones .git so that the project looks like a clone (stealers read remotes)."""
    git = project / ".git"
    for sub in ("objects/info", "objects/pack", "refs/heads", "refs/tags", "info"):
        (git / sub).mkdir(parents=True, exist_ok=True)
    _write(git / "HEAD", "ref: refs/heads/main\n")
    _write(git / "description", "Unnamed repository; edit this file 'description' to name the repository.\n")
    _write(git / "info" / "exclude", "# git ls-files --others --exclude-from=.git/info/exclude\n")
    _write(
        git / "config",
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n"
        '\tlogallrefupdates = true\n[remote "origin"]\n'
        f"\turl = git@github.com:{fmt['user']}/service.git\n"
        '\tfetch = +refs/heads/*:refs/remotes/origin/*\n[branch "main"]\n\tremote = origin\n'
        "\tmerge = refs/heads/main\n",
    )


ETC_HOSTS = """127.0.0.1\tlocalhost
127.0.1.1\t{hostname}

# The following lines are desirable for IPv6 capable hosts
::1     localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
"""


def look_like_a_workstation(plan: dict[str, Any]) -> list[str]:
    """Remove what says "container" where root can: /.dockerenv (Docker adds it to
    every container's init layer, whatever the image holds), and Docker's
    /etc/hosts and resolv.conf (files Docker bind-mounts per container: writing
    them changes only this container's copies). Returns what could not be done."""
    problems = []
    try:
        os.unlink("/.dockerenv")
    except FileNotFoundError:
        pass
    except OSError as exc:
        problems.append(f"/.dockerenv: {exc.strerror}")
    net = plan.get("sinkhole", {}).get("net", {})
    files = {"/etc/hosts": ETC_HOSTS.format(hostname=plan.get("hostname", "localhost"))}
    if net.get("gateway"):
        files["/etc/resolv.conf"] = f"# Generated by NetworkManager\nnameserver {net['gateway']}\n"
    for path, text in files.items():
        try:
            # a bind mount (plain runc) or a file of the root (the runc wrapper's copy):
            # rewrite in place, never rename over it
            with open(path, "w") as fh:
                fh.write(text)
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror}")
    return problems


def planted_inodes(plan: dict[str, Any]) -> list[list[int | str]]:
    """``[kernel dev_t, inode, path]`` of each planted file in HOME now (the dotfiles and
    the honeytokens): the eBPF decoder names an open by the file the kernel opened,
    whatever path the caller's memory showed when the call returned. Root reads them
    through CAP_DAC_READ_SEARCH; ``st_dev`` is the user ABI's encoding, the kernel's
    ``dev_t`` is ``major << 20 | minor``."""
    home = Path(plan["home"])
    out: list[list[int | str]] = []
    for rel in (*HOME_FILES, *plan.get("home_files", {}), *plan.get("home_blobs", {})):
        path = home / rel
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            out.append([os.major(st.st_dev) << 20 | os.minor(st.st_dev), st.st_ino, str(path)])
    return out
