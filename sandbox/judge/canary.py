"""The proof that honeytokens left: pure code, host side.

The honeytokens themselves (:func:`make_honeytokens`) are made in
:mod:`sandbox.judge.honeytokens`; each carries one or more *canaries*.
:class:`CanaryMatcher` looks for those canaries in captured outbound bytes
— plain, base64 (standard and URL-safe, every alignment), base32, hex,
URL-encoded, JSON-escaped, compressed (gzip, zlib, bz2, xz, zip members), and nested
combinations of those — and in DNS query names, where exfiltration splits the
encoded secret into labels and often across queries.

A match is proof: the canary exists only in the planted file or variable, so the
bytes that carry it were read from there and sent.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import contextlib
import lzma
import re
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus, unquote_to_bytes

from sandbox.judge.honeytokens import Canary

# --------------------------------------------------------------------------- matching


# What netcapture appends to an execute-phase find whose canary sat only in an
# authentication header (the calls judge it as a client logging in: calls.as_context).
AUTH_ONLY = " (only in an authentication header)"


@dataclass(frozen=True)
class CanaryMatch:
    """A canary found in some bytes."""

    canary: Canary
    encoding: str  # how it was encoded, outermost first: "base64", "gzip>base64", "hex (dns labels)" …
    offset: int  # in the view it was found in (the raw bytes when ``encoding`` has no ">")
    excerpt: str  # the bytes around it, escaped


MIN_B64_FRAGMENT = 12  # shorter aligned fragments could occur by chance
MAX_VIEWS = 256
MAX_VIEW_BYTES = 8 << 20
MAX_DEPTH = 3


def _b64_fragments(value: bytes, alphabet_urlsafe: bool) -> list[str]:
    """The part of base64(value) fixed by *value* alone, for each of the 3 alignments.

    With *a* unknown bytes before the value, base64 characters ``[ceil(8a/6),
    floor(8(a+n)/6))`` depend on the value's bits only.
    """
    out = []
    n = len(value)
    for a in range(3):
        enc = base64.b64encode(b"\0" * a + value + b"\0\0").decode()
        start = -(-8 * a // 6)
        end = (8 * (a + n)) // 6
        frag = enc[start:end]
        if alphabet_urlsafe:
            frag = frag.replace("+", "-").replace("/", "_")
        if len(frag) >= MIN_B64_FRAGMENT:
            out.append(frag)
    return out


def _b32_fragments(value: bytes) -> list[str]:
    """Like :func:`_b64_fragments` for base32 (5 alignments), lower case."""
    out = []
    n = len(value)
    for a in range(5):
        enc = base64.b32encode(b"\0" * a + value + b"\0" * 5).decode().lower()
        start = -(-8 * a // 5)
        end = (8 * (a + n)) // 5
        frag = enc[start:end]
        if len(frag) >= MIN_B64_FRAGMENT:
            out.append(frag)
    return out


@dataclass
class _Needles:
    exact: list[tuple[bytes, str]] = field(default_factory=list)  # case-sensitive
    folded: list[tuple[bytes, str]] = field(default_factory=list)  # searched in lower-cased bytes


def _needles(c: Canary) -> _Needles:
    v = c.value.encode()
    n = _Needles()
    n.exact.append((v, "plain"))
    for frag in _b64_fragments(v, False):
        n.exact.append((frag.encode(), "base64"))
    for frag in _b64_fragments(v, True):
        n.exact.append((frag.encode(), "base64url"))
    n.folded.append((v.lower(), "plain (case-folded)"))
    n.folded.append((v.hex().encode(), "hex"))
    for frag in _b32_fragments(v):
        n.folded.append((frag.encode(), "base32"))
    for enc in {quote(c.value, safe=""), quote_plus(c.value)}:
        if enc != c.value:
            n.folded.append((enc.lower().encode(), "url-encoded"))
    return n


_B64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RUN = re.compile(rb"(?:[0-9a-fA-F]{2}){12,}")
# Byte values in decimal, one separator apart (``115.107.95.108/105.118…``: a version-
# or address-looking path segment, a list in a header): 12 bytes at least.
_BYTE = rb"(?:25[0-5]|2[0-4]\d|1\d\d|\d\d?)"
_DEC_RUN = re.compile(rb"(?<!\d)(?:" + _BYTE + rb"[./,;:_ -]){11,}" + _BYTE + rb"(?!\d)")
_DEC_SEP = re.compile(rb"[./,;:_ -]")
_B32_RUN = re.compile(rb"[A-Za-z2-7]{16,}={0,6}")
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\x78\x01", "zlib"),
    (b"\x78\x5e", "zlib"),
    (b"\x78\x9c", "zlib"),
    (b"\x78\xda", "zlib"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
)


def _decompress(data: bytes, kind: str, limit: int) -> bytes | None:
    try:
        if kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, limit)
        if kind == "zlib":
            return zlib.decompressobj().decompress(data, limit)
        if kind == "bz2":
            return bz2.BZ2Decompressor().decompress(data, limit)
        if kind == "xz":
            return lzma.LZMADecompressor().decompress(data, limit)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return None
    return None


_ZIP_LOCAL = b"PK\x03\x04"
_ZIP_HEADER = struct.Struct("<4sHHHHHIIIHH")  # a local file header (APPNOTE 4.3.7)


def _zip_members(view: bytes, limit: int, most: int = 32) -> list[bytes]:
    """The members of a zip archive anywhere in *view* (stealers zip their loot, a
    browser profile or a Telegram ``tdata``, and upload it as one file): each local
    header's data, stored, deflated or bzip2'd, read from the header alone (no central
    directory: a capture may hold the archive cut, or inside a multipart body).
    Encrypted members are skipped; a member whose size the header leaves to a data
    descriptor runs to the stream's end (compressed) or the next header (stored). At
    most *limit* bytes in all: a bomb of many members costs no more than one."""
    out: list[bytes] = []
    at = view.find(_ZIP_LOCAL)
    while at >= 0 and len(out) < most and limit > 0:
        head = view[at : at + _ZIP_HEADER.size]
        nxt = view.find(_ZIP_LOCAL, at + 4)
        if len(head) == _ZIP_HEADER.size:
            _sig, _ver, flags, method, _tm, _dt, _crc, csize, _usize, nlen, xlen = _ZIP_HEADER.unpack(head)
            start = at + _ZIP_HEADER.size + nlen + xlen
            end = start + csize if csize > 0 and not flags & 0x08 else (nxt if nxt > 0 else len(view))
            body = view[start:end]
            member: bytes | None = None
            if flags & 0x01 or not body:
                pass  # encrypted, or nothing captured
            elif method == 0:
                member = body[:limit]
            elif method == 8:
                with contextlib.suppress(zlib.error):
                    member = zlib.decompressobj(-15).decompress(body, limit)
            elif method == 12:
                member = _decompress(body, "bz2", limit)
            if member:
                out.append(member)
                limit -= len(member)
        at = nxt
    return out


def _b64_decode(run: bytes) -> bytes | None:
    text = run.rstrip(b"=")
    text = text[: len(text) - len(text) % 4] if len(text) % 4 == 1 else text
    padded = text + b"=" * (-len(text) % 4)
    try:
        if b"-" in padded or b"_" in padded:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded)
    except (binascii.Error, ValueError):
        return None


def _b32_decode(run: bytes) -> bytes | None:
    text = run.rstrip(b"=").upper()
    text = text[: len(text) - len(text) % 8] if len(text) % 8 in (1, 3, 6) else text
    try:
        return base64.b32decode(text + b"=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None


def derived_views(data: bytes, depth: int = MAX_DEPTH) -> list[tuple[str, bytes]]:
    """*data* and what it decodes to: URL/JSON unescaping, base64/base32/hex runs,
    compressed streams (at each magic number), nested up to *depth* levels; bounded
    in count and bytes. Each view is named by its chain of decodings."""
    views: list[tuple[str, bytes]] = [("", data)]
    seen = {data}
    total = len(data)
    i = 0
    while i < len(views) and len(views) < MAX_VIEWS:
        name, view = views[i]
        i += 1
        if name.count(">") + (1 if name else 0) >= depth:
            continue
        found: list[tuple[str, bytes]] = []
        if b"%" in view or b"+" in view:
            found.append(("url", unquote_to_bytes(view.replace(b"+", b" "))))
        if b"\\" in view:
            found.append(("json", view.replace(b"\\/", b"/").replace(b"\\n", b"\n").replace(b'\\"', b'"')))
        for magic, kind in _MAGIC:
            start = view.find(magic)
            hits = 0
            while start >= 0 and hits < 4:
                out = _decompress(view[start:], kind, MAX_VIEW_BYTES)
                if out:
                    found.append((kind, out))
                hits += 1
                start = view.find(magic, start + 1)
        if _ZIP_LOCAL in view:
            found += [("zip", m) for m in _zip_members(view, MAX_VIEW_BYTES)]
        for rx, kind, dec in ((_B64_RUN, "base64", _b64_decode), (_B32_RUN, "base32", _b32_decode)):
            for m in list(rx.finditer(view))[:32]:
                out = dec(m.group(0))
                if out and len(out) >= 8:
                    found.append((kind, out))
        for m in list(_HEX_RUN.finditer(view))[:32]:
            with contextlib.suppress(ValueError):
                found.append(("hex", bytes.fromhex(m.group(0).decode())))
        for m in list(_DEC_RUN.finditer(view))[:32]:
            found.append(("decimal bytes", bytes(int(x) for x in _DEC_SEP.split(m.group(0)))))
        for kind, out in found:
            if out in seen or total + len(out) > MAX_VIEW_BYTES * 4:
                continue
            seen.add(out)
            total += len(out)
            views.append((f"{name}>{kind}" if name else kind, out))
            if len(views) >= MAX_VIEWS:
                break
    return views


def _excerpt(data: bytes, at: int, n: int) -> str:
    lo, hi = max(0, at - 24), min(len(data), at + n + 24)
    return data[lo:hi].decode("latin-1").encode("unicode_escape").decode("ascii")[:240]


class CanaryMatcher:
    """Finds the canaries of a :class:`HoneytokenSet` in captured bytes."""

    def __init__(self, canaries: Sequence[Canary]) -> None:
        self.canaries = tuple(c for c in canaries if len(c.value) >= 16)
        self._needles = [(c, _needles(c)) for c in self.canaries]

    def search(self, data: bytes, *, decode: bool = True) -> list[CanaryMatch]:
        """Every canary in *data* or in what it decodes to (one match per canary: the
        most direct encoding wins)."""
        if not self.canaries or not data:
            return []
        found: dict[str, CanaryMatch] = {}
        for view_name, view in derived_views(data) if decode else [("", data)]:
            lowered = view.lower()
            for c, needles in self._needles:
                if c.value in found:
                    continue
                for needle, enc in needles.exact:
                    at = view.find(needle)
                    if at >= 0:
                        found[c.value] = CanaryMatch(
                            c, _chain(view_name, enc), at, _excerpt(view, at, len(needle))
                        )
                        break
                else:
                    for needle, enc in needles.folded:
                        at = lowered.find(needle)
                        if at >= 0:
                            found[c.value] = CanaryMatch(
                                c, _chain(view_name, enc), at, _excerpt(view, at, len(needle))
                            )
                            break
            if len(found) == len(self.canaries):
                break
        return list(found.values())

    def search_dns(self, names: Sequence[str]) -> list[tuple[CanaryMatch, tuple[int, ...]]]:
        """Canaries in query names, in order; each match names the queries it spans.

        Exfiltration over DNS puts encoded data in the labels left of the domain it
        controls, split at arbitrary points, often over several queries, sometimes
        with a sequence number label. The streams tried: each name's data labels
        joined; and, per domain, all its queries' data labels concatenated in
        order, as they are, without the first label, and without labels that are
        short decimal numbers.
        """
        out: list[tuple[CanaryMatch, tuple[int, ...]]] = []
        done: set[str] = set()
        for text, idx in dns_streams(names):
            for m in self.search(text.encode(), decode=True):
                if m.canary.value in done:
                    continue
                done.add(m.canary.value)
                out.append((CanaryMatch(m.canary, f"{m.encoding} (dns labels)", m.offset, m.excerpt), idx))
        return out


def _chain(view: str, enc: str) -> str:
    """How the canary was wrapped, outermost first: the decodings that led to the
    view (``base64>gzip``: base64 of gzip'd data), then the needle's own encoding."""
    if not view:
        return enc
    steps = view.split(">")
    return ">".join([*steps, enc]) if enc != "plain" else ">".join(steps)


def _split_name(name: str) -> tuple[list[str], str]:
    labels = [lb for lb in name.rstrip(".").split(".") if lb]
    if len(labels) <= 2:
        return [], ".".join(labels)
    return labels[:-2], ".".join(labels[-2:])


_DECIMAL = re.compile(r"^\d{1,4}$")


def dns_streams(names: Sequence[str]) -> list[tuple[str, tuple[int, ...]]]:
    """Candidate data streams in a sequence of query names (see :meth:`CanaryMatcher.search_dns`)."""
    streams: list[tuple[str, tuple[int, ...]]] = []
    by_domain: dict[str, list[tuple[int, list[str]]]] = {}
    for i, name in enumerate(names):
        data, domain = _split_name(name)
        if not data:
            continue
        seq = by_domain.setdefault(domain, [])
        if seq and seq[-1][1] == data:
            continue  # A and AAAA (or a retry) of the same name: once
        seq.append((i, data))
        streams.append(("".join(data), (i,)))
    for seq in by_domain.values():
        if len(seq) < 2:
            continue
        idx = tuple(i for i, _ in seq)
        variants = (
            "".join("".join(d) for _, d in seq),
            "".join("".join(d[1:]) for _, d in seq),
            "".join("".join(lb for lb in d if not _DECIMAL.match(lb)) for _, d in seq),
        )
        for v in dict.fromkeys(variants):
            if v:
                streams.append((v, idx))
    return streams


# Request fields an encoded secret is split across: separators dropped, pieces joined in
# order (alphanumerics only for hex/base32/plain; the base64 alphabets kept for base64).
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
_NOT_B64 = re.compile(r"[^A-Za-z0-9+/=_-]")
_STANDARD_HEADERS = frozenset(
    {"host", "accept", "accept-encoding", "accept-language", "connection", "user-agent", "cache-control"}
)


def _unshared(values: list[str]) -> list[str]:
    """*values* without the prefix and suffix they all share (``Mozilla/5.0 (…)``)."""

    def shared(vs: list[str]) -> int:
        n = min(len(v) for v in vs)
        return next((i for i in range(n) if len({v[i] for v in vs}) > 1), n)

    pre = shared(values)
    suf = shared([v[pre:][::-1] for v in values])
    return [v[pre : len(v) - suf] for v in values]


def _pieces(paths: list[list[str]]) -> tuple[list[str], list[str]]:
    """One piece per fetch: the segments of *paths* (in order) without those every fetch
    repeats; and also without a sequence number (a position decimal in every fetch)."""
    if len({len(p) for p in paths}) != 1:
        fixed = set.intersection(*(set(p) for p in paths))
        varying = [s for p in paths for s in p if s not in fixed]
        return varying, varying
    cols = list(zip(*paths, strict=True))
    keep = [len(set(col)) > 1 for col in cols]
    counter = [all(_DECIMAL.match(x) for x in col) for col in cols]
    varying = [s for p in paths for i, s in enumerate(p) if keep[i]]
    return varying, [s for p in paths for i, s in enumerate(p) if keep[i] and not counter[i]]


def joined_fields(requests: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> bytes:
    """The streams a secret split across the parts of HTTP requests (``(target,
    headers)``, in order) would form again: path segments, each header value, the
    non-standard header values, all joined with their separators (``.``, ``/``,
    ``-``, spaces) dropped, per request and across the requests given.  Like DNS
    labels: ``/cdn/4a6f686e2053/6d697468206b/…``, UUID-shaped ``X-*-Id`` headers or a
    User-Agent of spaced hex chunks hide the hex of a canary from a search of the raw
    bytes.  Streams are newline-separated so that none joins another."""
    streams: list[list[str]] = []
    all_targets: list[str] = []
    all_extra: list[str] = []
    for target, headers in requests:
        segs = [s for s in re.split(r"[/?&=#;]", target) if s]
        extra = [v for k, v in headers if k.lower() not in _STANDARD_HEADERS]
        streams += [segs, [v for _, v in headers], extra, *[[v] for _, v in headers]]
        all_targets += segs
        all_extra += extra
    if len(requests) > 1:
        varying, unnumbered = _pieces([[s for s in re.split(r"[/?&=#;]", t) if s] for t, _ in requests])
        by_name: dict[str, list[str]] = {}
        for _, headers in requests:
            for k, v in headers:
                by_name.setdefault(k.lower(), []).append(v)
        streams += [all_targets, all_extra, varying, unnumbered]
        streams += [_unshared([t for t, _ in requests])]
        streams += [_unshared(vs) for vs in by_name.values() if len(set(vs)) > 1]
    out: list[str] = [t for t, _ in requests]  # as sent too (decimal bytes need their separators)
    out += [v for _, headers in requests for _, v in headers]
    for parts in streams:
        for rx in (_NOT_ALNUM, _NOT_B64):
            joined = "".join(rx.sub("", p) for p in parts)
            if len(joined) >= 16:
                out.append(joined)
    return "\n".join(dict.fromkeys(out)).encode("utf-8", "replace")


def names_value(value: str, requests: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> bool:
    """Whether the fields of *requests* (``(target, headers)``) carry *value* (a
    short fact of the sandbox, like its host name, that is no canary): plainly,
    case-folded or in hex, base32 or base64 (every alignment), whole or split across
    the fields as :func:`joined_fields` joins them."""
    if len(value) < 4:
        return False
    raw = "\n".join(f"{t}\n" + "\n".join(v for _, v in hs) for t, hs in requests).encode("utf-8", "replace")
    hay = raw + b"\n" + joined_fields(requests)
    needles = _needles(Canary("value", value, ""))
    low = hay.lower()
    return any(n in hay for n, _ in needles.exact) or any(n in low for n, _ in needles.folded)


def find_canaries(data: bytes, canaries: Iterable[Canary]) -> list[CanaryMatch]:
    """Convenience: :meth:`CanaryMatcher.search` with a throw-away matcher."""
    return CanaryMatcher(list(canaries)).search(data)
