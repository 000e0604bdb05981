"""Connecting to the Docker engine, with errors that say what to do."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Any

import docker
import docker.errors
import requests.exceptions

from sandbox.errors import EngineError
from sandbox.tempdirs import owner_alive

LABEL = "pkgsandbox"
LABEL_RUN = "pkgsandbox.run"
LABEL_OWNER = "pkgsandbox.owner"
DEADLINE_GRACE = 600.0  # seconds a live owner's run may outlast its deadline label
LABEL_DEADLINE = "pkgsandbox.deadline"

PROVISION_ADVICE = (
    "start one: `sudo apt-get install -y docker.io && sudo dockerd &` on Debian, "
    "or run `pkgsandbox doctor --provision` as root"
)


def _socket_path() -> str | None:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        return host[len("unix://") :]
    return None


def connect(timeout: float = 120.0) -> docker.DockerClient:
    """A client for the engine at DOCKER_HOST (default socket), checked with a ping.

    Fails fast (well under 2 s) with :class:`EngineError` when nothing answers.
    """
    path = _socket_path()
    if path is not None:
        if not os.path.exists(path):
            raise EngineError(f"no Docker engine: {path} does not exist", advice=PROVISION_ADVICE)
        if not os.access(path, os.R_OK | os.W_OK):
            raise EngineError(
                f"no permission on {path}",
                advice="add your user to the 'docker' group (then log in again) or run as root",
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.5)
        try:
            probe.connect(path)
        except PermissionError as exc:
            raise EngineError(
                f"no permission on {path}", advice="add your user to the 'docker' group"
            ) from exc
        except OSError as exc:
            raise EngineError(
                f"no Docker engine answers on {path} ({exc.strerror})", advice=PROVISION_ADVICE
            ) from exc
        finally:
            probe.close()
    try:
        client = docker.DockerClient.from_env(timeout=int(timeout))
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineError(f"Docker engine unreachable: {_short(exc)}", advice=PROVISION_ADVICE) from exc
    return client


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:300] if text else type(exc).__name__


def engine_call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the engine, turning its failures into :class:`EngineError` naming *what*."""
    try:
        return fn(*args, **kwargs)
    except docker.errors.ImageNotFound:
        raise
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineError(f"{what}: {_short(exc)}") from exc


def sweep(client: docker.DockerClient, *, everything: bool = False) -> list[str]:
    """Remove containers, networks and volumes of dead or expired runs; returns their names.

    A run is dead when its owner process no longer exists on this host, expired when
    its deadline label has passed. ``everything`` removes all labelled resources.
    """
    removed: list[str] = []
    now = time.time()

    def stale(labels: dict[str, str]) -> bool:
        if everything:
            return True
        if not owner_alive(labels.get(LABEL_OWNER, "")):
            return True
        # a live owner's run past its deadline (wall clock): only after a grace, since a
        # clock stepped forward (a resumed VM) must not sweep a run that is still going
        try:
            return float(labels.get(LABEL_DEADLINE, "0")) + DEADLINE_GRACE < now
        except ValueError:
            return True

    try:
        # one list call: inspecting each container would race with other runs removing theirs
        for c in client.api.containers(all=True, filters={"label": LABEL}):
            if stale(c.get("Labels") or {}):
                try:
                    client.api.remove_container(c["Id"], force=True, v=True)
                except docker.errors.NotFound:
                    continue
                removed.append(f"container {c['Names'][0].lstrip('/')}")
        # another run's sweep may remove the same stale resource first: skip it, go on
        for n in client.networks.list(filters={"label": LABEL}):
            if stale(n.attrs.get("Labels") or {}):
                with contextlib.suppress(docker.errors.NotFound):
                    n.remove()
                    removed.append(f"network {n.name}")
        for v in client.volumes.list(filters={"label": LABEL}):
            if stale(v.attrs.get("Labels") or {}):
                with contextlib.suppress(docker.errors.NotFound):
                    v.remove(force=True)
                    removed.append(f"volume {v.name}")
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        pass  # sweeping is best effort; the run itself reports engine trouble
    return removed
