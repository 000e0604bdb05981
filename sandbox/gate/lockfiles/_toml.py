"""What the TOML lockfile parsers share: loading with line numbers, typed access, hash lists."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from packaging.version import InvalidVersion, Version

from sandbox.errors import InputError
from sandbox.gate.lockfiles._common import _TOML_POS, _Where, tomllib

# --------------------------------------------------------------------------- TOML formats


def _load_toml(text: str, display: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = tomllib.loads(text)
        return data
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POS.search(msg)
        line = int(m.group("line")) if m else max(1, text.count("\n") + 1)
        raise InputError(f"{display}:{line}: not valid TOML: {_TOML_POS.sub('', msg).strip()}") from None


def _header_lines(text: str, header: str) -> list[int]:
    """Line numbers of each ``[[header]]`` line, in order (tomllib keeps no positions)."""
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.split("#", 1)[0].strip().replace(" ", "") == f"[[{header}]]":
            out.append(number)
    return out


def _line_of(text: str, needle: str, start_line: int = 1) -> int:
    """First line at or after *start_line* holding *needle* (0 when not found)."""
    for number, raw in enumerate(text.splitlines(), 1):
        if number >= start_line and needle in raw:
            return number
    return 0


def _table(value: object, what: str, where: _Where) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise where.error(f"{what} must be a table")
    return value


def _array(value: object, what: str, where: _Where) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise where.error(f"{what} must be an array")
    return value


def _string(value: object, what: str, where: _Where, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise where.error(f"{what} is missing")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise where.error(f"{what} must be a non-empty string")
    return value


class _Packages:
    """The ``[[package]]``/``[[packages]]`` tables of a lock, each with its line."""

    def __init__(self, data: Mapping[str, Any], key: str, text: str, display: str) -> None:
        self.display = display
        self.items = _array(data.get(key), f"[[{key}]]", _Where(display, 0))
        lines = _header_lines(text, key)
        self.lines = lines if len(lines) == len(self.items) else [0] * len(self.items)

    def __iter__(self) -> Iterator[tuple[_Where, dict[str, Any]]]:
        for line, item in zip(self.lines, self.items, strict=True):
            where = _Where(self.display, line)
            if not isinstance(item, dict):
                raise where.error("a package entry must be a table")
            yield where, item


def _version(value: object, where: _Where, name: str) -> str | None:
    text = _string(value, f"version of {name}", where)
    if text is None:
        return None
    try:
        Version(text)
    except InvalidVersion:
        raise where.error(f"invalid version {text!r} of {name}") from None
    return text


def _hash_list(values: Sequence[str | None]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        if v and ":" in v:
            algo, _, digest = v.partition(":")
            item = f"{algo.lower()}:{digest.lower()}"
            if item not in out:
                out.append(item)
    return tuple(out)
