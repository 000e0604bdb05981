"""The sweep every run starts with removes what dead or long-expired runs left, never a
live run's container: a live owner whose deadline label passed (a wall clock stepped
forward, a resumed VM) keeps its container through a grace."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import docker.errors
import pytest

from sandbox.runner.engine import DEADLINE_GRACE, LABEL, LABEL_DEADLINE, LABEL_OWNER, sweep
from sandbox.tempdirs import owner_label
from tests.fixtures.builders import Randomised


def _labelled(client: Any, image: Any, name: str, deadline: float) -> Any:
    labels = {LABEL: "run", LABEL_OWNER: owner_label(), LABEL_DEADLINE: str(int(deadline))}
    return client.containers.create(image.tag, ["true"], name=name, labels=labels, network_mode="none")


def test_a_live_owners_container_outlives_a_passed_deadline_only_by_the_grace(
    docker_client: Any, sandbox_image: Any
) -> None:
    r = Randomised()
    now = time.time()
    recent = _labelled(docker_client, sandbox_image, r.name("pkgsandbox-recent-"), now - 60)
    old = _labelled(docker_client, sandbox_image, r.name("pkgsandbox-old-"), now - DEADLINE_GRACE - 60)
    try:
        sweep(docker_client)
        # judged by what is left, not by this sweep's list: a concurrent run's sweep may
        # have removed the expired container first, and rightly so
        with pytest.raises(docker.errors.NotFound):
            old.reload()
        recent.reload()  # still there: no sweep may take it
    finally:
        for c in (recent, old):
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True)
