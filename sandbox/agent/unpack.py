"""Unpack an sdist into a folder: regular files and folders only, no path leaving it,
no ``.git``, bounded in members and bytes.  Stdlib only, and runnable as a script
(``python3 -I -S unpack.py SDIST DEST``): the agent runs it as the candidate's uid,
isolated from anything the candidate may have planted for Python start-up, so the
checkout is the developer's own (see :mod:`checkout`)."""

from __future__ import annotations

import contextlib
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import IO

MAX_MEMBERS = 20000
MAX_BYTES = 256 << 20  # unpacked bytes: a bomb stops here, and the checkout is partial


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_BYTES

    def copy(self, src: IO[bytes], dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("wb") as out:
            while self.left > 0:
                chunk = src.read(min(1 << 20, self.left))
                if not chunk:
                    break
                out.write(chunk)
                self.left -= len(chunk)


def _inside(dest: Path, name: str) -> Path | None:
    # Only folders and regular files are made, so resolving cannot follow a link the
    # archive planted: a path that leaves *dest* as text is refused.  No ``.git``: its
    # hooks are watched persistence files, and these would be the agent's writes.
    if ".git" in Path(name).parts:
        return None
    full = (dest / name).resolve()
    return full if full.is_relative_to(dest) and full != dest else None


def unpack(sdist: Path, dest: Path) -> None:
    """Unpack *sdist* into *dest*: regular files and folders only, bounded."""
    dest = dest.resolve()
    budget = _Budget()
    if sdist.name.lower().endswith(".zip"):
        with zipfile.ZipFile(sdist) as zf:
            for info in zf.infolist()[:MAX_MEMBERS]:
                target = _inside(dest, info.filename)
                if target is None or budget.left <= 0:
                    continue
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    with zf.open(info) as src:
                        budget.copy(src, target)
        return
    with tarfile.open(sdist) as tf:
        for count, m in enumerate(tf):
            if count >= MAX_MEMBERS or budget.left <= 0:
                break
            target = _inside(dest, m.name)
            if target is None:
                continue
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif m.isfile():
                member = tf.extractfile(m)
                if member is not None:
                    with member:
                        budget.copy(member, target)


def main(argv: list[str]) -> int:
    """``unpack.py SDIST DEST``: DEST made fresh (its parent too, when missing); a
    damaged archive leaves what unpacked. Exit 3, nothing written, when the parent is
    a link or DEST exists: the failed install ran as this uid and may have planted
    either to send these untraced writes somewhere it chose."""
    sdist, dest = Path(argv[0]), Path(argv[1])
    try:
        if dest.parent.is_symlink():
            return 3
        dest.parent.mkdir(exist_ok=True)
        if dest.parent.is_symlink() or not dest.parent.is_dir():
            return 3
        dest.mkdir()  # never an existing one (nor a link: mkdir does not follow it)
    except OSError:
        return 3
    with contextlib.suppress(OSError, tarfile.TarError, zipfile.BadZipFile, EOFError, ValueError):
        unpack(sdist, dest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
