"""Make the sandbox trust the run's CA (:mod:`tlsca`), as a corporate TLS-inspection
root is trusted on a developer's laptop (runs as root in the sandbox; stdlib only).

Where clients look for roots, and what is done there:

* the system store: the CA in ``/usr/local/share/ca-certificates/NAME.crt`` and
  appended to ``/etc/ssl/certs/ca-certificates.crt`` with the ``NAME.pem`` and
  subject-hash links, which is what ``update-ca-certificates`` would leave (it
  takes far longer: it rebuilds every link). OpenSSL (Python's ``ssl``, curl,
  git), Go and rustls-native-certs read these; the files are root-owned and the
  candidate (uid 1000) cannot change them;
* certifi-style bundles (``certifi/cacert.pem``, pip's vendored copy, botocore's)
  in the venv and the system site directories: the CA is appended. The venv
  belongs to the candidate (HOME is its own), so these are patched again before
  every phase after install, through file descriptors opened without following
  any symlink (a hostile venv must not turn a root write into a write elsewhere).
  Removing the CA from its own bundle only makes the candidate's own TLS fail,
  which still leaves its SNI and ALPN in the capture;
* the environment: ``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``,
  ``NODE_EXTRA_CA_CERTS`` (:func:`env_vars`), as corporate machines set them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import time
from pathlib import Path

from . import protocol, tlsca

SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SYSTEM_DIR = Path("/etc/ssl/certs")
LOCAL_DIR = Path("/usr/local/share/ca-certificates")
STATE = Path(protocol.TRACE_MOUNT) / "tls" / "trust.json"  # root-only tmpfs (0700), never collected
BUNDLE_NAMES = ("cacert.pem", "cacerts.txt")
MAX_BUNDLE = 8 << 20
MAX_SCAN = 5000


def subject_hash(name_der: bytes) -> str:
    """OpenSSL's ``X509_NAME_hash`` of a Name whose values are plain ASCII (ours):
    SHA-1 of the canonical form (each RDN's value as a lower-cased, whitespace-
    collapsed UTF8String, the RDN sets concatenated), first 4 bytes little-endian."""
    canon = b""
    for oid_tlv, value in _rdns(name_der):
        text = " ".join(value.decode("utf-8", "replace").split()).lower()
        canon += tlsca.tlv(0x31, tlsca.seq(oid_tlv, tlsca.tlv(0x0C, text.encode())))
    return f"{int.from_bytes(hashlib.sha1(canon).digest()[:4], 'little'):08x}"


def _rdns(name_der: bytes) -> list[tuple[bytes, bytes]]:
    """(OID TLV, value bytes) of each single-attribute RDN of a short DER Name."""

    def read(buf: bytes, pos: int) -> tuple[int, int, int]:  # tag, body start, body end
        tag, n = buf[pos], buf[pos + 1]
        pos += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(buf[pos : pos + k], "big")
            pos += k
        return tag, pos, pos + n

    out = []
    _t, pos, end = read(name_der, 0)
    while pos < end:
        _t, s_start, s_end = read(name_der, pos)  # SET
        _t, q_start, _q_end = read(name_der, s_start)  # SEQUENCE
        _t, _o_start, o_end = read(name_der, q_start)  # OID
        _t, v_start, v_end = read(name_der, o_end)  # value
        out.append((name_der[q_start:o_end], name_der[v_start:v_end]))
        pos = s_end
    return out


def install_system(ca_pem: str, stem: str, subject: str) -> list[str]:
    """Put the CA into the system store (*subject*: its subject hash, for the
    ``HASH.0`` link); returns problems (empty: done)."""
    problems = []
    local = LOCAL_DIR / f"{stem}.crt"
    try:
        LOCAL_DIR.mkdir(parents=True, exist_ok=True)
        local.write_text(ca_pem)
        local.chmod(0o644)
    except OSError as exc:
        problems.append(f"{local}: {exc.strerror or exc}")
    try:
        text = SYSTEM_BUNDLE.read_text() if SYSTEM_BUNDLE.exists() else ""
        if ca_pem not in text:
            with SYSTEM_BUNDLE.open("a") as fh:
                fh.write(("" if not text or text.endswith("\n") else "\n") + ca_pem)
    except OSError as exc:
        problems.append(f"{SYSTEM_BUNDLE}: {exc.strerror or exc}")
    for link, target in (
        (SYSTEM_DIR / f"{stem}.pem", str(local)),
        (SYSTEM_DIR / f"{subject}.0", f"{stem}.pem"),
    ):
        try:
            if link.is_symlink() and os.readlink(link) == target:
                continue
            if link.is_symlink() or link.exists():  # a hash collision: the next free suffix
                if link.suffix == ".0":
                    link = next(
                        link.with_suffix(f".{i}")
                        for i in range(1, 10)
                        if not link.with_suffix(f".{i}").exists()
                    )
                else:
                    link.unlink()
            link.symlink_to(target)
        except (OSError, StopIteration) as exc:
            problems.append(f"{link}: {exc}")
    return problems


def save_state(state: dict[str, str], path: Path | None = None) -> None:
    """The CA certificate (``ca_pem``, ``stem``, ``hash``) or the ``error`` that
    prevented it, for ``agent setup`` and later phases (other processes); atomic."""
    path = path or STATE
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(state))
    os.replace(tmp, path)


def load_state(path: Path | None = None) -> dict[str, str] | None:
    """The CA's state when there is a CA (None: TLS termination is off or failed)."""
    try:
        data = json.loads((path or STATE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("ca_pem") else None


def wait_state(timeout: float, path: Path | None = None) -> dict[str, str]:
    """Wait for the sinkhole daemon to publish its CA (it makes it while set-up
    prepares HOME and the venv); ``{"error": …}`` when it did not in time."""
    end = time.monotonic() + timeout
    path = path or STATE
    while True:
        try:
            data = json.loads(path.read_text())
            if isinstance(data, dict):
                return data
        except (OSError, ValueError):
            pass
        if time.monotonic() >= end:
            return {"error": f"no CA from the sinkhole within {timeout:.0f}s"}
        time.sleep(0.005)


def env_vars(state: dict[str, str] | None) -> dict[str, str]:
    """The CA variables a corporate laptop's shell exports (none when TLS is off)."""
    if not state:
        return {}
    bundle = str(SYSTEM_BUNDLE)
    return {
        "SSL_CERT_FILE": bundle,
        "REQUESTS_CA_BUNDLE": bundle,
        "CURL_CA_BUNDLE": bundle,
        "NODE_EXTRA_CA_CERTS": str(LOCAL_DIR / f"{state['stem']}.crt"),
    }


def find_bundles(roots: list[Path]) -> list[Path]:
    """certifi-style bundles directly in a package (``certifi/cacert.pem``,
    ``botocore/cacert.pem``) or in its ``_vendor/certifi`` (pip); bounded scan,
    no symlink followed."""
    found: list[Path] = []
    seen = 0
    for root in roots:
        try:
            entries = list(os.scandir(root))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > MAX_SCAN:
                return found
            with contextlib.suppress(OSError):
                if not entry.is_dir(follow_symlinks=False):
                    continue
                base = Path(entry.path)
                for rel in (*BUNDLE_NAMES, "_vendor/certifi/cacert.pem"):
                    p = base / rel
                    if p.is_file() and not p.is_symlink():
                        found.append(p)
    return found


def _open_dir_nofollow(path: Path) -> int:
    """A descriptor for directory *path*, reached without following any symlink."""
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in path.parts[1:]:
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except OSError:
        os.close(fd)
        raise
    return fd


def append_ca(path: Path, ca_pem: str) -> bool:
    """Append the CA to the bundle at *path* unless it is there; keeps owner and mode.
    Returns True when the file was changed. Raises :class:`OSError` when it cannot.

    Root here has CAP_CHOWN but not CAP_DAC_OVERRIDE: a file of the candidate is
    taken over (fchown to root), written, and given back — all through
    descriptors of the same inode, opened with O_NOFOLLOW below a directory
    descriptor reached the same way.
    """
    dfd = _open_dir_nofollow(path.parent)
    try:
        rfd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
        try:
            st = os.fstat(rfd)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_size > MAX_BUNDLE:
                raise OSError(f"{path}: not a plain bundle file")
            data = b""
            while chunk := os.read(rfd, 1 << 20):
                data += chunk
            if ca_pem.encode() in data:
                return False
            if not re.search(rb"-----BEGIN CERTIFICATE-----", data):
                raise OSError(f"{path}: not a PEM bundle")
            mode = stat.S_IMODE(st.st_mode)
            os.fchown(rfd, 0, 0)
            try:
                os.fchmod(rfd, 0o644)
                wfd = os.open(path.name, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW, dir_fd=dfd)
                try:
                    wst = os.fstat(wfd)
                    if (wst.st_dev, wst.st_ino) != (st.st_dev, st.st_ino):
                        raise OSError(f"{path}: replaced while being patched")
                    os.write(wfd, (b"" if data.endswith(b"\n") else b"\n") + ca_pem.encode())
                finally:
                    os.close(wfd)
            finally:
                os.fchmod(rfd, mode)
                os.fchown(rfd, st.st_uid, st.st_gid)
            return True
        finally:
            os.close(rfd)
    finally:
        os.close(dfd)


def patch_bundles(roots: list[Path], ca_pem: str) -> tuple[list[str], list[str]]:
    """Append the CA to every bundle under *roots*; returns (patched paths, problems)."""
    patched, problems = [], []
    for path in find_bundles(roots):
        try:
            if append_ca(path, ca_pem):
                patched.append(str(path))
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
    return patched, problems


def python_roots(venv: Path) -> list[Path]:
    """site-packages of the venv and the system interpreters' package directories."""
    roots = sorted(venv.glob("lib/python*/site-packages"))
    roots.append(Path("/usr/lib/python3/dist-packages"))
    roots += sorted(Path("/usr/local/lib").glob("python3*/site-packages"))
    return [r for r in roots if r.is_dir()]


def publish(authority: tlsca.Authority) -> None:
    """The daemon's side of :func:`wait_state`."""
    stem, subject = authority.file_stem, subject_hash(authority.name)
    save_state({"ca_pem": authority.ca_pem, "stem": stem, "hash": subject})
