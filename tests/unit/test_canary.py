"""Honeytokens and canary matching (sandbox.judge.canary): property-based.

Every test draws its canaries from a freshly generated honeytoken set, embeds one
at a random offset in random bytes, encodes the whole message the way
exfiltration code does, and checks that the matcher names the right canary.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import random
import re
import string
import zipfile
import zlib
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sandbox.judge.canary import (
    CanaryMatcher,
    _b32_fragments,
    _b64_fragments,
    derived_views,
    dns_streams,
)
from sandbox.judge.honeytokens import HANDED, Canary, make_honeytokens

TOKENS = make_honeytokens(random.Random(20261125))
MATCHER = CanaryMatcher(TOKENS.canaries)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

canaries = st.sampled_from(TOKENS.canaries)
noise = st.binary(max_size=300)
text_noise = st.text(alphabet=string.ascii_letters + string.digits + ' =&:/,{}"\n', max_size=200)


def found(data: bytes, c: Canary, matcher: CanaryMatcher = MATCHER) -> str | None:
    for m in matcher.search(data):
        if m.canary == c:
            return m.encoding
    return None


# ---------------------------------------------------------------------- generation


def test_honeytokens_are_unique_per_run_and_realistic() -> None:
    a, b = make_honeytokens(), make_honeytokens()
    assert not {c.value for c in a.canaries} & {c.value for c in b.canaries}
    assert a.env["AWS_ACCESS_KEY_ID"].startswith("AKIA") and len(a.env["AWS_ACCESS_KEY_ID"]) == 20
    assert a.env["GITHUB_TOKEN"].startswith("ghp_") and len(a.env["GITHUB_TOKEN"]) == 40
    assert a.files[".ssh/id_rsa"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    # the secrets pass's set: the same names, each value redrawn in the same format
    assert a.redrawn_env.keys() == a.env.keys()
    for k, v in a.env.items():
        w = a.redrawn_env[k]
        assert len(w) == len(v) and (w == v) == (k == "AWS_DEFAULT_REGION"), k
        assert w[:3] == v[:3] or k in ("AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"), k
    for rel in (
        ".ssh/id_rsa",
        ".ssh/known_hosts",
        ".ssh/config",
        ".aws/credentials",
        ".kube/config",
        ".docker/config.json",
        ".git-credentials",
        ".netrc",
        "project/.env",
        ".electrum/wallets/default_wallet",
    ):
        assert rel in a.files, rel
    json.loads(a.files[".docker/config.json"])
    json.loads(a.files[".electrum/wallets/default_wallet"])
    for c in a.canaries:
        assert len(c.value) >= 16, c
        if c.location.endswith(" (redrawn)"):  # the secrets pass's
            assert a.redrawn_env[c.location[4 : -len(" (redrawn)")]] == c.value
        elif c.location.startswith("env "):
            assert {**a.env, **a.ci_env}[c.location[4:]] == c.value  # the ci pass's own too
        elif c.location == HANDED:  # the execute phase's caller hands these to calls
            assert c.value in a.handed.values()
        else:
            rel = c.location[2:]
            text = a.files[rel] if rel in a.files else a.blobs[rel].decode("latin-1")
            # the docker password is only in the file inside base64("user:password")
            assert c.value in text or found(text.encode(), c, CanaryMatcher(a.canaries)), c
    plan = a.plan()
    assert plan["env"] == a.env and plan["home_files"] == a.files
    assert {base64.b64decode(v) for v in plan["home_blobs"].values()} == set(a.blobs.values())  # type: ignore[union-attr]
    assert "/home/dev/.aws/credentials" in a.paths("/home/dev")
    assert all(c.fingerprint not in (c.value, "") and c.value not in c.fingerprint for c in a.canaries)


def test_reading_a_whole_planted_file_carries_its_canaries() -> None:
    for c in TOKENS.canaries:
        if c.location.startswith("~/"):
            rel = c.location[2:]
            data = TOKENS.files[rel].encode() if rel in TOKENS.files else TOKENS.blobs[rel]
            assert found(data, c) and found(base64.b64encode(data), c), c


# ---------------------------------------------------------------------- encodings


def test_base64_fragments_are_exactly_the_bytes_fixed_by_the_value() -> None:
    value = b"AKIAIOSFODNN7EXAMPLE"
    for prefix_len in range(6):
        for prefix in (b"\0" * prefix_len, b"\xff" * prefix_len):
            enc = base64.b64encode(prefix + value + b"\xaa").decode()
            assert any(f in enc for f in _b64_fragments(value, False))
            enc32 = base64.b32encode(prefix + value + b"\xaa").decode().lower()
            assert any(f in enc32 for f in _b32_fragments(value))


@SETTINGS
@given(canaries, noise, noise)
def test_plain_at_any_offset(c: Canary, pre: bytes, post: bytes) -> None:
    assert found(pre + c.value.encode() + post, c)


@SETTINGS
@given(canaries, noise, noise, st.booleans())
def test_base64_every_alignment(c: Canary, pre: bytes, post: bytes, urlsafe: bool) -> None:
    enc = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    for shift in range(3):  # every alignment of the canary in 3-byte groups
        data = enc(pre + b"x" * shift + c.value.encode() + post)
        assert found(data, c), (shift, data[:80])
        # and embedded in a larger message, after an odd number of characters
        assert found(b'{"d": "' + data + b'"}', c)


@SETTINGS
@given(canaries, text_noise, text_noise, st.booleans())
def test_hex_either_case(c: Canary, pre: str, post: str, upper: bool) -> None:
    h = (pre + c.value + post).encode().hex()
    assert found((h.upper() if upper else h).encode(), c)


@SETTINGS
@given(canaries, text_noise, text_noise, st.booleans())
def test_url_encoded(c: Canary, pre: str, post: str, plus: bool) -> None:
    q = quote_plus if plus else quote
    data = f"GET /c?d={q(pre + c.value + post, safe='')}&v=1 HTTP/1.1\r\nHost: x.invalid\r\n\r\n".encode()
    assert found(data, c)


@SETTINGS
@given(
    canaries,
    noise,
    noise,
    st.sampled_from(["gzip", "zlib", "bz2", "xz", "b64gzip", "hexzlib", "gzip-in-http"]),
)
def test_compressed_and_nested(c: Canary, pre: bytes, post: bytes, how: str) -> None:
    raw = pre + c.value.encode() + post
    data = {
        "gzip": lambda: gzip.compress(raw),
        "zlib": lambda: zlib.compress(raw),
        "bz2": lambda: bz2.compress(raw),
        "xz": lambda: lzma.compress(raw),
        "b64gzip": lambda: base64.b64encode(gzip.compress(raw)),
        "hexzlib": lambda: zlib.compress(raw).hex().encode(),
        "gzip-in-http": lambda: b"POST / HTTP/1.1\r\nContent-Encoding: gzip\r\n\r\n" + gzip.compress(raw),
    }[how]()
    assert found(data, c), how


class _Unseekable(io.RawIOBase):
    """A stream zipfile cannot seek back in: it writes each member's sizes in a data
    descriptor after the data (flag bit 3), as a stealer zipping into a pipe would."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += bytes(b)
        return len(b)


def _zipped(members: dict[str, bytes], method: int, seekable: bool = True) -> bytes:
    out: Any = io.BytesIO() if seekable else _Unseekable()
    with zipfile.ZipFile(out, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue() if seekable else bytes(out.data)


@SETTINGS
@given(
    canaries,
    noise,
    st.sampled_from([zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED, zipfile.ZIP_BZIP2]),
    st.booleans(),
    st.booleans(),
)
def test_zipped_loot_in_an_upload(
    c: Canary, pad: bytes, method: int, seekable: bool, multipart: bool
) -> None:
    # a stealer zips what it found (tdata, a browser profile) and posts the archive
    loot = {"tdata/settingss": pad, "tdata/key_datas": b"TDF$" + pad + c.value.encode() + pad}
    archive = _zipped(loot, method, seekable)
    body = (
        b'--b0undary\r\nContent-Disposition: form-data; name="document"; filename="a.zip"\r\n'
        b"Content-Type: application/zip\r\n\r\n" + archive + b"\r\n--b0undary--\r\n"
        if multipart
        else archive
    )
    # a stored member's bytes are the loot's own, found as they are; a bzip2'd one is a
    # bz2 stream of its own (its magic); a deflated one is raw deflate: only the zip
    # header says where it starts
    expected = {zipfile.ZIP_STORED: {"plain"}, zipfile.ZIP_BZIP2: {"bz2", "zip"}}.get(method, {"zip"})
    assert found(body, c) in expected, (method, seekable)


def test_a_zip_cut_short_still_gives_its_first_member() -> None:
    c = TOKENS.canaries[0]
    archive = _zipped({"a.txt": c.value.encode() * 3, "b.bin": random.Random(1).randbytes(4000)}, 8)
    assert found(archive[: len(archive) // 2], c) == "zip"
    # an encrypted member is skipped, not guessed at (bit 0 of the flags)
    flagged = archive[:6] + bytes([archive[6] | 1]) + archive[7:]
    assert found(flagged, c) is None


@SETTINGS
@given(canaries, st.data())
def test_json_escaped(c: Canary, data: st.DataObject) -> None:
    payload = json.dumps({"k": c.value, "pad": data.draw(text_noise)}).replace("/", "\\/").encode()
    assert found(payload, c)


@SETTINGS
@given(st.binary(min_size=0, max_size=4000))
def test_no_false_positive_in_random_bytes(data: bytes) -> None:
    assert MATCHER.search(data) == []
    assert MATCHER.search(base64.b64encode(data)) == []


def test_views_are_bounded() -> None:
    # a decompression bomb and a long base64 run must not blow up the search
    bomb = gzip.compress(b"\0" * (64 << 20))
    views = derived_views(base64.b64encode(bomb) * 2)
    assert sum(len(v) for _, v in views) <= 4 * (8 << 20) + len(bomb) * 6


# ---------------------------------------------------------------------- DNS


def _labels(text: str, rng: random.Random) -> list[str]:
    out, i = [], 0
    while i < len(text):
        n = rng.randrange(1, 64)
        out.append(text[i : i + n])
        i += n
    return out


@SETTINGS
@given(canaries, st.integers(0, 2**32), st.sampled_from(["hex", "HEX", "base32"]), st.booleans())
def test_dns_labels_random_splits(c: Canary, seed: int, enc: str, seq_label: bool) -> None:
    rng = random.Random(seed)
    raw = c.value.encode()
    text = {
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "base32": base64.b32encode(raw).decode().rstrip("=").lower(),
    }[enc]
    domain = f"{rng.choice(['c2', 'x7', 'cdn-check'])}{rng.randrange(1000)}.invalid"
    labels = _labels(text, rng)
    # one name, or spread over several queries (with a sequence-number label or not)
    per = rng.randrange(1, 4)
    names = []
    for q, i in enumerate(range(0, len(labels), per)):
        chunk = labels[i : i + per]
        names.append(".".join(([str(q)] if seq_label else []) + chunk + [domain]))
    noise_names = ["pypi.org", f"{rng.randrange(99)}.other.invalid"]
    hits = MATCHER.search_dns(noise_names + names)
    assert any(m.canary == c and "dns labels" in m.encoding for m, _ in hits), (names, hits)
    spans = next(idx for m, idx in hits if m.canary == c)
    assert all(i >= len(noise_names) for i in spans)


def test_dns_streams_skip_plain_names_and_repeats() -> None:
    assert dns_streams(["pypi.org", "localhost"]) == []
    streams = dns_streams(["a.b.c2.invalid", "a.b.c2.invalid", "0.d.c2.invalid"])
    assert streams == [("ab", (0,)), ("0d", (2,)), ("ab0d", (0, 2)), ("bd", (0, 2)), ("abd", (0, 2))]


@pytest.mark.parametrize("name", ["www.example.com", "a.b.c.d.e.f.g.invalid", "xn--bcher-kva.example"])
def test_no_match_in_ordinary_names(name: str) -> None:
    assert MATCHER.search_dns([name]) == []


@SETTINGS
@given(
    st.lists(st.from_regex(r"[a-z0-9]{1,20}(\.[a-z0-9]{1,20}){0,4}\.invalid", fullmatch=True), max_size=20)
)
def test_no_false_positive_in_random_names(names: list[str]) -> None:
    assume(all(len(n) < 253 for n in names))
    assert MATCHER.search_dns(names) == []


def test_discord_token_is_found_whole_by_old_and_new_grabbers() -> None:
    """The Discord honeytoken as grabbers read it: the classic pattern takes the plain
    copy whole (24.6.27), and the "dQw4w9WgXcQ:" copy decrypts (AES-GCM under the key
    in discord/Local State, DPAPI-wrapped) to the same canary."""
    from sandbox.judge import aesgcm

    tokens = make_honeytokens(random.Random(7))
    token = next(c.value for c in tokens.canaries if c.name == "discord token")
    ldb = next(
        data for rel, data in tokens.blobs.items() if rel.endswith("discord/Local Storage/leveldb/000005.ldb")
    )
    text = ldb.decode("utf-8", "ignore")
    assert re.findall(r"[\w-]{24}\.[\w-]{6}\.[\w-]{27}", text) == [token]
    state = next(v for rel, v in tokens.files.items() if rel.endswith("discord/Local State"))
    wrapped = base64.b64decode(json.loads(state)["os_crypt"]["encrypted_key"])[5:]
    key = wrapped[8:]  # the DPAPI stub's header, then the key
    found = re.findall(r"dQw4w9WgXcQ:[^.*\['(.*)'\].*$][^\"]*", text)
    assert len(found) == 1
    blob = base64.b64decode(found[0].split("dQw4w9WgXcQ:")[1])
    assert blob[:3] == b"v10"
    plain, _tag = aesgcm.encrypt(key, blob[3:15], blob[15:-16])  # CTR: the same keystream
    assert plain.decode() == token


def test_the_linux_desktop_stores_are_where_their_clients_keep_them() -> None:
    import hashlib
    import sqlite3
    import tempfile
    from pathlib import Path

    from sandbox.judge.aesgcm import cbc_encrypt

    by_location = {c.location: c.value for c in TOKENS.canaries}
    tdata = ".local/share/TelegramDesktop/tdata/key_datas"
    key_datas = TOKENS.blobs[tdata]
    assert key_datas.startswith(b"TDF$") and by_location[f"~/{tdata}"].encode() in key_datas
    ldb = ".config/discord/Local Storage/leveldb/000005.ldb"
    grabbed = re.findall(rb"[\w-]{24}\.[\w-]{6}\.[\w-]{27}", TOKENS.blobs[ldb])
    assert grabbed == [by_location[f"~/{ldb}"].encode()]  # what a classic grabber takes, whole
    # Chrome's Login Data: the v10 row decrypts (AES-128-CBC, the "peanuts" key) to the canary
    login = ".config/google-chrome/Default/Login Data"
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "Login Data"
        db_path.write_bytes(TOKENS.blobs[login])
        db = sqlite3.connect(db_path)
        blobs = [row[0] for row in db.execute("SELECT password_value FROM logins")]
        db.close()
    password = by_location[f"~/{login}"].encode()
    key = hashlib.pbkdf2_hmac("sha1", b"peanuts", b"saltysalt", 1, 16)
    assert blobs == [password, b"v10" + cbc_encrypt(key, b" " * 16, password)]
