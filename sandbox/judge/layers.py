"""What obfuscated source hides, read without running it (pure code, host side).

Malware wraps its code in literal blobs it decodes at run time
(``exec(base64.b64decode("…"))``, ``zlib.decompress``, a hex string, a reversed
base64 string) and spells names in pieces (``import_module("o" + "s")``). A scan of the
text alone sees none of it. :func:`readable` gives the source with adjacent string
literals joined, then every layer those blobs decode to (base64, url-safe base64, hex;
each optionally reversed and then zlib/gzip/bz2/lzma-compressed), recursively, within
fixed bounds; a layer counts only when it decodes to mostly printable text (source
code), so random keys and images add nothing.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import contextlib
import lzma
import re
import zlib
from collections.abc import Iterator

MAX_DEPTH = 3  # blobs inside decoded blobs
MAX_BLOBS = 64  # candidate blobs tried per layer
MAX_OUT = 1 << 20  # bytes kept of one decoded layer
MIN_BLOB = 24  # characters: shorter literals are names and words, not payloads

# a string literal that is all base64/hex characters (the regex engine only starts at a
# quote: a 40 MB wheel is scanned in about a second), or a triple-quoted one wrapped
# over lines (MIME-style 76-character lines)
_B64 = re.compile(rb"""(['"])(={0,2}[A-Za-z0-9+/_-]{%d,}={0,2})\1""" % MIN_BLOB)  # "=" first: reversed
_WRAPPED = re.compile(rb"('''|\x22\x22\x22)\s*([A-Za-z0-9+/_=\s-]{%d,}?)\s*\1" % MIN_BLOB)
_SPACE = re.compile(rb"\s+")
_HEX = re.compile(rb"(?:[0-9a-fA-F]{2}){%d,}" % (MIN_BLOB // 2))
# a chain of one-line literals joined by "+" or side by side: "ab" + "cd", 'ab' 'cd'
_LIT = rb"""(?:'[^'\\\n]*'|"[^"\\\n]*")"""
_CHAIN = re.compile(_LIT + rb"(?:(?:\s*\+\s*|[ \t]+)" + _LIT + rb")+")
_PART = re.compile(rb"""'([^'\\\n]*)'|"([^"\\\n]*)\"""")


def joined(data: bytes) -> bytes:
    """*data* with adjacent one-line string literals merged: ``"GITHUB_" + "ACTIONS"``
    reads ``"GITHUB_ACTIONS"``, ``"o"+"s"`` reads ``"os"``."""

    def merge(m: re.Match[bytes]) -> bytes:
        quote = m.group(0)[:1]
        return quote + b"".join(a or b for a, b in _PART.findall(m.group(0))) + quote

    return _CHAIN.sub(merge, data)


def _printable(text: bytes) -> bool:
    """Mostly printable ASCII with some structure: decoded source, not noise."""
    if len(text) < 8:
        return False
    sample = text[:4096]
    good = sum(32 <= b < 127 or b in (9, 10, 13) for b in sample)
    return good >= 0.95 * len(sample) and (b" " in sample or b"(" in sample or b"\n" in sample)


def _inflate(raw: bytes) -> bytes | None:
    """*raw* decompressed by the format its magic bytes name (bounded), else None."""
    try:
        if raw[:1] == b"\x78" and int.from_bytes(raw[:2], "big") % 31 == 0:  # zlib header
            return zlib.decompressobj().decompress(raw, MAX_OUT) or None
        if raw[:2] == b"\x1f\x8b":
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, MAX_OUT) or None
        if raw[:3] == b"BZh":
            return bz2.BZ2Decompressor().decompress(raw, MAX_OUT) or None
        if raw[:6] == b"\xfd7zXZ\x00" or raw[:3] == b"\x5d\x00\x00":  # xz, lzma-alone
            return lzma.LZMADecompressor().decompress(raw, MAX_OUT) or None
    except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError):
        return None
    return None


def _decodings(blob: bytes) -> Iterator[bytes]:
    """Bytes *blob* may stand for: base64 (standard or url-safe, padding mended) and hex,
    of the blob and of its reverse."""
    for text in (blob, blob[::-1]):
        if _HEX.fullmatch(text):
            with contextlib.suppress(binascii.Error):
                yield binascii.unhexlify(text)
        body = text.rstrip(b"=")
        padded = body + b"=" * (-len(body) % 4)
        for alt in (b"+/", b"-_"):
            try:
                yield base64.b64decode(padded, altchars=alt, validate=True)
            except (binascii.Error, ValueError):
                continue


def _decoded(data: bytes) -> Iterator[bytes]:
    """The printable layers directly under *data*."""
    seen: set[bytes] = set()
    blobs = {m.group(2) for m in _B64.finditer(data)}
    blobs |= {_SPACE.sub(b"", m.group(2)) for m in _WRAPPED.finditer(data)}
    # the longest first: a payload is long, identifiers and names are short
    for blob in sorted(blobs, key=len, reverse=True)[:MAX_BLOBS]:
        for raw in _decodings(blob):
            for out in (raw, _inflate(raw)):
                if out and _printable(out) and out not in seen:
                    seen.add(out)
                    yield out[:MAX_OUT]


def readable(data: bytes, depth: int = MAX_DEPTH) -> Iterator[bytes]:
    """*data* (literals joined), then each decoded layer under it, depth first."""
    data = joined(data)
    yield data
    if depth <= 0:
        return
    for layer in _decoded(data):
        yield from readable(layer, depth - 1)
