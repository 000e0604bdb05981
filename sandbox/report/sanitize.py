"""The one sanitiser of untrusted text, for every rendering: terminal, ``show``, HTML, Markdown, SARIF, JUnit.

Every string that came out of the sandbox (paths, argv, payload bytes, pip's output,
even a report file handed to ``show``) is attacker-controlled. Before any renderer
lays it out, it goes through :func:`printable` (a single-line field) or
:func:`printable_lines` (a block whose line breaks are its structure):

- C0 and C1 controls and DEL — ESC starts terminal escape sequences (CSI colours,
  OSC titles, OSC 8 hyperlinks), BEL and backspace rewrite what is shown, CR and LF
  forge lines — are written as ``\\x1b``, ``\\x07``, ``\\r``, ``\\n`` …;
- bidirectional controls (embeddings, overrides, isolates, the LRM/RLM/ALM marks:
  U+202A..U+202E, U+2066..U+2069, U+200E, U+200F, U+061C), which make ``exe.txt``
  read as ``txt.exe``, and invisible characters (zero-width, word joiners, the
  BOM, line/paragraph separators, interlinear annotations) as ``\\u202e`` …;
- lone surrogates, which cannot even be encoded as UTF-8, as ``\\udc80``.

The result is visible and inert in any of the formats; markup escaping (rich, HTML,
XML, Markdown code spans) stays each renderer's job.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

# All of these are in Unicode's "Other" or "Separator" categories, so str.isprintable()
# (C, fast) is False for any string holding one: the regex runs only on the rare strings
# that need a look.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
_UNSAFE_IN_BLOCK = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group(0)
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _cut(text: str, limit: int | None) -> str:
    # A cut is marked with "…" so a reader never mistakes a prefix for the whole.
    if limit is not None and len(text) > limit:
        return text[: max(0, limit - 1)] + "…"
    return text


def printable(text: str, limit: int | None = None) -> str:
    """*text* as one inert line: every control, bidi and invisible character shown as an escape.

    Cut at *limit* characters (after escaping), the cut marked with ``…``.
    """
    if not text.isprintable() and _UNSAFE.search(text) is not None:
        text = _UNSAFE.sub(_escape_char, text)
    return _cut(text, limit)


def printable_lines(text: str, limit: int | None = None) -> str:
    """Like :func:`printable`, but line feeds are kept (a block such as pip's output)."""
    if not text.isprintable() and _UNSAFE_IN_BLOCK.search(text) is not None:
        text = _UNSAFE_IN_BLOCK.sub(_escape_char, text)
    return _cut(text, limit)


def argv_text(argv: Sequence[str], limit: int | None = None) -> str:
    """A command line as a shell would read it (quoted where needed), made printable."""
    if not argv:
        return ""
    return printable(shlex.join(argv), limit)


def is_inert(text: str, *, lines: bool = False) -> bool:
    """True when *text* holds nothing :func:`printable` (or :func:`printable_lines`) would escape."""
    return (_UNSAFE_IN_BLOCK if lines else _UNSAFE).search(text) is None
