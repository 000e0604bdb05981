"""Obfuscated sources read without running them (sandbox/judge/layers.py), and the ci
pass's trigger through them: a CI gate inside exec(<decoded blob>) or reached through
import_module("o" + "s") ran no ci pass on main (the hint was "")."""

from __future__ import annotations

import base64
import bz2
import codecs
import lzma
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.judge.layers import MAX_DEPTH, joined, readable
from sandbox.judge.static import CI_COMPUTED_PREFIX, CI_PREFIX, ci_hint
from tests.fixtures.builders import Randomised, build_wheel

GATE = 'import os\nif os.environ.get("{var}") == "true":\n    print("job")\n'


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _exec(call: str, blob: str, tail: str = "") -> str:
    return f'import base64, bz2, lzma, zlib\nexec({call}("{blob}"{tail}))\n'


B64 = "base64.b64decode"
WRAPS: dict[str, Callable[[bytes], str]] = {
    "base64": lambda b: _exec(B64, _b64(b)),
    "urlsafe": lambda b: _exec("base64.urlsafe_b64decode", base64.urlsafe_b64encode(b).decode()),
    "zlib": lambda b: _exec(f"zlib.decompress({B64}", _b64(zlib.compress(b)), ")"),
    "gzip-wbits": lambda b: _exec(f"zlib.decompress({B64}", _b64(_gzip(b)), "), 16 + zlib.MAX_WBITS"),
    "bz2": lambda b: _exec(f"bz2.decompress({B64}", _b64(bz2.compress(b)), ")"),
    "lzma": lambda b: _exec(f"lzma.decompress({B64}", _b64(lzma.compress(b)), ")"),
    "reversed": lambda b: _exec(B64, _b64(b)[::-1], "[::-1]"),
    "hex": lambda b: _exec("bytes.fromhex", b.hex()),
    "wrapped": lambda b: (
        f'import base64\nexec(base64.b64decode("""\n{base64.encodebytes(b * 4).decode()}"""))\n'
    ),
    "pieces": lambda b: (
        "import base64\nexec(base64.b64decode("
        + " + ".join(f'"{_b64(b)[i : i + 20]}"' for i in range(0, len(_b64(b)), 20))
        + "))\n"
    ),
    "twice": lambda b: _exec(B64, _b64(WRAPS["base64"](b).encode())),
}


def _gzip(b: bytes) -> bytes:
    import gzip

    return gzip.compress(b)


def _hint(tmp_path: Path, module: str, src: str) -> str:
    """ci_hint of a wheel whose package (a random name) holds *src* as *module*."""
    name = Randomised().name("m")
    return ci_hint(build_wheel(tmp_path, name, "1.0", {f"{name}/{module}": src}))


@pytest.mark.parametrize("wrap", sorted(WRAPS))
def test_a_ci_gate_inside_a_decoded_blob_fires_the_hint(tmp_path: Path, wrap: str) -> None:
    var = Randomised().rng.choice(["GITHUB_ACTIONS", "GITLAB_CI", "RUNNER_OS", "ACTIONS_RUNTIME_TOKEN"])
    src = WRAPS[wrap](GATE.format(var=var).encode())
    assert var not in src  # the gate is not in the text
    hint = _hint(tmp_path, "__init__.py", src)
    assert hint.startswith(CI_PREFIX) and var in hint and "(decoded)" in hint, hint


@pytest.mark.parametrize(
    "line",
    [
        'mod = importlib.import_module("o" + "s")\nmod.environ.get(k)',
        "e = __import__('o' 's')",
        'x = os.environ.get("GITHUB_" + "ACT" + "IONS")',
    ],
)
def test_names_spelt_in_pieces_are_read_joined(tmp_path: Path, line: str) -> None:
    hint = _hint(tmp_path, "util.py", f"import importlib, os\n{line}\n")
    assert hint.startswith((CI_PREFIX, CI_COMPUTED_PREFIX)), hint


# data blobs that are not code (a key, an image, a compressed binary), decoded text that
# reads no environment, long names and joined words; drawn at run time (never at
# collection: parallel workers must collect the same ids)
NOT_GATES: dict[str, Callable[[], str]] = {
    "key": lambda: f'KEY = "{_b64(os.urandom(48))}"\n',
    "image": lambda: f'ICON = "{_b64(bytes([0x89, 0x50, 0x4E, 0x47]) + os.urandom(300))}"\n',
    "compressed-binary": lambda: f'BLOB = "{_b64(zlib.compress(os.urandom(400)))}"\n',
    "harmless-code": lambda: f'exec(base64.b64decode("{_b64(b"print(1 + 2)  # harmless")}"))\n',
    "hex-words": lambda: f'DOC = "{_b64(codecs.encode(b"a README with words in it", "hex"))}"\n',
    "names": lambda: 'very_long_identifier_that_is_not_a_blob_at_all = 1\nprint("a" "b")\n',
}


@pytest.mark.parametrize("kind", sorted(NOT_GATES))
def test_blobs_that_are_not_gates_fire_nothing(tmp_path: Path, kind: str) -> None:
    assert _hint(tmp_path, "data.py", "import base64\n" + NOT_GATES[kind]()) == ""


def test_layers_are_bounded() -> None:
    code = GATE.format(var="GITHUB_ACTIONS").encode()
    for _ in range(MAX_DEPTH + 2):  # deeper than the scan goes
        code = f'exec(__import__("base64").b64decode("{_b64(code)}"))'.encode()
    layers = list(readable(code))
    assert len(layers) == MAX_DEPTH + 1
    assert not any(b"GITHUB_ACTIONS" in x for x in layers)
    # many decoy blobs before the payload: the longest are tried first
    decoys = "".join(f'D{i} = "{_b64(os.urandom(18))}"\n' for i in range(200))
    payload = f'exec(base64.b64decode("{_b64(GATE.format(var="GITLAB_CI").encode() * 3)}"))\n'
    assert any(b"GITLAB_CI" in x for x in readable((decoys + payload).encode()))


def test_joined_merges_only_adjacent_literals() -> None:
    assert joined(b'a = "x" + "y" + "z"') == b'a = "xyz"'
    assert joined(b"f('a') + g('b')") == b"f('a') + g('b')"
    assert joined(b"s = 'a' + x + 'b'") == b"s = 'a' + x + 'b'"
    assert joined(b'"a", "b"') == b'"a", "b"'
