"""``pkgsandbox doctor``: is everything in place to vet safely? And ``--provision``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sandbox.agent.protocol import SANDBOX_USER, Plan
from sandbox.errors import EngineError, PkgSandboxError
from sandbox.judge.profiles import Profile
from sandbox.runner.interface import Limits, RunOptions


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
    provision_compiled(log)
    from sandbox.runner.ebpf_recorder import mount_tracefs

    if os.geteuid() == 0 and mount_tracefs():
        log("tracefs mounted (the eBPF recorder's tracepoints)")
    if os.geteuid() == 0:
        provision_runsc(log)
        provision_wrapper(log)
    import docker.errors

    from sandbox.runner.image import OFFLINE_BASE, build_offline_base

    try:
        connect().images.get(OFFLINE_BASE)
        log(f"offline base {OFFLINE_BASE} present")
    except docker.errors.ImageNotFound:
        build_offline_base(log)


def provision_compiled(log: Callable[[str], None]) -> None:
    """Build the compiled eBPF recorder (sandbox.runner.bpfbuild), installing Debian's
    clang-14 and libbpf-dev first when root and they are missing. A failure is logged,
    not raised: the eBPF recorder is then bpftrace's."""
    from sandbox.runner import bpfbuild

    if bpfbuild.missing_tools() and os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing Debian's clang-14 and libbpf-dev (to build the compiled eBPF recorder)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", "-qq", "clang-14", "libbpf-dev", "gcc"]
        if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            subprocess.run(cmd, env=env, capture_output=True)
    try:
        log(f"compiled eBPF recorder built: {bpfbuild.build()}")
    except (PkgSandboxError, OSError) as exc:
        log(f"compiled eBPF recorder not built ({exc}): the eBPF recorder is bpftrace's")


def provision_wrapper(log: Callable[[str], None]) -> None:
    """Install and register the runc wrapper (sandbox.oci.wrapper) and make its btrfs
    root volume (sandbox.oci.roots), installing Debian's btrfs-progs first if missing.
    A volume that cannot be made is logged, not raised: roots stay the engine's."""
    from sandbox.oci import roots
    from sandbox.runner.engine import connect
    from sandbox.runner.runtime import register_wrapper

    if shutil.which("mkfs.btrfs") is None and shutil.which("apt-get"):
        log("installing Debian's btrfs-progs (the sandbox's root volume)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "btrfs-progs"], env=env, capture_output=True)
    try:
        roots.setup(log)
        log(f"root volume ready at {roots.TOP}")
    except (OSError, subprocess.SubprocessError) as exc:
        log(f"no root volume ({exc}): sandboxes keep the engine's overlay root (a tell)")
    register_wrapper(connect(), log)


def provision_runsc(log: Callable[[str], None]) -> None:
    """Install Debian's gVisor (``runsc``) if missing and register it with the running
    engine: daemon.json merged (never clobbered), dockerd reloaded with SIGHUP (never
    restarted: other runs keep their containers). Idempotent."""
    from sandbox.runner.engine import connect
    from sandbox.runner.runtime import RUNSC_PATH, register_runsc

    if not Path(RUNSC_PATH).exists():
        log("installing Debian's runsc (gVisor, for --runtime runsc)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "runsc"]):
            if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
                raise EngineError(f"`{' '.join(cmd)}` failed", advice="--runtime runsc needs Debian's runsc")
    register_runsc(connect(), log)


def runtime_check(client: object, image: str, wanted: str = "runc") -> Check:
    """Whether ``runsc`` is registered with the engine and starts the sandbox image
    (a FAIL only when *wanted*; otherwise informational)."""
    from sandbox.runner.runtime import registered

    if not registered(client, "runsc"):
        return Check(
            "runsc",
            wanted != "runsc",
            "not registered with the engine: `pkgsandbox doctor --provision` (root) installs and "
            "registers it",
        )
    started = time.monotonic()
    ok, out = _runsc_version(client, image)
    took = time.monotonic() - started
    if not ok:
        return Check("runsc", wanted != "runsc", f"registered, but a container did not start: {out}")
    return Check("runsc", True, f"registered and works ({out}, {took:.1f} s to start and stop)")


def _runsc_version(client: object, image: str) -> tuple[bool, str]:
    import docker.errors

    from sandbox.runner.engine import LABEL, LABEL_DEADLINE, LABEL_OWNER
    from sandbox.tempdirs import owner_label

    labels = {LABEL: "doctor", LABEL_OWNER: owner_label(), LABEL_DEADLINE: str(int(time.time() + 120))}
    try:
        raw = client.containers.run(  # type: ignore[attr-defined]
            image,
            ["cat", "/proc/version"],
            runtime="runsc",
            network_mode="none",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            remove=True,
            labels=labels,
        )
    except docker.errors.DockerException as exc:
        return False, str(exc).splitlines()[0][:200]
    text = raw.decode("utf-8", "replace").strip()
    return "4.4.0" in text, f"kernel {text.split()[2] if len(text.split()) > 2 else text!r} (gVisor)"


def run_doctor(
    *,
    base: str | None,
    offline: bool | None,
    profile: Profile | None = None,
    security_only: bool = False,
    runtime: str | None = None,
) -> Iterator[Check]:
    """Yield each check in order; stops being useful after a fatal one. The probe runs
    under *runtime* (default: the profile's)."""
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
    from sandbox.runner.plan import run_options

    options = run_options(profile, runtime=runtime) if profile is not None else RunOptions()
    if runtime is not None:
        options = options.model_copy(update={"runtime": runtime})
    if not security_only or options.runtime == "runsc":
        check = runtime_check(client, image.tag, options.runtime)
        yield check if check.ok else Check(check.name, False, check.detail, fatal=True)
        if not check.ok:
            return
    plan = base_plan()
    with tempfile.TemporaryDirectory(prefix="pkgsandbox-doctor-") as tmp:
        stage = Path(tmp)
        stage.chmod(0o755)
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
        if options.runtime == "runsc":
            yield Check("ebpf", True, "not used under runsc: eBPF cannot see inside gVisor (strace records)")
        else:
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
        f"compiled={'yes' if support.compiled else 'no'}, "
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
    opts = options or RunOptions()
    lim = opts.limits
    if opts.runtime == "runsc" and p.get("pids_max") is None and p.get("memory_limit") is None:
        yield from _runsc_limits(hc, lim)
    else:
        yield from _seen_limits(p, lim)
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


def _seen_limits(p: dict[str, object], lim: Limits) -> Iterator[Check]:
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


def _runsc_limits(hc: dict[str, object], lim: Limits) -> Iterator[Check]:
    """gVisor shows the candidate no cgroup files: the limits bind the whole sandbox
    (its host processes) from outside, so the engine's record is what can be checked."""
    pids, mem, cpus = _int(hc.get("PidsLimit")), _int(hc.get("Memory")), _int(hc.get("NanoCpus"))
    yield Check(
        "pids limit (runsc)",
        pids is not None and 0 < pids <= lim.pids,
        f"pids.max {pids} on the sandbox's host threads (gVisor's own tasks are bounded by its "
        "memory: a fork bomb ends the run incomplete)",
    )
    yield Check(
        "memory limit (runsc)",
        mem is not None and 0 < mem <= lim.memory_mb * 1024 * 1024,
        f"{mem} bytes on the whole sandbox, profile asks ≤ {lim.memory_mb} MB (not visible inside gVisor)",
    )
    yield Check(
        "cpu limit (runsc)",
        cpus is not None and 0 < cpus <= lim.cpus * 1e9 + 1e7,
        f"{(cpus or 0) / 1e9} CPUs on the whole sandbox, profile asks ≤ {lim.cpus}",
    )


# --------------------------------------------------------------------------- tells

# Hypervisor and container vendors in DMI strings and MAC prefixes (OUIs).
_VM_VENDORS = (
    "qemu",
    "kvm",
    "virtualbox",
    "vmware",
    "xen",
    "bochs",
    "hvm domu",
    "virtual machine",
    "google compute engine",
    "amazon ec2",
    "openstack",
    "digitalocean",
    "standard pc",
    "innotek",
    "parallels",
)
_VM_OUIS = {
    "02:42": "Docker",
    "08:00:27": "VirtualBox",
    "52:54:00": "QEMU/KVM",
    "00:16:3e": "Xen",
    "00:15:5d": "Hyper-V",
    "00:05:69": "VMware",
    "00:0c:29": "VMware",
    "00:1c:14": "VMware",
    "00:50:56": "VMware",
}
_CONTAINER_WORDS = ("docker", "overlay", "containerd", "kubepods", "lxc", "libpod", "/var/lib/containers")
_CONTAINER_ENV = (
    "container",
    "DOCKER_",
    "KUBERNETES_",
    "PYTHON_VERSION",
    "PYTHON_SHA256",
    "GPG_KEY",
    "PKGSANDBOX",
)
# A path component of 64 hex digits: Docker's container and layer ids (a workstation's
# mounts name devices, UUIDs with dashes and snap revisions, never these).
_ENGINE_ID = re.compile(r"/[0-9a-f]{64}(?=[/\s,]|$)", re.M)
# /etc/hosts, /etc/hostname, /etc/resolv.conf as mount points: files a container engine
# binds into every container (a workstation has them on its root filesystem).
_NETWORK_FILE = re.compile(r" (/etc/(?:hosts|hostname|resolv\.conf)) ")
_INIT_NAMES = ("systemd", "init")
_INIT_CMDLINES = ("/sbin/init", "/lib/systemd/systemd", "/usr/lib/systemd/systemd")
MIN_PROCESSES = 30  # a desktop session runs well over a hundred
# words in a process's command line that only a sandbox or container shows
_SHM_TOOL = re.compile(r"faketime|dt_ft|pkgsandbox|sandbox", re.IGNORECASE)
_TOOL_IN_PATH = re.compile(r"sandbox|strace|bpftrace", re.IGNORECASE)
_TOOL_WORDS = re.compile(r"pkgsandbox|sandbox|strace|bpftrace|docker|containerd|runc\b", re.IGNORECASE)
MIN_UPTIME_S = 600  # "booted minutes ago" is a classic sandbox check
MIN_MEMORY = 4 << 30
MIN_CPUS = 2


def _s(value: object) -> str:
    return value if isinstance(value, str) else ""


def tell_checks(p: dict[str, object]) -> Iterator[Check]:
    """Judge what a candidate-uid process saw (``agent tells``): ``ok`` is False for
    every fact that tells a sandbox or container from a developer's workstation."""
    comm = _s(p.get("pid1_comm"))
    yield Check("PID 1 name", comm in _INIT_NAMES, f"/proc/1/comm {comm!r}")
    raw_cmd = _s(p.get("pid1_cmdline"))
    cmd = raw_cmd.replace("\0", " ").strip()
    yield Check(
        "PID 1 command line",
        cmd.split(" ")[0] in _INIT_CMDLINES and "docker" not in cmd and "sleep" not in cmd,
        f"/proc/1/cmdline {raw_cmd!r}",
    )
    tracer = _s(p.get("tracer_pid")) or "?"
    yield Check(
        "TracerPid",
        tracer == "0",
        f"TracerPid {tracer} in /proc/self/status"
        + ("" if tracer == "0" else " (the strace recorder; the eBPF recorder of issue 13 leaves 0)"),
    )
    yield Check(
        "container marker files",
        not p.get("dockerenv") and not p.get("containerenv"),
        f"/.dockerenv {bool(p.get('dockerenv'))}, /run/.containerenv {bool(p.get('containerenv'))}",
    )
    for key, label in (("mounts", "/proc/self/mounts"), ("mountinfo", "/proc/self/mountinfo")):
        text = _s(p.get(key))
        bad = sorted({w for w in _CONTAINER_WORDS if w in text})
        # a bind mount's source path (the staging folder's) is in mountinfo
        bad += sorted({f"{m.group(0).lower()!r} in a path" for m in _TOOL_IN_PATH.finditer(text)})
        if re.search(r"^\S+ / 9p .*trans=fd", text, re.M) or re.search(r" / / .* - 9p ", text):
            bad.append("a 9p root served over a file descriptor (gVisor's gofer)")
        # Another storage driver or data-root drops the words, not the engine's layout:
        # vfs/btrfs roots name their layer id, bind sources the container's id.
        if _ENGINE_ID.search(text):
            bad.append("a 64-hex container or layer id in a path")
        files = sorted(set(_NETWORK_FILE.findall(text)))
        if files:
            bad.append(f"{', '.join(files)} mounted (the engine's per-container copies)")
        yield Check(label, not bad, f"mentions {', '.join(bad)}" if bad else "no container paths")
    for key, label in (("cgroup_self", "/proc/self/cgroup"), ("cgroup_1", "/proc/1/cgroup")):
        text = _s(p.get(key))
        bad = sorted({w for w in _CONTAINER_WORDS if w in text})
        paths = {ln.rsplit(":", 1)[-1] for ln in text.splitlines() if ln}
        rooted = bool(paths) and paths <= {"/"}
        why = f"mentions {', '.join(bad)}" if bad else ""
        if rooted:
            why = why or "every controller at '/' (a cgroup namespace root; a workstation shows slices)"
        if not text.strip():
            why = why or "empty (no cgroup hierarchy at all: gVisor; a workstation always has one)"
        yield Check(label, not why, why or "plausible")
    raw_procs = p.get("processes")
    procs = (
        [x for x in raw_procs if isinstance(x, list) and len(x) in (3, 4)]
        if isinstance(raw_procs, list)
        else []
    )
    # On a host only init (1) and kthreadd (2) have parent 0; in a container every
    # process entered through `docker exec` has.
    orphans = sorted(str(x[2]) for x in procs if x[0] not in (1, 2) and x[1] == 0)
    names = sorted({str(x[2]) for x in procs})
    yield Check(
        "processes",
        len(procs) >= MIN_PROCESSES and not orphans,
        f"{len(procs)} visible in /proc ({', '.join(names[:12])}{' …' if len(names) > 12 else ''})"
        + (f"; parent 0 (entered from outside): {', '.join(orphans)}" if orphans else ""),
    )
    # /proc/<pid>/cmdline is world-readable: a tool's own name or paths give it away
    cmdlines = [str(x[3]) for x in procs if len(x) == 4]
    named = sorted({m.group(0).lower() for c in cmdlines if (m := _TOOL_WORDS.search(c))})
    yield Check(
        "command lines",
        bool(cmdlines) and not named,  # none read is no proof
        f"name {', '.join(named)}" if named else f"{len(cmdlines)} read, none names a sandbox or container",
    )
    host = _s(p.get("hostname"))
    looks_id = bool(re.fullmatch(r"[0-9a-f]{12}([0-9a-f]{52})?", host))
    yield Check(
        "hostname",
        not looks_id and host not in ("localhost", "sandbox", "probe") and "sandbox" not in host,
        f"{host!r}",
    )
    raw_env = p.get("env")
    env = [str(k) for k in raw_env] if isinstance(raw_env, list) else []
    bad_env = sorted(k for k in env if k.startswith(_CONTAINER_ENV))
    yield Check(
        "environment", not bad_env, ", ".join(bad_env) or f"{len(env)} variables, none container-specific"
    )
    raw_shm = p.get("shm")
    shm = [str(n) for n in raw_shm] if isinstance(raw_shm, list) else []
    # libfaketime's shared files (the time and seeded passes preload it) are a tell in
    # the default pass, where the probe runs: they are made when those passes start
    named = sorted(n for n in shm if _SHM_TOOL.search(n))
    yield Check(
        "/dev/shm",
        isinstance(raw_shm, list) and not named,
        f"holds {', '.join(named)}" if named else f"{len(shm)} file(s), none a tool's",
    )
    try:
        up = float(_s(p.get("uptime")).split()[0])
    except (ValueError, IndexError):
        up = -1.0
    gvisor = " 4.4.0 " in _s(p.get("version"))  # gVisor's kernel version (measured)
    whose = "gVisor's: counts from the sandbox's start" if gvisor else "host's: no time namespace"
    yield Check("uptime", up >= MIN_UPTIME_S, f"{up / 3600:.1f} h ({whose})")
    cpus = p.get("cpu_count")
    yield Check(
        "CPU count",
        isinstance(cpus, int) and cpus >= MIN_CPUS,
        f"{cpus} CPUs, {p.get('cpu_affinity')} usable (host's; the CPU quota is invisible here)",
    )
    mem = p.get("mem_total")
    yield Check(
        "memory",
        isinstance(mem, int) and mem >= MIN_MEMORY,
        f"MemTotal {int(mem) >> 20 if isinstance(mem, int) else '?'} MiB "
        + ("(gVisor reports the memory limit)" if gvisor else "(host's; the cgroup limit is invisible here)"),
    )
    version = _s(p.get("version"))
    yield Check("/proc/version", "gvisor" not in version.lower() and " 4.4.0 " not in version, version[:120])
    dmi = p.get("dmi") if isinstance(p.get("dmi"), dict) else {}
    assert isinstance(dmi, dict)
    seen = {k: str(v) for k, v in dmi.items() if v}
    vm = sorted({f"{k}={v}" for k, v in seen.items() if any(w in v.lower() for w in _VM_VENDORS)})
    yield Check(
        "DMI product", not vm, ", ".join(vm) or (", ".join(f"{k}={v}" for k, v in seen.items()) or "none")
    )
    net = p.get("net") if isinstance(p.get("net"), dict) else {}
    assert isinstance(net, dict)
    macs = []
    for iface, mac in sorted(net.items()):
        mac = str(mac).lower()
        if iface == "lo" or not mac or mac == "00:00:00:00:00:00":
            continue
        vendor = next((v for pre, v in _VM_OUIS.items() if mac.startswith(pre)), None)
        if vendor is None and int(mac[:2], 16) & 0x02:
            vendor = "locally administered (random, veth-style)"
        if vendor:
            macs.append(f"{iface} {mac}: {vendor}")
    yield Check("MAC addresses", not macs, "; ".join(macs) or ", ".join(f"{i} {m}" for i, m in net.items()))


def tells_plan(runtime: str = "runc", recorder: str = "strace") -> Plan:
    """A plan like a vet's before the candidate is known: honeytokens, the sinkhole and
    the recorder (strace in front of the probe, as under *runtime*; none for eBPF,
    which records from the host), so that the probe sees what a candidate would."""
    from sandbox.judge.honeytokens import make_honeytokens
    from sandbox.runner.plan import base_plan, seccomp_bpf, sinkhole_plan
    from sandbox.runner.seccomp import TRACED_DENIED
    from sandbox.trace.strace import strace_argv

    plan = base_plan(make_honeytokens(user=SANDBOX_USER), sinkhole_plan(enabled=True, capture_kib=64))
    if recorder == "strace":
        plan["strace"] = strace_argv("{output}", denied=TRACED_DENIED, seccomp_bpf=seccomp_bpf(runtime))
    return plan


def run_tells(
    *,
    base: str | None,
    offline: bool | None,
    profile: Profile | None = None,
    runtime: str | None = None,
    recorder: str | None = None,
) -> Iterator[Check]:
    """Start a sandbox exactly as a vet does (setup, sinkhole, recorder) under *runtime*
    with *recorder* and yield one check per tell the candidate could read; an engine
    problem is a fatal check."""
    from sandbox.runner.docker_backend import tells_container
    from sandbox.runner.engine import connect
    from sandbox.runner.image import ensure_image
    from sandbox.runner.runtime import require

    try:
        client = connect()
        image = ensure_image(client, base=base, offline=offline)
    except PkgSandboxError as exc:
        yield Check("engine", False, exc.diagnostics(), fatal=True)
        return
    from sandbox.runner.plan import run_options

    options = run_options(profile) if profile is not None else RunOptions()
    options = options.model_copy(
        update={"runtime": runtime or options.runtime, "recorder": recorder or options.recorder}
    )
    try:
        require(client, options.runtime)
    except PkgSandboxError as exc:
        yield Check("runtime", False, exc.diagnostics(), fatal=True)
        return
    # the stage bind mount's source shows in mountinfo: named as tempfile names one
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        stage.chmod(0o755)
        try:
            plan = tells_plan(options.runtime, options.recorder)
            seen = tells_container(client, image, plan, options, stage)
        except PkgSandboxError as exc:
            yield Check("probe", False, exc.diagnostics(), fatal=True)
            return
    yield from tell_checks(seen)
