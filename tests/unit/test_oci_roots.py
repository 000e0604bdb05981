"""The btrfs roots' pure parts (sandbox.oci.roots): the image's layer chain read from
Docker's overlay mount (a line captured on the project's machine, 2026-12-05), and
applying one overlay2 layer as overlayfs shows it (whiteouts, opaque directories).
The volume itself runs in tests/integration/test_tells.py."""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.oci.roots import apply_layer, layer_chain

MERGED = "/var/lib/docker/overlay2/20a205ec3344e556a9d80793ba03dea79e30e3d877cb2d1e4bcfd949aafa9d4b/merged"
SHORT = ("EU3UL4C4AJLA3DHEVMTEGKR47U", "F7V3RUTLAECALPLP23ETIR5LOG", "YUFPIQ5H7422L2DTA57O2SXLIS")
LINE = (
    f"56 46 0:40 / {MERGED} rw,relatime shared:2 - overlay overlay rw,lowerdir="
    + ":".join(f"/var/lib/docker/overlay2/l/{s}" for s in SHORT)
    + ",upperdir=/var/lib/docker/overlay2/20a2/diff,workdir=/var/lib/docker/overlay2/20a2/work\n"
)


def test_the_layer_chain_leaves_out_the_container_s_init_layer_bottom_first() -> None:
    chain = layer_chain(MERGED, "22 1 0:21 / / rw - ext4 /dev/vda1 rw\n" + LINE)
    assert chain is not None and len(chain) == 2
    # the short links resolve to the layers' directories (where they exist)
    assert chain == [os.path.realpath(f"/var/lib/docker/overlay2/l/{s}") for s in (SHORT[2], SHORT[1])]
    assert layer_chain("/elsewhere", LINE) is None
    # docker writes the links relative to overlay2/ when the option would be too long
    rel = LINE.replace("/var/lib/docker/overlay2/l/", "l/")
    assert layer_chain(MERGED, rel) == chain


def test_a_layer_applies_like_overlayfs(tmp_path: Path) -> None:
    below, diff = tmp_path / "root", tmp_path / "diff"
    for p in ("etc/gone.conf", "etc/kept.conf", "opt/old/a", "opt/old/b", "usr/file_then_dir"):
        (below / p).parent.mkdir(parents=True, exist_ok=True)
        (below / p).write_text("below")
    (diff / "etc").mkdir(parents=True)
    os.mknod(diff / "etc/gone.conf", 0o600 | 0o020000, 0)  # a whiteout: char 0:0
    (diff / "etc/new.conf").write_text("new")
    (diff / "opt/old").mkdir(parents=True)
    os.setxattr(diff / "opt/old", "trusted.overlay.opaque", b"y")
    (diff / "opt/old/c").write_text("c")
    (diff / "usr/file_then_dir").mkdir(parents=True)
    (diff / "usr/file_then_dir/x").write_text("x")
    apply_layer(str(diff), str(below))
    got = sorted(str(p.relative_to(below)) for p in below.rglob("*") if p.is_file())
    assert got == ["etc/kept.conf", "etc/new.conf", "opt/old/c", "usr/file_then_dir/x"], got
    assert not os.path.lexists(below / "etc/gone.conf")
    assert "trusted.overlay.opaque" not in os.listxattr(below / "opt/old")
