"""PS005 for a git configuration (``sandbox/judge/rules/gitconfig.py``): a key git runs
as a command is persistence; an ordinary setting the write holds is not (PS020's)."""

from __future__ import annotations

import random

import pytest

from sandbox.models import EventKind, FsChange, Phase, Severity
from tests.unit.test_redteam8 import _ps005, _word, _write
from tests.unit.test_rules import ev

CONFIGS = ["/home/dev/project/.git/config", "/home/dev/.gitconfig", "/home/dev/.config/git/config"]


@pytest.mark.parametrize(
    "planted",
    [
        "[core]\n\tfsmonitor = {cmd}\n",
        "[core]\n\tsshCommand = {cmd}\n",
        "[alias]\n\tst = !{cmd}\n",
        '[alias]\n\tco = "!{cmd}"\n',
        "[credential]\n\thelper = !{cmd}\n",
        '[filter "lfs"]\n\tsmudge = {cmd}\n',
        "[include]\n\tpath = /tmp/{word}\n",
        "[Core]\n\tFSMonitor = {cmd}\n",
        # s27 hostile read: PS020 LOW before (a key on its header's line, keys not listed)
        "[core] fsmonitor = {cmd}\n",
        "[core]fsmonitor={cmd}\n",
        "[diff]\n\texternal = {cmd}\n",
        "[pager]\n\tlog = {cmd}\n",
        '[difftool "x"]\n\tcmd = {cmd}\n',
        '[mergetool "x"]\n\tcmd = {cmd}\n',
        "[sendemail]\n\tsendmailCmd = {cmd}\n",
        '[gpg "ssh"]\n\tdefaultKeyCommand = {cmd}\n',
        '[protocol "ext"]\n\tallow = always\n',
        '[remote "origin"]\n\turl = ext::sh -c {word}\n',
    ],
)
def test_a_planted_command_is_persistence(planted: str) -> None:
    rng = random.Random()
    text = planted.format(cmd=f"touch /tmp/{_word(rng)}", word=_word(rng))
    assert _ps005(_write(rng.choice(CONFIGS), text, 1)) == [Severity.HIGH]


def test_a_worktree_or_submodule_config_is_a_git_config() -> None:
    """git reads .git/config.worktree (extensions.worktreeConfig) and a submodule's
    .git/modules/NAME/config: not git configurations to the rule before (s27)."""
    rng = random.Random()
    for path in ("/home/dev/project/.git/config.worktree", "/home/dev/project/.git/modules/lib/config"):
        text = f"[core]\n\tfsmonitor = touch /tmp/{_word(rng)}\n"
        assert _ps005(_write(path, text, 1)) == [Severity.HIGH], path


def test_an_ordinary_setting_is_not_persistence() -> None:
    rng = random.Random()
    text = f"[user]\n\tname = {_word(rng)}\n\temail = {_word(rng)}@example.invalid\n[pull]\n\trebase = true\n"
    assert _ps005(_write(rng.choice(CONFIGS), text, 1)) == []


def test_git_s_own_writer_is_judged_by_the_lock_file_it_renames() -> None:
    """``git config k v`` fills ``config.lock`` and renames it onto ``config``."""
    rng = random.Random()
    cfg = rng.choice(CONFIGS)
    rename = ev(EventKind.FILE_RENAME, "rename", path=cfg + ".lock", path2=cfg, seq=5)
    plain = _write(cfg + ".lock", "[core]\n\tbare = false\n", 1)
    assert _ps005([*plain, rename]) == []
    planted = _write(cfg + ".lock", f"[core]\n\thooksPath = /tmp/{_word(rng)}\n", 1)
    assert _ps005([*planted, rename]) == [Severity.HIGH]


def test_bytes_the_trace_did_not_see_are_not_known() -> None:
    """A copy or a rename of an unseen file onto the config: what it holds is unknown."""
    rng = random.Random()
    cfg = rng.choice(CONFIGS)
    copied = ev(EventKind.FILE_RENAME, "rename", path=f"/tmp/{_word(rng)}", path2=cfg, seq=1)
    assert _ps005([copied]) == [Severity.HIGH]


def test_the_diff_finds_a_command_the_trace_missed() -> None:
    rng = random.Random()
    cfg = rng.choice(CONFIGS)
    head = f"[core]\n\tfsmonitor = touch /tmp/{_word(rng)}\n"
    change = FsChange(phase=Phase.IMPORT, path=cfg, change="modified", size=len(head), head=head)
    assert _ps005([], (change,)) == [Severity.HIGH]
    calm = change.model_copy(update={"head": "[user]\n\tname = x\n", "size": 17})
    assert _ps005([], (calm,)) == []
