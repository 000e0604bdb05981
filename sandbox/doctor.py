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
from sandbox.runner.interface import RunOptions


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fatal: bool = False


def _engine_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0 if shutil.which("docker") else False


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
            for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "docker.io", "debootstrap"]):
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
    from sandbox.runner.engine import connect as _connect
    from sandbox.runner.image import OFFLINE_BASE, build_offline_base

    client = _connect()
    try:
        client.images.get(OFFLINE_BASE)
        log(f"offline base {OFFLINE_BASE} present")
    except Exception:
        build_offline_base(log)


def run_doctor(*, base: str | None, offline: bool | None) -> Iterator[Check]:
    """Yield each check in order; stops being useful after a fatal one."""
    from sandbox.runner.docker_backend import probe_container
    from sandbox.runner.engine import connect
    from sandbox.runner.image import ensure_image
    from sandbox.vet import HOME, PROJECT, SANDBOX_UID, SANDBOX_USER, VENV

    try:
        client = connect()
        ver = client.version()
        yield Check("engine", True, f"Docker {ver.get('Version')} (API {ver.get('ApiVersion')})")
    except PkgSandboxError as exc:
        yield Check("engine", False, exc.diagnostics(), fatal=True)
        return
    try:
        image = ensure_image(client, base=base, offline=offline)
        yield Check("image", True, f"{image.tag} from {image.base}, Python {image.python}")
    except PkgSandboxError as exc:
        yield Check("image", False, exc.diagnostics(), fatal=True)
        return
    plan = {"user": SANDBOX_USER, "uid": SANDBOX_UID, "gid": SANDBOX_UID, "home": HOME, "project": PROJECT,
            "venv": VENV}
    with tempfile.TemporaryDirectory(prefix="pkgsandbox-doctor-") as tmp:
        stage = Path(tmp)
        stage.chmod(0o755)
        try:
            seen = probe_container(client, image, plan, RunOptions(), stage)
        except PkgSandboxError as exc:
            yield Check("probe", False, exc.diagnostics(), fatal=True)
            return
    yield Check("strace", bool(seen["strace_ok"]), "strace -f works for the recorder" if seen["strace_ok"]
                else seen["strace_output"])
    yield from security_checks(seen["probe"], seen["host_config"])


def security_checks(p: dict[str, object], hc: dict[str, object]) -> Iterator[Check]:
    """Judge the effective hardening as seen by a candidate-uid process."""
    yield Check("user", p.get("uid") not in (0, None), f"candidate runs as uid {p.get('uid')}")
    for key in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        val = str(p.get(key))
        yield Check(f"capabilities {key}", val.strip("0") == "", val)
    yield Check("no-new-privileges", p.get("NoNewPrivs") == "1", f"NoNewPrivs {p.get('NoNewPrivs')}")
    yield Check("seccomp", p.get("Seccomp") == "2", f"Seccomp mode {p.get('Seccomp')} (2 = filter)")
    yield Check("read-only root", p.get("root_writable") is False, f"writing / allowed: {p.get('root_writable')}")
    yield Check("network", p.get("connect") is not True and p.get("ifaces") == ["lo"],
                f"interfaces {p.get('ifaces')}, connect to 192.0.2.1: {p.get('connect')}")
    yield Check("docker socket", p.get("docker_sock") is False, f"present: {p.get('docker_sock')}")
    yield Check("signal init", p.get("kill_init") not in ("allowed",), f"kill(1, 0): {p.get('kill_init')}")
    yield Check("limits", bool(hc.get("PidsLimit")) and bool(hc.get("Memory")) and bool(hc.get("NanoCpus")),
                f"pids {hc.get('PidsLimit')}, memory {hc.get('Memory')}, nano_cpus {hc.get('NanoCpus')}")
    mounts = hc.get("Mounts") or []
    ro = all(bool(m.get("ReadOnly")) for m in mounts if isinstance(m, dict))
    yield Check("host mounts", ro, f"{len(mounts) if isinstance(mounts, list) else 0} bind mount(s), all read-only: {ro}")
