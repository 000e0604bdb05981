"""Which modules of an installed wheel the import phase tries (sandbox/agent/phases.py)."""

from __future__ import annotations

from pathlib import Path

from sandbox.agent.modlist import modules_from_record


def _info(tmp_path: Path, tops: list[str], record: list[str]) -> Path:
    info = tmp_path / "x-1.dist-info"
    info.mkdir()
    (info / "top_level.txt").write_text("\n".join(tops) + "\n")
    (info / "RECORD").write_text("".join(f"{r},sha256=x,1\n" for r in [*record, "x-1.dist-info/RECORD"]))
    return info


def test_a_declared_top_level_name_no_file_provides_is_not_imported(tmp_path: Path) -> None:
    # a companion extension declares its parent's namespace, which another distribution ships
    info = _info(tmp_path, ["_ext", "parentns"], ["_ext.cpython-311-x86_64-linux-gnu.so"])
    assert modules_from_record(info, 100) == (["_ext"], 0, 1)


def test_namespace_packages_and_submodules_stay(tmp_path: Path) -> None:
    info = _info(tmp_path, ["google"], ["google/cloud/thing/__init__.py", "google/cloud/thing/api.py"])
    names, capped, _ = modules_from_record(info, 100)
    assert names == ["google", "google.cloud.thing", "google.cloud.thing.api"] and capped == 0


def test_without_a_record_the_declared_names_are_all_there_is(tmp_path: Path) -> None:
    info = tmp_path / "y-1.dist-info"
    info.mkdir()
    (info / "top_level.txt").write_text("y\n")
    assert modules_from_record(info, 100) == (["y"], 0, 1)


def test_a_test_suite_inside_the_package_is_not_imported_a_top_level_module_is(tmp_path: Path) -> None:
    record = [
        "pkg/__init__.py",
        "pkg/core.py",
        "pkg/tests/__init__.py",
        "pkg/tests/test_socket_dns.py",
        "pkg/testing.py",
        "pkg/sub/conftest.py",
        "pkg/sub/io_test.py",
        "pkg/contest.py",  # not a test name
        "test_top.py",  # a top-level module: always tried
    ]
    names, *_ = modules_from_record(_info(tmp_path, ["pkg", "test_top"], record), 100)
    assert names == ["pkg", "test_top", "pkg.contest", "pkg.core"]


def test_a_sourceless_package_is_imported(tmp_path: Path) -> None:
    """A wheel may ship its package as compiled ``.pyc`` only (Python imports it without
    source): on main no ``.py``/``.so`` row meant the declared name was "not shipped"
    and nothing was imported (tests/integration/test_redteam8.py end to end)."""
    record = ["pkg/__init__.pyc", "pkg/core.pyc", "pkg/__pycache__/core.cpython-311.pyc", "solo.pyc"]
    names, *_ = modules_from_record(_info(tmp_path, ["pkg", "solo", "parentns"], record), 100)
    assert names == ["pkg", "solo", "pkg.core"]


def test_a_test_named_module_an_entry_point_names_is_imported(tmp_path: Path) -> None:
    """A pytest plugin (any entry point group) is imported by what the user runs: its
    module is tried even when named like a test suite; the suite itself stays out."""
    record = ["pkg/__init__.py", "pkg/testing.py", "pkg/tests/__init__.py", "pkg/tests/test_x.py"]
    info = _info(tmp_path, ["pkg"], record)
    plugins = "[pytest11]\npkg = pkg.testing\n\n[x.y]\nz = pkg.tests:hook [extra]\n"
    (info / "entry_points.txt").write_text(plugins)
    names, *_ = modules_from_record(info, 100)
    assert names == ["pkg", "pkg.testing", "pkg.tests"]


def test_a_test_named_module_the_package_imports_lazily_is_imported(tmp_path: Path) -> None:
    """The package's own code imports a test-named module only when an attribute is
    asked for (``__getattr__``) or in a function: the import phase reaches it only by
    importing it. On main it was left out as a test suite; a real suite (imported by
    nothing but its own tests) still is."""
    site = tmp_path
    files = {
        "pkg/__init__.py": "def __getattr__(name):\n    from .testing import Client\n    return Client\n",
        "pkg/api.py": "import importlib\n\ndef go():\n    return importlib.import_module(HELPERS)\n",
        "pkg/testing.py": "Client = 1\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/tests/__init__.py": "",
        "pkg/sub/tests/helpers.py": "",
        "pkg/tests/__init__.py": "",
        "pkg/tests/test_api.py": "from pkg.tests import conftest\n",
        "pkg/tests/conftest.py": "",
    }
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text.replace("HELPERS", "'pkg.sub.tests.helpers'"))
    names, *_ = modules_from_record(_info(site, ["pkg"], list(files)), 100)
    assert names == ["pkg", "pkg.api", "pkg.sub", "pkg.testing", "pkg.sub.tests", "pkg.sub.tests.helpers"]


def test_padding_cannot_push_an_entry_point_or_top_level_module_past_the_cap(tmp_path: Path) -> None:
    # 50 shallow dummy modules and a console script's module deep inside: the cap (10)
    # keeps the top-level names and the entry point's module, then the shallowest rest.
    # On main the entry point's module sorted after the padding and was never imported.
    padding = [f"pkg/pad{i:03}.py" for i in range(50)]
    record = ["pkg/__init__.py", "solo.py", *padding, "pkg/zz/__init__.py", "pkg/zz/deep/__init__.py"]
    record.append("pkg/zz/deep/cli.py")
    info = _info(tmp_path, ["pkg", "solo"], record)
    (info / "entry_points.txt").write_text("[console_scripts]\ntool = pkg.zz.deep.cli:main\n")
    names, capped, first = modules_from_record(info, 10)
    assert names[:3] == ["pkg", "solo", "pkg.zz.deep.cli"] and first == 3
    assert names[3:] == [f"pkg.pad{i:03}" for i in range(7)]
    assert capped == 55 - 10  # the rest of the padding, pkg.zz and pkg.zz.deep


def test_a_hyphenated_top_level_package_is_imported_a_hyphenated_subfolder_is_not(tmp_path: Path) -> None:
    # a dependency-confusion probe ships its beacon as ``name-of-dist/__init__.py``:
    # importlib.import_module("name-of-dist") runs it; ``pkg/static-files/x.py`` is data
    record = ["probe-dist-core/__init__.py", "pkg/__init__.py", "pkg/static-files/x.py"]
    info = _info(tmp_path, ["probe-dist-core", "pkg"], record)
    names, capped, first = modules_from_record(info, 100)
    assert names == ["probe-dist-core", "pkg"] and capped == 0 and first == 2
