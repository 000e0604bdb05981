"""Bad input and missing engine: one clear line, the documented exit code, nothing left running."""

from __future__ import annotations

import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("no_leaks")


def pkgsandbox(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip() and not ln.startswith("[pkgsandbox ")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_missing_file(tmp_path: Path) -> None:
    p = pkgsandbox("vet", str(tmp_path / "nope-1.0-py3-none-any.whl"), "-q")
    assert p.returncode == 2
    assert "nope-1.0-py3-none-any.whl" in one_line(p.stderr)


def test_not_a_distribution(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    p = pkgsandbox("vet", str(f), "-q")
    assert p.returncode == 2, p.stderr
    one_line(p.stderr)


def test_corrupt_wheel(tmp_path: Path) -> None:
    f = tmp_path / "broken-1.0-py3-none-any.whl"
    f.write_bytes(b"PK\x03\x04 this is not really a zip")
    p = pkgsandbox("vet", str(f), "-q")
    assert p.returncode == 2, p.stderr
    assert "broken" in one_line(p.stderr)


def test_wheel_without_metadata(tmp_path: Path) -> None:
    f = tmp_path / "hollow-1.0-py3-none-any.whl"
    with zipfile.ZipFile(f, "w") as zf:
        zf.writestr("hollow/__init__.py", "")
    p = pkgsandbox("vet", str(f), "-q")
    assert p.returncode == 2, p.stderr
    one_line(p.stderr)


def test_bad_spec() -> None:
    p = pkgsandbox("vet", "not a ==== requirement", "-q")
    assert p.returncode == 2
    one_line(p.stderr)


def test_usage_error() -> None:
    p = pkgsandbox("vet", "--fail-on", "sometimes", "six")
    assert p.returncode == 2
    one_line(p.stderr)


@pytest.mark.serial  # compares two start-up times: a busy neighbour skews one
def test_no_engine_fails_fast(tmp_path: Path) -> None:
    # side by side: the same interpreter and imports ending in a usage error (no engine
    # asked), so that a loaded machine's start-up (2.5 to 4 s seen on 2 busy cores) is
    # not counted as the engine check's: that must add no retry and no wait
    t0 = time.monotonic()
    assert pkgsandbox("vet", "--fail-on", "sometimes", "six").returncode == 2
    start_up = time.monotonic() - t0
    t0 = time.monotonic()
    p = pkgsandbox("vet", "six", "-q", env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    took = time.monotonic() - t0
    assert p.returncode == 3
    line = one_line(p.stderr)
    assert "no Docker engine" in line and "start one" in line
    assert took < start_up + 2.0, (took, start_up)


@pytest.mark.online
def test_unknown_package() -> None:
    p = pkgsandbox("vet", "pkgsandbox-no-such-package-zzqx", "-q")
    assert p.returncode == 2, p.stderr
    assert "pkgsandbox-no-such-package-zzqx" in one_line(p.stderr)


@pytest.mark.online
def test_unknown_version() -> None:
    p = pkgsandbox("vet", "six==0.0.999", "-q")
    assert p.returncode == 2, p.stderr
    assert "six" in one_line(p.stderr)


def test_index_outage_exits_3_not_2(tmp_path: Path) -> None:
    """An index that refuses connections: the package was not looked at (3), not unknown (2)."""
    import os
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # released: nothing listens there
    conf = tmp_path / "pip.conf"
    links = tmp_path / "no-links"
    links.mkdir()
    conf.write_text(f"[global]\nindex-url = http://127.0.0.1:{port}/simple\nfind-links = {links}\n")
    empty = tmp_path / "xdg"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=str(conf), XDG_CONFIG_DIRS=str(empty), PIP_RETRIES="0", PIP_TIMEOUT="5")
    p = subprocess.run(
        [sys.executable, "-m", "sandbox", "vet", "app-no-index==1.0", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert p.returncode == 3, p.stderr
    line = one_line(p.stderr)
    assert "cannot read the index" in line and str(port) in line
