"""What the exercise phase runs: entry points, then modules a user could `python -m`
(a package's __main__, a __main__ guard), shipped test suites left out. Pure file
inspection in a temporary site-packages: nothing here runs the modules."""

from __future__ import annotations

import secrets
from pathlib import Path

from sandbox.agent.exercise import (
    MAX_MODULES,
    MAX_SCRIPTS,
    entry_point_scripts,
    has_main_guard,
    main_modules,
    script_modules,
    targets,
)


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_entry_points_of_both_kinds_and_nothing_else() -> None:
    text = (
        "[console_scripts]\nfoo = a.cli:main\nbar-baz=a.cli:other\n"
        "[gui_scripts]\nwin = a.gui:run\n"
        "[pytest11]\nplug = a.plugin\n"
        "[console_scripts]\n../evil = a:b\n"
    )
    assert entry_point_scripts(text) == ["foo", "bar-baz", "win"]


def test_main_guard_forms(tmp_path: Path) -> None:
    cases = {
        "if __name__ == '__main__':\n    run()\n": True,
        'if __name__=="__main__": run()\n': True,
        "    if '__main__' == __name__:\n        run()\n": True,
        "if (__name__ == '__main__'):\n    run()\n": True,
        "x = '__main__'\n# if __name__ == '__main__':\n": False,
        "print(__name__)\n": False,
    }
    for i, (text, want) in enumerate(cases.items()):
        path = tmp_path / f"m{i}.py"
        path.write_text(text)
        assert has_main_guard(path) is want, text
    assert has_main_guard(tmp_path / "missing.py") is False


def test_main_modules_order_and_exclusions(tmp_path: Path) -> None:
    name = f"pkg{secrets.randbelow(10**6)}"
    guard = "if __name__ == '__main__':\n    pass\n"
    _write(tmp_path, f"{name}/__init__.py", "")
    _write(tmp_path, f"{name}/__main__.py", "print(1)\n")
    _write(tmp_path, f"{name}/cli.py", guard)
    _write(tmp_path, f"{name}/plain.py", "X = 1\n")
    _write(tmp_path, f"{name}/sub/__init__.py", guard)  # a package __init__ with a guard
    _write(tmp_path, f"{name}/tests/__init__.py", "")
    _write(tmp_path, f"{name}/tests/test_x.py", guard)
    _write(tmp_path, f"{name}/x_test.py", guard)
    _write(tmp_path, "conftest.py", guard)
    _write(tmp_path, f"{name}/_lua_builtins.py", guard)  # a maintainer's regeneration script
    _write(tmp_path, f"{name}/_private/__init__.py", "")
    _write(tmp_path, f"{name}/_private/tool.py", guard)
    modules = [
        name,
        "conftest",
        f"{name}._lua_builtins",
        f"{name}._private.tool",
        f"{name}.cli",
        f"{name}.plain",
        f"{name}.sub",
        f"{name}.tests",
        f"{name}.x_test",
        f"{name}.tests.test_x",
        f"{name}.gone",
    ]
    assert main_modules(tmp_path, modules) == [name, f"{name}.cli", f"{name}.sub"]
    many = [f"m{i}" for i in range(MAX_MODULES + 3)]
    for m in many:
        _write(tmp_path, f"{m}.py", guard)
    assert main_modules(tmp_path, many) == many[:MAX_MODULES]


def test_targets_commands(tmp_path: Path) -> None:
    name = f"pkg{secrets.randbelow(10**6)}"
    _write(tmp_path, f"{name}/__init__.py", "")
    _write(tmp_path, f"{name}/__main__.py", "")
    scripts = [f"s{i}" for i in range(MAX_SCRIPTS + 2)]
    inv = {
        "site_packages": str(tmp_path),
        "modules": [name],
        "entry_points": "[console_scripts]\n" + "".join(f"{s} = {name}:main\n" for s in scripts),
    }
    venv = "/home/dev/project/.venv"
    found = targets({"venv": venv}, inv)
    assert [label for label, _, _ in found] == [
        *(f"entry point {s} --help" for s in scripts[:MAX_SCRIPTS]),
        f"python -m {name} --help",
    ]
    assert found[0][2] == [f"{venv}/bin/s0", "--help"]
    assert found[-1][2][0] == f"{venv}/bin/python" and found[-1][2][2:] == [name, "--help"]
    assert len({tag for _, tag, _ in found}) == len(found)  # one trace file each


def test_script_modules_need_a_failed_import_and_a_sibling(tmp_path: Path) -> None:
    name = f"pkg{secrets.randbelow(10**6)}"
    _write(tmp_path, f"{name}/__init__.py", "")
    _write(tmp_path, f"{name}/receiver.py", "def get():\n    return 1\n")
    _write(tmp_path, f"{name}/grab.py", "import os\nfrom receiver import get\nget()\n")
    _write(
        tmp_path,
        f"{name}/fallback.py",
        "try:\n    from . import receiver\nexcept ImportError:\n    import receiver\n",
    )
    _write(tmp_path, f"{name}/broken.py", "import nowhere_to_be_found\n")  # no sibling: a round's job
    _write(tmp_path, f"{name}/tests/test_grab.py", "from receiver import get\n")
    _write(tmp_path, "installed_mod.py", "")
    _write(tmp_path, f"{name}/uses_installed.py", "import installed_mod\n")
    _write(tmp_path, f"{name}/installed_mod.py", "")  # a sibling, but the top-level one is installed
    modules = [name, f"{name}.broken", f"{name}.fallback", f"{name}.grab", f"{name}.receiver",
               f"{name}.uses_installed", f"{name}.tests.test_grab"]  # fmt: skip
    failed = {f"{name}.broken", f"{name}.grab", f"{name}.uses_installed", f"{name}.tests.test_grab"}
    assert script_modules(tmp_path, modules, failed) == [f"{name}.grab"]
    # the fallback imported fine at import time: not a script, whatever it would do as one
    assert script_modules(tmp_path, modules, failed | {f"{name}.fallback"}) == [
        f"{name}.fallback",
        f"{name}.grab",
    ]
