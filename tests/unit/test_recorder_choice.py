"""Which recorder a run uses: ``auto`` by default, eBPF only where it is proven to attach."""

from __future__ import annotations

import pytest

from sandbox.errors import InputError
from sandbox.judge.profiles import load_profile
from sandbox.runner import ebpf_recorder
from sandbox.runner.ebpf_recorder import EbpfSupport
from sandbox.runner.plan import RECORDER_ENV, recorder_choice, resolve_recorder, run_options


def _host(monkeypatch: pytest.MonkeyPatch, *, usable: bool, proven: bool, proof_ok: bool) -> list[str]:
    """Stand in for the host's facts (the seam: ebpf_support and prove); returns the
    list of live proofs made."""
    proofs: list[str] = []

    def support(*, mount: bool = False, proof: bool = True) -> EbpfSupport:
        return EbpfSupport(
            root=usable,
            bpftrace="/usr/bin/bpftrace",
            tracefs=True,
            btf=True,
            tracepoints=True,
            x86_64=True,
            proven=proven and proof,
        )

    def prove(timeout: float = 120.0) -> tuple[bool, str]:
        proofs.append("attach")
        return proof_ok, "attached" if proof_ok else "failed"

    monkeypatch.setattr(ebpf_recorder, "ebpf_support", support)
    monkeypatch.setattr(ebpf_recorder, "prove", prove)
    monkeypatch.delenv(RECORDER_ENV, raising=False)
    return proofs


def test_the_default_is_auto_and_the_environment_overrides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RECORDER_ENV, raising=False)
    assert recorder_choice() == "auto"
    monkeypatch.setenv(RECORDER_ENV, "strace")
    assert recorder_choice() == "strace"
    assert recorder_choice("ebpf") == "ebpf"  # the command line wins
    monkeypatch.setenv(RECORDER_ENV, "ptrace")
    with pytest.raises(InputError):
        recorder_choice()


def test_auto_uses_a_proven_ebpf_and_marks_the_run_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    proofs = _host(monkeypatch, usable=True, proven=True, proof_ok=True)
    assert resolve_recorder() == "ebpf"
    options = run_options(load_profile("default"))
    assert options.recorder == "ebpf" and options.recorder_auto
    assert not proofs  # doctor's stamp is enough


def test_auto_proves_ebpf_once_when_doctor_never_did(monkeypatch: pytest.MonkeyPatch) -> None:
    proofs = _host(monkeypatch, usable=True, proven=False, proof_ok=True)
    assert resolve_recorder() == "ebpf"
    assert proofs == ["attach"]


def test_auto_falls_back_to_strace_when_ebpf_cannot_attach_or_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _host(monkeypatch, usable=True, proven=False, proof_ok=False)
    assert resolve_recorder() == "strace"
    proofs = _host(monkeypatch, usable=False, proven=False, proof_ok=True)
    assert resolve_recorder() == "strace"
    assert not proofs  # nothing to prove without root, bpftrace or tracefs
    options = run_options(load_profile("default"))
    assert options.recorder == "strace" and not options.recorder_auto


def test_an_explicit_recorder_is_never_marked_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    _host(monkeypatch, usable=True, proven=True, proof_ok=True)
    monkeypatch.setenv(RECORDER_ENV, "ebpf")
    options = run_options(load_profile("default"))
    assert options.recorder == "ebpf" and not options.recorder_auto
    assert not run_options(load_profile("default"), recorder="ebpf").recorder_auto


def test_auto_under_runsc_is_strace_without_a_proof(monkeypatch: pytest.MonkeyPatch) -> None:
    proofs = _host(monkeypatch, usable=True, proven=False, proof_ok=True)
    assert resolve_recorder(None, "runsc") == "strace"
    assert resolve_recorder("auto", "runsc") == "strace"
    with pytest.raises(InputError):
        resolve_recorder("ebpf", "runsc")
    assert not proofs
