"""``pkgsandbox doctor``: is everything in place to vet safely? And ``--provision``."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sandbox.errors import EngineError, PkgSandboxError
from sandbox.judge.profiles import Profile
from sandbox.runner.interface import RunOptions


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fatal: bool = False


def _engine_answers() -> bool:
    return (
        subprocess.run(["docker", "info"], capture_output=True).returncode == 0
        if shutil.which("docker")
        else False
    )


def provision(log: Callable[[str], None]) -> None:
    """As root on Debian: install docker.io if missing, start dockerd, build the offline base."""
    from sandbox.runner.engine import connect

    try:
        connect()
        log("a Docker engine already answers")
    except EngineError:
        if os.geteuid() != 0:
            raise EngineError("provisioning needs root", advice="re-run with sudo") from None
        if shutil.which("dockerd") is None:
            log("installing Debian's docker.io (apt-get)")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for cmd in (
                ["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "docker.io", "debootstrap"],
            ):
                if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
                    raise EngineError(f"`{' '.join(cmd)}` failed") from None
        log("starting dockerd (log: /var/log/pkgsandbox-dockerd.log)")
        with open("/var/log/pkgsandbox-dockerd.log", "ab") as logf:
            subprocess.Popen(["dockerd"], stdout=logf, stderr=logf, start_new_session=True)
        for _ in range(60):
            time.sleep(1)
            try:
                connect()
                break
            except EngineError:
                continue
        else:
            raise EngineError("dockerd did not come up in 60 s", advice="see /var/log/pkgsandbox-dockerd.log")
    if shutil.which("debootstrap") is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], capture_output=True)
    if shutil.which("bpftrace") is None and os.geteuid() == 0:
        log("installing Debian's bpftrace (the eBPF recorder)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "bpftrace"], env=env, capture_output=True)
    from sandbox.runner.ebpf_recorder import mount_tracefs

    if os.geteuid() == 0 and mount_tracefs():
        log("tracefs mounted (the eBPF recorder's tracepoints)")
    import docker.errors

    from sandbox.runner.image import OFFLINE_BASE, build_offline_base

    try:
        connect().images.get(OFFLINE_BASE)
        log(f"offline base {OFFLINE_BASE} present")
    except docker.errors.ImageNotFound:
        build_offline_base(log)


def run_doctor(
    *, base: str | None, offline: bool | None, profile: Profile | None = None, security_only: bool = False
) -> Iterator[Check]:
    """Yield each check in order; stops being useful after a fatal one."""
    from sandbox.runner.docker_backend import probe_container
    from sandbox.runner.engine import connect
    from sandbox.runner.image import ensure_image
    from sandbox.runner.plan import base_plan

    try:
        client = connect()
        ver = client.version()
        yield Check("engine", True, f"Docker {ver.get('Version')} (API {ver.get('ApiVersion')})")
    except PkgSandboxError as exc:
        yield Check("engine", False, exc.diagnostics(), fatal=True)
        return
    try:
        image = ensure_image(client, base=base, offline=offline)
        if not security_only:
            yield Check("image", True, f"{image.tag} from {image.base}, Python {image.python}")
    except PkgSandboxError as exc:
        yield Check("image", False, exc.diagnostics(), fatal=True)
        return
    plan = base_plan()
    with tempfile.TemporaryDirectory(prefix="pkgsandbox-doctor-") as tmp:
        stage = Path(tmp)
        stage.chmod(0o755)
        from sandbox.runner.plan import run_options

        options = run_options(profile) if profile is not None else RunOptions()
        try:
            seen = probe_container(client, image, plan, options, stage)
        except PkgSandboxError as exc:
            yield Check("probe", False, exc.diagnostics(), fatal=True)
            return
    if not security_only:
        yield Check(
            "strace",
            bool(seen["strace_ok"]),
            "strace -f works for the recorder" if seen["strace_ok"] else seen["strace_output"],
        )
        yield ebpf_check()
    yield from security_checks(seen["probe"], seen["host_config"], options)


def ebpf_check(*, attach: bool = True) -> Check:
    """Whether the eBPF recorder works here: kernel support, privileges, tracefs,
    bpftrace, then a live attach (its proof is what ``--recorder auto`` relies on).
    Informational: strace is the recorder wherever this says no."""
    from sandbox.runner.ebpf_recorder import ebpf_support, prove

    support = ebpf_support(mount=True)
    facts = (
        f"root={'yes' if support.root else 'no'}, bpftrace={support.bpftrace or 'missing'}, "
        f"tracefs={'yes' if support.tracefs else 'no'}, BTF={'yes' if support.btf else 'no'}, "
        f"tracepoints={'yes' if support.tracepoints else 'no'}"
    )
    if not support.usable:
        return Check("ebpf", True, f"not usable ({facts}): --recorder auto uses strace")
    if not attach:
        return Check("ebpf", True, f"usable ({facts}), not proven")
    ok, detail = prove()
    if not ok:
        return Check("ebpf", True, f"attach failed ({detail}): --recorder auto uses strace")
    return Check("ebpf", True, f"proven: {detail} ({facts}); --recorder auto uses eBPF")


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def security_checks(
    p: dict[str, object], hc: dict[str, object], options: RunOptions | None = None
) -> Iterator[Check]:
    """Judge the effective hardening *as seen by a candidate-uid process* (not the
    configuration we asked for) against what the profile asks."""
    lim = (options or RunOptions()).limits
    pids = _int(p.get("pids_max"))
    yield Check(
        "pids limit (seen)",
        pids is not None and pids <= lim.pids,
        f"pids.max {p.get('pids_max')}, profile asks ≤ {lim.pids}",
    )
    mem = _int(p.get("memory_limit"))
    yield Check(
        "memory limit (seen)",
        mem is not None and mem <= lim.memory_mb * 1024 * 1024,
        f"memory.limit_in_bytes {p.get('memory_limit')}, profile asks ≤ {lim.memory_mb} MB",
    )
    quota, period = _int(p.get("cpu_quota")), _int(p.get("cpu_period"))
    cpus = quota / period if quota and period and quota > 0 else None
    yield Check(
        "cpu limit (seen)",
        cpus is not None and cpus <= lim.cpus + 0.01,
        f"{cpus} CPUs, profile asks ≤ {lim.cpus}",
    )
    yield Check(
        "system dirs read-only",
        p.get("etc_writable") is False and p.get("usr_writable") is False,
        f"/etc writable: {p.get('etc_writable')}, /usr writable: {p.get('usr_writable')}",
    )
    yield Check("user", p.get("uid") not in (0, None), f"candidate runs as uid {p.get('uid')}")
    for key in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        val = str(p.get(key))
        yield Check(f"capabilities {key}", val.strip("0") == "", val)
    yield Check("no-new-privileges", p.get("NoNewPrivs") == "1", f"NoNewPrivs {p.get('NoNewPrivs')}")
    yield Check("seccomp", p.get("Seccomp") == "2", f"Seccomp mode {p.get('Seccomp')} (2 = filter)")
    yield Check(
        "read-only root", p.get("root_writable") is False, f"writing / allowed: {p.get('root_writable')}"
    )
    # The container has no network of Docker's (mode none); inside it only loopback and,
    # when the sinkhole is on, its veth pair exist, so a connect reaches at most the sinkhole.
    yield Check(
        "network",
        hc.get("NetworkMode") == "none",
        f"network mode {hc.get('NetworkMode')}, interfaces {p.get('ifaces')}, "
        f"connect to 192.0.2.1: {p.get('connect')}",
    )
    yield Check("docker socket", p.get("docker_sock") is False, f"present: {p.get('docker_sock')}")
    yield Check("signal init", p.get("kill_init") not in ("allowed",), f"kill(1, 0): {p.get('kill_init')}")
    yield Check(
        "limits",
        bool(hc.get("PidsLimit")) and bool(hc.get("Memory")) and bool(hc.get("NanoCpus")),
        f"pids {hc.get('PidsLimit')}, memory {hc.get('Memory')}, nano_cpus {hc.get('NanoCpus')}",
    )
    raw = hc.get("Mounts")
    mounts = [m for m in raw if isinstance(m, dict)] if isinstance(raw, list) else []
    ro = all(bool(m.get("ReadOnly")) for m in mounts)
    yield Check("host mounts", ro, f"{len(mounts)} bind mount(s), all read-only: {ro}")
