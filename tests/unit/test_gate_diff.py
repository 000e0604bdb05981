"""Base/head comparison: what is new or changed, and reading the base at a git ref."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sandbox.errors import ExitCode, InputError, exit_code_for
from sandbox.gate import ChangeKind, LockedRequirement, SourceKind, diff_requirements, plan_gate, vet_spec


def req(name: str, version: str | None = None, **kw: object) -> LockedRequirement:
    spec = kw.pop("specifier", f"=={version}" if version else "")
    return LockedRequirement(name=name, version=version, specifier=spec, source_file="r.txt", line=1, **kw)  # type: ignore[arg-type]


def by(entries: list) -> dict:  # type: ignore[type-arg]
    return {e.name: e for e in entries}


def test_no_base_vets_everything() -> None:
    todo, same, removed = diff_requirements([req("a", "1"), req("b", "2")], None)
    assert [(e.name, e.change) for e in todo] == [("a", ChangeKind.NEW), ("b", ChangeKind.NEW)]
    assert same == [] and removed == []


def test_new_changed_unchanged_removed() -> None:
    base = [req("a", "1.0"), req("b", "2.0"), req("gone", "0.1")]
    head = [req("a", "1.0"), req("b", "2.1"), req("c", "3.0")]
    todo, same, removed = diff_requirements(head, base)
    t = by(todo)
    assert set(t) == {"b", "c"}
    assert t["b"].change is ChangeKind.CHANGED and t["b"].previous == "2.0" and t["b"].reason == "2.0 -> 2.1"
    assert t["b"].spec == "b==2.1"
    assert t["c"].change is ChangeKind.NEW and t["c"].previous is None
    assert [e.name for e in same] == ["a"]
    assert [r.name for r in removed] == ["gone"]


def test_new_file_hash_at_the_same_version_is_a_change() -> None:
    base = [req("a", "1.0", hashes=("sha256:" + "1" * 64,))]
    grown = [req("a", "1.0", hashes=("sha256:" + "1" * 64, "sha256:" + "2" * 64))]
    todo, _, _ = diff_requirements(grown, base)
    assert (
        todo and todo[0].change is ChangeKind.CHANGED and "1 file hash(es) not in the base" in todo[0].reason
    )
    shrunk = [req("a", "1.0", hashes=())]
    todo, same, _ = diff_requirements(shrunk, base)
    assert todo == [] and len(same) == 1


def test_source_change_at_the_same_version_is_a_change() -> None:
    base = [req("a", "1.0")]
    head = [req("a", "1.0", specifier="", kind=SourceKind.LOCAL, path="/w/a-1.0-py3-none-any.whl")]
    todo, _, _ = diff_requirements(head, base)
    assert todo[0].change is ChangeKind.CHANGED and "source changed" in todo[0].reason
    assert todo[0].spec == "/w/a-1.0-py3-none-any.whl"


def test_unpinned_requirements_compare_by_specifier() -> None:
    base = [req("a", specifier=">=1")]
    todo, same, _ = diff_requirements([req("a", specifier=">=1")], base)
    assert todo == [] and len(same) == 1
    todo, _, _ = diff_requirements([req("a", specifier=">=2")], base)
    assert todo[0].change is ChangeKind.CHANGED and todo[0].version is None and todo[0].unpinned
    assert todo[0].spec == "a>=2" and todo[0].reason == "unpinned >=1 -> unpinned >=2"
    assert todo[0].label == "a (unpinned >=2)"


def test_forked_versions_in_one_lock() -> None:
    base = [req("numpy", "1.26.4"), req("numpy", "2.1.2")]
    head = [req("numpy", "1.26.4"), req("numpy", "2.2.0")]
    todo, same, _ = diff_requirements(head, base)
    assert [(e.version, e.previous) for e in todo] == [("2.2.0", "2.1.2")]
    assert [e.version for e in same] == ["1.26.4"]


def test_duplicates_are_vetted_once_with_groups_merged() -> None:
    head = [req("pytest", "8.3.3", groups=("group:test",)), req("pytest", "8.3.3", groups=("dev",))]
    todo, _, _ = diff_requirements(head, None)
    assert len(todo) == 1 and todo[0].requirement.groups == ("group:test", "dev")


def test_vet_spec_forms() -> None:
    assert vet_spec(req("a", "1.0", extras=("cli", "x"))) == "a[cli,x]==1.0"
    assert vet_spec(req("a", "1.0", markers='sys_platform == "win32"')) == "a==1.0"  # markers: vetted anyway
    assert vet_spec(req("a", "2024.1-custom", specifier="===2024.1-custom")) == "a===2024.1-custom"
    assert vet_spec(req("a", "8.3.3", specifier=">=8.0", pinned_by="c.txt:3")) == "a==8.3.3"
    assert vet_spec(req("a", specifier="<2,>=1")) == "a<2,>=1"
    assert (
        vet_spec(req("a", "1.0", specifier="", kind=SourceKind.LOCAL, path="/w/a.whl", extras=("x",)))
        == "/w/a.whl[x]"
    )
    assert vet_spec(req("a", "1.0", specifier="", kind=SourceKind.URL, url="https://x/a-1.0.tar.gz")) == ""
    assert vet_spec(req("a", specifier="", kind=SourceKind.VCS, url="git+https://x")) == ""


def test_plan_with_a_base_file(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("a==1.0\nb==2.0\n")
    (tmp_path / "requirements.txt").write_text("a==1.0\nb==2.1\n")
    plan = plan_gate(tmp_path / "requirements.txt", base=tmp_path / "old.txt")
    assert [(e.name, e.previous, e.version) for e in plan.entries] == [("b", "2.0", "2.1")]
    assert plan.base_label == str(tmp_path / "old.txt") and len(plan.unchanged) == 1


def test_base_and_base_ref_are_exclusive(tmp_path: Path) -> None:
    (tmp_path / "r.txt").write_text("a==1\n")
    with pytest.raises(InputError):
        plan_gate(tmp_path / "r.txt", base=tmp_path / "r.txt", base_ref="HEAD")


# --------------------------------------------------------------------------- git


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.invalid",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.invalid",
            "HOME": str(repo),
            "PATH": "/usr/bin:/bin:/usr/local/bin",
        },
    )
    return out.stdout.strip()


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.fail("git is required for --base-ref")
    root = tmp_path / "repo"
    (root / "reqs").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "reqs" / "common.txt").write_text("shared==1.0\n")
    (root / "reqs" / "requirements.txt").write_text("-r common.txt\nalpha==1.0\nbeta==2.0\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    git(root, "tag", "v1")
    # the pull request: bumps beta, bumps the included shared, adds gamma
    (root / "reqs" / "common.txt").write_text("shared==1.1\n")
    (root / "reqs" / "requirements.txt").write_text("-r common.txt\nalpha==1.0\nbeta==2.1\ngamma==0.1\n")
    return root


def test_base_ref_reads_the_lockfile_and_its_includes_at_the_ref(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    plan = plan_gate(Path("reqs/requirements.txt"), base_ref="v1")
    got = {(e.name, e.previous, e.version, e.change) for e in plan.entries}
    assert got == {
        ("shared", "1.0", "1.1", ChangeKind.CHANGED),
        ("beta", "2.0", "2.1", ChangeKind.CHANGED),
        ("gamma", None, "0.1", ChangeKind.NEW),
    }
    assert plan.base_label == "v1:reqs/requirements.txt"
    assert plan.base is not None
    assert {r.source_file for r in plan.base.requirements} == {
        "v1:reqs/common.txt",
        "v1:reqs/requirements.txt",
    }
    # head records keep plain paths so SARIF can point at the file
    assert {e.requirement.source_file for e in plan.entries} == {"reqs/requirements.txt", "reqs/common.txt"}


def test_base_ref_from_outside_the_repo_uses_absolute_paths(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    plan = plan_gate(repo / "reqs" / "requirements.txt", base_ref="HEAD")
    assert {e.name for e in plan.entries} == {"shared", "beta", "gamma"}


def test_missing_base_ref_is_exit_2(repo: Path) -> None:
    with pytest.raises(InputError) as exc:
        plan_gate(repo / "reqs" / "requirements.txt", base_ref="no-such-branch")
    assert exit_code_for(exc.value) is ExitCode.USAGE
    assert "base ref 'no-such-branch' does not exist" in exc.value.message
    with pytest.raises(InputError):
        plan_gate(repo / "reqs" / "requirements.txt", base_ref="--output=/tmp/x")


def test_lockfile_added_after_the_ref_makes_everything_new(repo: Path) -> None:
    (repo / "reqs" / "extra.txt").write_text("delta==1\n")
    plan = plan_gate(repo / "reqs" / "extra.txt", base_ref="v1")
    assert [(e.name, e.change) for e in plan.entries] == [("delta", ChangeKind.NEW)]
    assert plan.base is not None and "did not exist at v1" in plan.base.notes[0]


def test_unparsable_base_names_ref_file_and_line(repo: Path) -> None:
    (repo / "reqs" / "requirements.txt").write_text("alpha==1.0 !!\n")
    git(repo, "commit", "-q", "-am", "broken")
    (repo / "reqs" / "requirements.txt").write_text("alpha==1.0\n")
    with pytest.raises(InputError) as exc:
        plan_gate(repo / "reqs" / "requirements.txt", base_ref="HEAD")
    assert exc.value.message.startswith("HEAD:reqs/requirements.txt:1: invalid requirement")


def test_base_ref_outside_a_git_repo(tmp_path: Path) -> None:
    (tmp_path / "r.txt").write_text("a==1\n")
    with pytest.raises(InputError) as exc:
        plan_gate(tmp_path / "r.txt", base_ref="HEAD")
    assert "not inside a git work tree" in exc.value.message
