"""Every dependency-file format parsed from real-world-shaped samples (tests/data/lockfiles)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.errors import ExitCode, InputError, exit_code_for
from sandbox.gate import LockFormat, SourceKind, detect_format, read_lockfile
from sandbox.gate.lockfiles import parse_pyproject, parse_requirements, parse_uv_lock

DATA = Path(__file__).resolve().parents[1] / "data" / "lockfiles"


def by_name(lock: object) -> dict[str, list]:  # type: ignore[type-arg]
    out: dict[str, list] = {}  # type: ignore[type-arg]
    for r in lock.requirements:  # type: ignore[attr-defined]
        out.setdefault(r.name, []).append(r)
    return out


def one(lock: object, name: str):  # type: ignore[no-untyped-def]
    found = by_name(lock)[name]
    assert len(found) == 1, found
    return found[0]


def input_error(exc: pytest.ExceptionInfo[InputError]) -> str:
    assert exit_code_for(exc.value) is ExitCode.USAGE
    return exc.value.message


# --------------------------------------------------------------------------- requirements.txt


def test_pip_compile_output_with_hashes_continuations_and_via_comments() -> None:
    lock = read_lockfile(DATA / "requirements" / "prod.txt")
    assert lock.format is LockFormat.REQUIREMENTS
    assert [r.name for r in lock.requirements] == [
        "certifi",
        "charset-normalizer",
        "idna",
        "requests",
        "tomli",
        "urllib3",
    ]
    req = one(lock, "requests")
    assert req.version == "2.32.3" and req.extras == ("socks",) and req.kind is SourceKind.INDEX
    assert len(req.hashes) == 2 and all(h.startswith("sha256:") and len(h) == 71 for h in req.hashes)
    assert req.line == 19 and req.source_file.endswith("requirements/prod.txt")
    tomli = one(lock, "tomli")
    assert tomli.markers == 'python_version < "3.11"' and len(tomli.hashes) == 1


def test_includes_constraints_editable_url_vcs_and_local_paths() -> None:
    lock = read_lockfile(DATA / "requirements" / "dev.txt")
    names = by_name(lock)
    # -r prod.txt is resolved relative to dev.txt and its entries name prod.txt
    assert one(lock, "certifi").source_file.endswith("requirements/prod.txt")
    # -c pins an unpinned requirement but adds none of its own
    pytest_req = one(lock, "pytest")
    assert pytest_req.specifier == ">=8.0" and pytest_req.version == "8.3.3"
    assert pytest_req.pinned_by and pytest_req.pinned_by.endswith("constraints.txt:3")
    assert one(lock, "ruff").version == "0.7.1"
    assert "mypy" not in names
    editable = next(r for r in lock.requirements if r.editable and r.kind is SourceKind.DIRECTORY)
    assert Path(editable.path or "") == (DATA / "requirements").resolve() or editable.path.endswith(
        "requirements"
    )
    assert editable.own_project  # `-e .`: the file's own directory
    local = one(lock, "tidy-helper")
    assert local.kind is SourceKind.LOCAL and local.version == "0.4.0"
    assert local.path and local.path.endswith("requirements/wheels/tidy_helper-0.4.0-py3-none-any.whl")
    django = one(lock, "django")
    assert (
        django.kind is SourceKind.URL
        and django.version == "5.1.2"
        and django.url
        and "Django-5.1.2" in django.url
    )
    legacy = one(lock, "legacy-lib")
    assert legacy.kind is SourceKind.VCS and legacy.version is None
    assert one(lock, "hypothesis").extras == ("cli",)
    assert one(lock, "pywin32").markers == 'sys_platform == "win32"'
    assert one(lock, "black").line == 14 and len(one(lock, "black").hashes) == 1
    assert any("--extra-index-url" in n for n in lock.notes)


def test_unparsable_requirement_names_file_and_line() -> None:
    with pytest.raises(InputError) as exc:
        read_lockfile(DATA / "requirements" / "broken.txt")
    msg = input_error(exc)
    assert msg.startswith(f"{DATA / 'requirements' / 'broken.txt'}:5: invalid requirement 'django>=5.0,,<6'")


def test_include_cycle_is_an_input_error() -> None:
    with pytest.raises(InputError) as exc:
        read_lockfile(DATA / "requirements" / "loop-a.txt")
    assert "include each other" in input_error(exc)


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("six==1.16.0\n--frobnicate\n", 2, "unknown or misplaced option '--frobnicate'"),
        ("six==1.16.0 --hash=md5\n", 1, "invalid --hash 'md5'"),
        ("six==1.16.0 --no-deps\n", 1, "misplaced option '--no-deps' after a requirement"),
        ("a==1\n\n-r missing.txt\n", 3, "cannot include missing.txt"),
        ("-r https://example.org/r.txt\n", 1, "remote requirement files are not supported"),
        ("-r\n", 1, "option -r needs a value"),
        ("./wheels/notawheel.whl\n", 1, "is not a valid wheel or sdist file name"),
        ("https://example.org/download?id=3\n", 1, "cannot tell the package name"),
    ],
)
def test_bad_requirement_lines(tmp_path: Path, text: str, line: int, needle: str) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text(text)
    with pytest.raises(InputError) as exc:
        read_lockfile(path)
    msg = input_error(exc)
    assert msg.startswith(f"{path}:{line}: "), msg
    assert needle in msg


def test_requirements_syntax_details(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PKG_VERSION", "2.0.1")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "more.txt").write_text("-r ../leaf.txt\n")
    (tmp_path / "leaf.txt").write_text("leaf==0.1\n")
    path = tmp_path / "requirements.txt"
    path.write_text(
        "# a header comment\n"
        "Foo_Bar==1.0 \\\n"
        "    --hash sha256:" + "A" * 64 + "\n"  # "--hash VALUE" form, upper-case digest
        "envpkg==${PKG_VERSION}\n"
        "keep==1.0 \\\n"
        "# a comment ends the continuation\n"
        "star==1.*\n"
        "arb===2024.1-custom\n"
        "-rsub/more.txt\n"
        "name-at @ file:///opt/wheels/name_at-3.0-py3-none-any.whl\n"
        "pkg[extra] @ https://example.org/pkg-1.0.tar.gz ; python_version >= '3.8'\n"
        "./vendor/thing-0.5.tar.gz[cli] ; sys_platform == 'linux'\n"
        "  \n"
    )
    lock = read_lockfile(path)
    foo = one(lock, "foo-bar")
    assert foo.version == "1.0" and foo.hashes == ("sha256:" + "a" * 64,) and foo.line == 2
    assert one(lock, "envpkg").version == "2.0.1"
    assert one(lock, "keep").version == "1.0"
    assert one(lock, "star").version is None and one(lock, "star").specifier == "==1.*"
    assert one(lock, "arb").version == "2024.1-custom"
    leaf = one(lock, "leaf")
    assert leaf.source_file == str(tmp_path / "leaf.txt")
    name_at = one(lock, "name-at")
    assert name_at.kind is SourceKind.LOCAL and name_at.path == "/opt/wheels/name_at-3.0-py3-none-any.whl"
    pkg = one(lock, "pkg")
    assert pkg.kind is SourceKind.URL and pkg.version == "1.0" and pkg.extras == ("extra",)
    assert pkg.markers == 'python_version >= "3.8"'
    thing = one(lock, "thing")
    assert thing.kind is SourceKind.LOCAL and thing.extras == ("cli",) and thing.version == "0.5"
    assert (
        thing.path == str(tmp_path / "vendor" / "thing-0.5.tar.gz")
        and thing.markers == "sys_platform == 'linux'"
    )


def test_constraint_that_does_not_satisfy_the_requirement_is_not_applied(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("six==1.15.0\n")
    path = tmp_path / "r.txt"
    path.write_text("-c c.txt\nsix>=1.16\n")
    assert one(read_lockfile(path), "six").version is None


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"six==1.16.0\nna\xefve==1.0\n")
    with pytest.raises(InputError) as exc:
        read_lockfile(path)
    assert input_error(exc) == f"{path}:2: not UTF-8 text"


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        read_lockfile(tmp_path / "requirements.txt")
    assert "no such file" in input_error(exc)


# --------------------------------------------------------------------------- pyproject.toml


def test_pyproject_dependencies_optional_and_dependency_groups() -> None:
    lock = read_lockfile(DATA / "pyproject.toml")
    assert lock.format is LockFormat.PYPROJECT
    httpx = one(lock, "httpx")
    assert (
        httpx.version is None and httpx.specifier == "<1,>=0.27" and httpx.groups == () and httpx.line == 11
    )
    pyd = one(lock, "pydantic")
    assert pyd.version == "2.9.2" and pyd.extras == ("email",) and pyd.line == 12
    assert one(lock, "tomli").markers == 'python_version < "3.11"' and one(lock, "tomli").line == 14
    assert one(lock, "psycopg").groups == ("postgres",) and one(lock, "psycopg").line == 18
    assert one(lock, "typer").groups == ("cli",) and one(lock, "typer").line == 20
    assert one(lock, "coverage").groups == ("group:test",) and one(lock, "coverage").extras == ("toml",)
    assert [r.groups for r in by_name(lock)["pytest"]] == [("group:test",)]  # include-group is not duplicated
    assert one(lock, "ipython").groups == ("group:dev",)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[project]\nname = "x"\ndependencies = ["ok", 3]\n', "entries must be strings"),
        ('[project]\nname = "x"\ndependencies = ["requests>="]\n', "invalid requirement 'requests>='"),
        ('[tool.poetry]\nname = "x"\n', "nothing to gate"),
        ('[project]\nname = "x"\ndynamic = ["dependencies"]\n', "is dynamic"),
        ('[dependency-groups]\ndev = [{include-group = "nope"}]\n', "unknown group 'nope'"),
        ('[project]\nname = "x"\ndependencies = [\n', "not valid TOML"),
    ],
)
def test_bad_pyproject(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(text)
    with pytest.raises(InputError) as exc:
        parse_pyproject(text, path)
    assert needle in input_error(exc)


def test_pyproject_toml_error_names_the_line(tmp_path: Path) -> None:
    text = '[project]\nname = "x"\ndependencies = ["a"]\nversion = = 2\n'
    with pytest.raises(InputError) as exc:
        parse_pyproject(text, tmp_path / "pyproject.toml")
    assert input_error(exc).startswith(f"{tmp_path / 'pyproject.toml'}:4: not valid TOML")


# --------------------------------------------------------------------------- uv.lock


def test_uv_lock_packages_sources_hashes_and_forks() -> None:
    lock = read_lockfile(DATA / "uv.lock")
    assert lock.format is LockFormat.UV_LOCK
    root = one(lock, "acme-service")
    assert root.kind is SourceKind.DIRECTORY and root.editable and root.line == 9
    anyio = one(lock, "anyio")
    assert (
        anyio.version == "4.6.2.post1"
        and anyio.kind is SourceKind.INDEX
        and anyio.url == "https://pypi.org/simple"
    )
    assert len(anyio.hashes) == 2 and anyio.line == 29
    numpy = by_name(lock)["numpy"]
    assert sorted(r.version for r in numpy) == ["1.26.4", "2.1.2"]  # a forked resolution keeps both
    assert [len(r.hashes) for r in numpy] == [2, 3]
    git = one(lock, "internal-tool")
    assert (
        git.kind is SourceKind.VCS
        and git.url
        and git.url.startswith("git+https://github.com/example/internal-tool")
    )
    vend = one(lock, "vendored-wheel")
    assert vend.kind is SourceKind.LOCAL and vend.path == str(
        DATA / "vendor" / "vendored_wheel-1.0.0-py3-none-any.whl"
    )


def test_uv_lock_invalid_toml_names_the_line() -> None:
    with pytest.raises(InputError) as exc:
        read_lockfile(DATA / "broken-uv" / "uv.lock")
    assert input_error(exc).startswith(f"{DATA / 'broken-uv' / 'uv.lock'}:9: not valid TOML")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("version = 2\n", "unsupported uv.lock version 2"),
        ('version = 1\n\n[[package]]\nversion = "1.0"\n', "package name is missing"),
        (
            'version = 1\n\n[[package]]\nname = "a"\nversion = "not a version"\n'
            'source = { registry = "x" }\n',
            "invalid version 'not a version'",
        ),
        (
            'version = 1\n\n[[package]]\nname = "a"\nversion = "1"\nsource = { weird = "x" }\n',
            "no source uv knows",
        ),
    ],
)
def test_bad_uv_lock(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_uv_lock(text, tmp_path / "uv.lock")
    assert needle in input_error(exc)


def test_uv_lock_error_points_at_the_package_line(tmp_path: Path) -> None:
    text = (
        'version = 1\n\n[[package]]\nname = "ok"\nversion = "1"\nsource = { registry = "x" }\n\n'
        '[[package]]\nversion = "2"\n'
    )
    with pytest.raises(InputError) as exc:
        parse_uv_lock(text, tmp_path / "uv.lock")
    assert input_error(exc).startswith(f"{tmp_path / 'uv.lock'}:8: ")


# --------------------------------------------------------------------------- poetry.lock


def test_poetry_lock_2_groups_markers_sources() -> None:
    lock = read_lockfile(DATA / "poetry.lock")
    assert lock.format is LockFormat.POETRY_LOCK
    click = one(lock, "click")
    assert (
        click.version == "8.1.7" and click.groups == ("main",) and len(click.hashes) == 2 and click.line == 3
    )
    colorama = one(lock, "colorama")
    assert (
        colorama.groups == ("main", "dev") and "Windows" in colorama.markers and "win32" in colorama.markers
    )
    assert one(lock, "flask").name == "flask"  # canonical
    mylib = one(lock, "mylib")
    assert mylib.kind is SourceKind.DIRECTORY and mylib.editable
    sdk = one(lock, "private-sdk")
    assert sdk.kind is SourceKind.INDEX and sdk.url == "https://pypi.example.org/simple"
    assert one(lock, "tomlkit").kind is SourceKind.VCS
    assert one(lock, "pytest").groups == ("dev",)


def test_poetry_lock_1_1_reads_hashes_from_metadata_files() -> None:
    lock = read_lockfile(DATA / "poetry-1.1" / "poetry.lock")
    assert one(lock, "six").groups == ("main",) and len(one(lock, "six").hashes) == 2
    assert one(lock, "attrs").groups == ("dev",) and len(one(lock, "attrs").hashes) == 1


def test_poetry_lock_unknown_source_and_version(tmp_path: Path) -> None:
    path = tmp_path / "poetry.lock"
    path.write_text(
        '[[package]]\nname = "a"\nversion = "1"\n\n[package.source]\ntype = "svn"\n\n'
        '[metadata]\nlock-version = "2.1"\n'
    )
    with pytest.raises(InputError) as exc:
        read_lockfile(path)
    assert input_error(exc) == f"{path}:1: package a has an unknown source type 'svn'"
    path.write_text('[metadata]\nlock-version = "3.0"\n')
    with pytest.raises(InputError) as exc:
        read_lockfile(path)
    assert "unsupported poetry.lock lock-version '3.0'" in input_error(exc)


# --------------------------------------------------------------------------- pylock.toml


@pytest.mark.parametrize("name", ["pylock.toml", "pylock.dev.toml"])
def test_pylock(name: str) -> None:
    lock = read_lockfile(DATA / name)
    assert lock.format is LockFormat.PYLOCK
    attrs = one(lock, "attrs")
    assert attrs.version == "24.2.0" and attrs.kind is SourceKind.INDEX and len(attrs.hashes) == 2
    assert attrs.url == "https://pypi.org/simple" and attrs.line == 9
    cattrs = one(lock, "cattrs")
    assert cattrs.markers == "'dev' in dependency_groups" and len(cattrs.hashes) == 1
    plugin = one(lock, "local-plugin")
    assert plugin.kind is SourceKind.LOCAL and plugin.path == str(
        DATA / "dist" / "local_plugin-0.2.0-py3-none-any.whl"
    )
    assert one(lock, "pip-tools-fork").kind is SourceKind.VCS
    app = one(lock, "workspace-app")
    assert app.kind is SourceKind.DIRECTORY and app.editable


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[[packages]]\nname = "a"\n', "lock-version is missing"),
        ('lock-version = "2.0"\n', "unsupported pylock lock-version '2.0'"),
        ('lock-version = "1.0"\n\n[[packages]]\nname = "a"\nversion = "1"\n', "names no source"),
        ('lock-version = "1.0"\npackages = "nope"\n', "[[packages]] must be an array"),
    ],
)
def test_bad_pylock(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text(text)
    with pytest.raises(InputError) as exc:
        read_lockfile(path)
    assert needle in input_error(exc)


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("requirements.txt", LockFormat.REQUIREMENTS),
        ("requirements-dev.in", LockFormat.REQUIREMENTS),
        ("pyproject.toml", LockFormat.PYPROJECT),
        ("uv.lock", LockFormat.UV_LOCK),
        ("poetry.lock", LockFormat.POETRY_LOCK),
        ("pylock.toml", LockFormat.PYLOCK),
        ("pylock.prod.toml", LockFormat.PYLOCK),
    ],
)
def test_detect_by_name(name: str, fmt: LockFormat) -> None:
    assert detect_format(Path(name)) is fmt


@pytest.mark.parametrize(
    ("sample", "fmt"),
    [
        ("uv.lock", LockFormat.UV_LOCK),
        ("poetry.lock", LockFormat.POETRY_LOCK),
        ("pylock.toml", LockFormat.PYLOCK),
        ("pyproject.toml", LockFormat.PYPROJECT),
        ("requirements/prod.txt", LockFormat.REQUIREMENTS),
    ],
)
def test_detect_by_content(tmp_path: Path, sample: str, fmt: LockFormat) -> None:
    renamed = tmp_path / "deps.lock"
    renamed.write_text((DATA / sample).read_text())
    assert read_lockfile(renamed).format is fmt


def test_undetectable_toml_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "deps.cfg"
    path.write_text("[tool.other]\nx = 1\n")
    with pytest.raises(InputError) as exc:
        read_lockfile(path)
    assert "cannot tell the format" in input_error(exc)


def test_parse_requirements_reads_includes_through_the_reader(tmp_path: Path) -> None:
    files = {tmp_path / "top.txt": "-r inc.txt\nb==2\n", tmp_path / "inc.txt": "a==1\n"}
    seen: list[Path] = []

    def reader(path: Path) -> str:
        seen.append(path)
        return files[path]

    reqs = parse_requirements(
        files[tmp_path / "top.txt"],
        tmp_path / "top.txt",
        reader=reader,
        display="top.txt",
        prefix="origin/main:",
    )
    assert [(r.name, r.version, r.source_file) for r in reqs] == [
        ("a", "1", "origin/main:inc.txt"),
        ("b", "2", "origin/main:top.txt"),
    ]
    assert seen == [tmp_path / "inc.txt"]


def test_only_the_files_own_directory_or_above_is_the_project(tmp_path: Path) -> None:
    """``-e .`` and ``-e ..`` (from requirements/) are the project; ``-e ./vendored``,
    a sibling tree or a bare directory path are dependencies the gate must vet."""
    reqs = tmp_path / "requirements"
    reqs.mkdir()
    (reqs / "dev.txt").write_text("-e .\n-e ..\n-e ./vendored/lib\n-e ../../elsewhere\n./plain_dir\n")
    lock = read_lockfile(reqs / "dev.txt")
    own = {
        Path(r.path or "").relative_to(tmp_path.parent).as_posix(): r.own_project for r in lock.requirements
    }
    base = tmp_path.name
    assert own == {
        f"{base}/requirements": True,
        base: True,
        f"{base}/requirements/vendored/lib": False,
        "elsewhere": False,
        f"{base}/requirements/plain_dir": False,
    }, own
