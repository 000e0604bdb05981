"""The agent takes the traced command, not one of strace's self-test children, for a step's
main process (a wrong pick started the window early and made the command a PS006 survivor)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import psutil
import pytest

from sandbox.agent.main import _first_child


def test_first_child_is_the_exec_d_command_never_a_strace_self_test() -> None:
    strace = shutil.which("strace")
    assert strace, "strace is part of the CI machine (see .ci/run)"
    picked: list[str] = []
    for _ in range(10):
        proc = subprocess.Popen(
            [strace, "-f", "--seccomp-bpf", "-e", "trace=openat", "-o", "/dev/null", "--", "sleep", "0.3"],
            stderr=subprocess.DEVNULL,
        )
        try:
            main = None
            end = time.monotonic() + 5
            while main is None and time.monotonic() < end and proc.poll() is None:
                main = _first_child(proc.pid)  # polled as the agent does, from the first instant
            assert main is not None
            picked.append(psutil.Process(main).exe())
        finally:
            proc.wait(10)
    assert set(picked) == {os.path.realpath(shutil.which("sleep") or "/usr/bin/sleep")}, picked


class _Kid:
    def __init__(self, pid: int, cmdline: list[str] | Exception) -> None:
        self.pid = pid
        self._cmdline = cmdline

    def cmdline(self) -> list[str]:
        if isinstance(self._cmdline, Exception):
            raise self._cmdline
        return self._cmdline


def test_exiting_or_unreadable_children_are_never_the_main_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exiting self-test child has an empty cmdline (and psutil answers "" for its exe)."""
    strace = ["strace", "-f", "--", "setpriv", "python"]
    kids = [
        _Kid(27, []),  # exiting self-test child
        _Kid(28, strace),  # live self-test child
        _Kid(29, psutil.ZombieProcess(29)),
        _Kid(30, ["setpriv", "--reuid=1000", "--", "python"]),
    ]

    class FakeProcess:
        def __init__(self, pid: int) -> None:
            self.pid = pid

        def cmdline(self) -> list[str]:
            return strace

        def children(self) -> list[_Kid]:
            return kids

    monkeypatch.setattr(psutil, "Process", FakeProcess)
    assert _first_child(26) == 30
    kids.pop()
    assert _first_child(26) is None  # not exec'd yet: ask again at the next poll
