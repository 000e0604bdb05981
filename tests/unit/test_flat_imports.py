"""Bare-name sibling imports (sandbox/agent/flat.py): which failures name the
candidate's own files, and what is imported again from their folders."""

from __future__ import annotations

from pathlib import Path

from sandbox.agent import flat
from tests.fixtures.builders import empty_files


def test_a_failure_naming_a_sibling_file_points_at_its_folder(tmp_path: Path) -> None:
    empty_files(
        tmp_path, ["svc/__init__.py", "svc/manager.py", "svc/uac_helper.py", "svc/setup.py", "other.py"]
    )
    results = [
        {"name": "svc", "status": "error", "detail": "ModuleNotFoundError: No module named 'manager'"},
        {
            "name": "svc.manager",
            "status": "error",
            "detail": "ModuleNotFoundError: No module named 'uac_helper'",
        },
        {"name": "svc.uac_helper", "status": "ok", "detail": ""},
        # a real missing distribution is not a sibling: the index is asked for it
        {"name": "other", "status": "error", "detail": "ModuleNotFoundError: No module named 'requests'"},
    ]
    folders, names = flat.sibling_folders(tmp_path, results)
    assert folders == [tmp_path / "svc"]
    assert names == {"manager", "uac_helper"}
    assert [n for n, _ in flat.flat_modules(folders)] == ["manager", "uac_helper"]


def test_a_package_importing_its_own_name_means_the_module_of_that_name(tmp_path: Path) -> None:
    empty_files(tmp_path, ["fast/__init__.py", "fast/fast.py", "fast/sender.py"])
    detail = (
        "ImportError: cannot import name 'init' from partially initialized module 'fast' "
        "(most likely due to a circular import) (/x/fast/__init__.py)"
    )
    folders, names = flat.sibling_folders(tmp_path, [{"name": "fast", "status": "error", "detail": detail}])
    assert folders == [tmp_path / "fast"] and names == {"fast"}
    assert [n for n, _ in flat.flat_modules(folders)] == ["fast", "sender"]


def test_no_sibling_no_flat_import(tmp_path: Path) -> None:
    empty_files(tmp_path, ["p/__init__.py"])
    results = [
        {"name": "p", "status": "error", "detail": "ModuleNotFoundError: No module named 'win32api'"},
        {"name": "p", "status": "ok", "detail": "No module named 'p'"},  # only failures count
    ]
    assert flat.sibling_folders(tmp_path, results) == ([], set())


def test_a_folder_deep_in_a_vendored_tree_is_not_imported_by_bare_name(tmp_path: Path) -> None:
    """A debugger's vendored attach folder (four levels down) holds scratch scripts that
    import each other by bare name; one calls gdb on a hard-coded pid at import."""
    deep = "dbg/_vendored/tool/attach"
    empty_files(tmp_path, [f"{deep}/__init__.py", f"{deep}/_check.py", f"{deep}/add_code.py"])
    detail = "ModuleNotFoundError: No module named 'add_code'"
    mod = deep.replace("/", ".") + "._check"
    assert flat.sibling_folders(tmp_path, [{"name": mod, "status": "error", "detail": detail}]) == ([], set())
    empty_files(tmp_path, ["pkg/sub/__init__.py", "pkg/sub/run.py", "pkg/sub/add_code.py"])
    ok = flat.sibling_folders(tmp_path, [{"name": "pkg.sub.run", "status": "error", "detail": detail}])
    assert ok == ([tmp_path / "pkg" / "sub"], {"add_code"})
