"""Finding or building the sandbox image, tagged by a hash of its inputs."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors

from sandbox.agent.protocol import TARGET_JSON
from sandbox.errors import ImageError
from sandbox.models import ImageInfo
from sandbox.runner.engine import LABEL, LABEL_DEADLINE, LABEL_OWNER, engine_call
from sandbox.tempdirs import owner_label

IMAGE_REPO = "pkgsandbox-sandbox"
REGISTRY_BASE = "python:3.12-slim"
ENV_BASE = "PKGSANDBOX_BASE_IMAGE"
ENV_OFFLINE = "PKGSANDBOX_OFFLINE"

_PKG = Path(__file__).resolve().parents[1]


def images_dir() -> Path:
    """The ``images/`` directory: the repository's, or the copy shipped in the package."""
    for candidate in (_PKG.parent / "images", _PKG / "data" / "images"):
        if (candidate / "Dockerfile").is_file():
            return candidate
    raise ImageError("images/Dockerfile not found in the installation", advice="reinstall pkgsandbox")


def _offline_base_tag() -> str:
    """``pkgsandbox-base:bookworm-DIGEST``: a changed recipe (say, a new toolchain) is a new
    tag, so machines that built the old base build the new one instead of reusing it."""
    try:
        script = (images_dir() / "build-offline-base.sh").read_bytes()
    except (ImageError, OSError):
        return "pkgsandbox-base:bookworm"
    return f"pkgsandbox-base:bookworm-{hashlib.sha256(script).hexdigest()[:12]}"


OFFLINE_BASE = _offline_base_tag()


def agent_dir() -> Path:
    return _PKG / "agent"


def context_files() -> dict[str, bytes]:
    """Every file of the build context, by its path in the context."""
    imgs = images_dir()
    files = {
        "Dockerfile": (imgs / "Dockerfile").read_bytes(),
        "agent-entry": (imgs / "agent-entry").read_bytes(),
    }
    # The developer kit's wheels (images/kit/, see its README), hashed like the rest.
    files["kit/README.md"] = (imgs / "kit" / "README.md").read_bytes()  # COPY kit/ never finds it empty
    for wheel in sorted((imgs / "kit").glob("*.whl")):
        files[f"kit/{wheel.name}"] = wheel.read_bytes()
    # Subpackages too (agent/sinkhole/…), by their path under agent/: the tag hashes them all.
    for src in sorted(agent_dir().rglob("*.py")):
        files[f"agent/{src.relative_to(agent_dir()).as_posix()}"] = src.read_bytes()
    return files


def image_tag(files: dict[str, bytes], base_id: str) -> str:
    """A tag that changes whenever the Dockerfile, the agent or the base image changes."""
    h = hashlib.sha256(base_id.encode())
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return f"{IMAGE_REPO}:{h.hexdigest()[:16]}"


def _context_tar(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name == "agent-entry" else 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def choose_base(client: docker.DockerClient, base: str | None, offline: bool | None) -> str:
    """Which base image to build on.

    Explicit choice (option or ``PKGSANDBOX_BASE_IMAGE``) wins; ``--offline`` /
    ``PKGSANDBOX_OFFLINE=1`` selects the debootstrap base; otherwise the registry
    base, falling back to the offline base when the registry cannot be reached.
    """
    base = base or os.environ.get(ENV_BASE)
    if base:
        return base
    if offline is None:
        offline = os.environ.get(ENV_OFFLINE, "") not in ("", "0", "false", "no")
    if offline:
        return OFFLINE_BASE
    if _present(client, REGISTRY_BASE):
        return REGISTRY_BASE
    if _present(client, OFFLINE_BASE):
        return OFFLINE_BASE
    try:
        client.images.pull(REGISTRY_BASE)
        return REGISTRY_BASE
    except docker.errors.DockerException as exc:
        if shutil.which("debootstrap") is not None and os.geteuid() == 0:
            return OFFLINE_BASE  # an older recipe's base may be here: build the current one
        raise ImageError(
            f"cannot pull {REGISTRY_BASE} and no offline base image is present ({str(exc)[:120]})",
            advice="build one with `pkgsandbox image build --offline` (root, debootstrap) "
            "or images/build-offline-base.sh",
        ) from exc


def _present(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def build_offline_base(log: Callable[[str], None] = lambda _m: None) -> None:
    """Run images/build-offline-base.sh (debootstrap bookworm → docker import)."""
    script = images_dir() / "build-offline-base.sh"
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap is not installed", advice="apt-get install -y debootstrap (as root)")
    log(f"building offline base {OFFLINE_BASE} with debootstrap (about a minute)")
    proc = subprocess.run(["sh", str(script), OFFLINE_BASE], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ImageError(f"offline base build failed: {' | '.join(tail)}")


def ensure_image(
    client: docker.DockerClient,
    *,
    base: str | None = None,
    offline: bool | None = None,
    rebuild: bool = False,
    log: Callable[[str], None] = lambda _m: None,
) -> ImageInfo:
    """Return the sandbox image, building it (and, offline, its base) when missing."""
    base_ref = choose_base(client, base, offline)
    if base_ref == OFFLINE_BASE and not _present(client, OFFLINE_BASE):
        build_offline_base(log)
    try:
        base_img = client.images.get(base_ref)
    except docker.errors.ImageNotFound as exc:
        raise ImageError(f"base image {base_ref} not found") from exc
    files = context_files()
    tag = image_tag(files, str(base_img.id))
    if rebuild or not _present(client, tag):
        with _build_lock():  # two runs starting at once build the image only once
            if rebuild or not _present(client, tag):
                log(f"building sandbox image {tag} from {base_ref}")
                _build(client, files, tag, base_ref)
    img = client.images.get(tag)
    target = _read_target(client, tag, str(img.id))
    return ImageInfo(
        tag=tag,
        id=img.id,
        base=base_ref,
        python=target["python"],
        platforms=platform_tags(target.get("machine", "x86_64"), target.get("libc", "")),
        kit=tuple(target.get("kit") or ()),
        venv=tuple(target.get("venv") or ()),
    )


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    cache = cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        fh = open(cache / "image-build.lock", "w")  # noqa: SIM115 - held for the with-block
    except OSError:
        yield  # no writable cache dir: build unlocked rather than not at all
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _build(client: docker.DockerClient, files: dict[str, bytes], tag: str, base_ref: str) -> None:
    ctx = _context_tar(files)
    lines: list[str] = []
    try:
        for chunk in client.api.build(
            fileobj=ctx,
            custom_context=True,
            tag=tag,
            buildargs={"BASE_IMAGE": base_ref},
            pull=False,
            rm=True,
            forcerm=True,
            labels={LABEL: "image"},
            # The offline base has everything the build needs: its steps get no
            # network at all (hermetic, and independent of the engine's bridge).
            network_mode="none" if base_ref == OFFLINE_BASE else None,
            decode=True,
        ):
            if "stream" in chunk:
                lines.extend(s for s in chunk["stream"].splitlines() if s.strip())
            if "error" in chunk:
                raise ImageError(f"image build failed: {chunk['error'].strip()[:300]}")
    except docker.errors.DockerException as exc:
        raise ImageError(f"image build failed: {exc}", advice=" | ".join(lines[-3:])) from exc


def cache_dir() -> Path:
    """pkgsandbox's per-user cache directory (XDG)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pkgsandbox"


def _read_target(client: docker.DockerClient, tag: str, image_id: str) -> dict[str, Any]:
    """The interpreter facts the image recorded at build time, cached per image id
    (reading them needs a created — never started — container, ~0.2 s)."""
    cache = cache_dir() / "targets.json"
    try:
        known: dict[str, dict[str, Any]] = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if image_id in known:
        return known[image_id]
    container = engine_call(
        "create probe container",
        client.containers.create,
        tag,
        command=["true"],
        network_mode="none",
        labels={LABEL: "probe", LABEL_OWNER: owner_label(), LABEL_DEADLINE: str(int(time.time()) + 120)},
    )
    try:
        stream, _ = container.get_archive(TARGET_JSON)
        raw = b"".join(stream)
    finally:
        # already being removed: a concurrent sweep of expired probes
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        member = tar.extractfile("target.json")
        if member is None:
            raise ImageError(f"sandbox image lacks {TARGET_JSON}")
        data: dict[str, Any] = json.loads(member.read())
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**known, image_id: data}))
        tmp.replace(cache)
    except OSError:
        pass  # caching is an optimisation
    return data


def platform_tags(machine: str, libc: str) -> tuple[str, ...]:
    """The sandbox platform's own wheel tags, best first (fetch expands manylinux downwards)."""
    tags: list[str] = []
    if libc.startswith("glibc "):
        major, minor = libc.split()[1].split(".")[:2]
        tags.append(f"manylinux_{major}_{minor}_{machine}")
    tags.append(f"linux_{machine}")
    return tuple(tags)
