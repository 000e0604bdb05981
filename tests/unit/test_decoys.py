"""Decoy daemons (issue 11, tells): PID 1 forks idle root children named like a
workstation's daemons, so a process count or a look for familiar names finds a
machine, not six processes. Run here on the host (our own code, nothing of a
candidate's): each decoy really carries the kernel comm and the cmdline it claims."""

from __future__ import annotations

import os
import signal
import time

from sandbox.agent.init import DECOYS, decoy_names, spawn_decoys


def test_decoy_names_follow_the_kernels_comm() -> None:
    assert decoy_names("/lib/systemd/systemd-journald") == (
        b"systemd-journal",
        b"/lib/systemd/systemd-journald",
    )
    assert decoy_names("sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups")[0] == b"sshd"
    assert all(len(decoy_names(d)[0]) <= 15 for d in DECOYS)
    assert not any(w in d.lower() for d in DECOYS for w in ("docker", "sandbox", "container", "sleep"))


def test_spawned_decoys_show_their_names_and_stay_idle() -> None:
    pids = spawn_decoys(3)
    try:
        assert len(pids) == 3
        time.sleep(0.5)
        seen = {}
        for pid in pids:
            with open(f"/proc/{pid}/comm", "rb") as fh:
                comm = fh.read().strip()
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read().split(b"\0")[0]
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
            seen[pid] = (comm, cmdline, state)
        claimed = {decoy_names(d) for d in DECOYS}
        for comm, cmdline, state in seen.values():
            assert state == "S"  # asleep in pause()
            assert any(c == comm and cl.startswith(cmdline) for c, cl in claimed), (comm, cmdline)
        assert len({cl for _, cl, _ in seen.values()}) == 3  # three different daemons
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
