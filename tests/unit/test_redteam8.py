"""Session 8's hostile read of the judge's relaxations, at the rule seam: recorded-shape
events that use a carve-out made for one benign project to hide what the rule exists
to catch. Each case ended LOW (or with no finding) on main."""

from __future__ import annotations

import random
from pathlib import Path

from sandbox.agent import persist
from sandbox.judge.rules import evaluate
from sandbox.models import Event, EventKind, FsChange, Observation, Origin, Phase, ProcessInfo, Severity
from tests.unit.test_rules import VENV, ev, obs

SITE = f"{VENV}/lib/python3.11/site-packages"


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8))


def _write(path: str, text: str, seq: int, syscall: str = "write") -> list[Event]:
    data = text.replace("\n", "\\n")  # as strace prints the bytes
    return [
        ev(EventKind.FILE_WRITE, "openat", path=path, seq=seq),
        ev(EventKind.FILE_WRITE, syscall, path=path, seq=seq + 1, data=data, size=len(text)),
    ]


def _diff(path: str, head: str, phase: Phase = Phase.IMPORT) -> FsChange:
    return FsChange(phase=phase, path=path, change="created", size=len(head.encode()), head=head)


def _ps005(events: list[Event], changes: tuple[FsChange, ...] = ()) -> list[Severity]:
    o: Observation = obs(events).model_copy(update={"fs_changes": changes})
    return [f.severity for f in evaluate(o) if f.rule_id == "PS005"]


# ---------------------------------------------------------------- PS005 path-only .pth


def test_the_benign_path_only_pth_stays_low_with_its_diff() -> None:
    """The plugin system's case (one path line, the diff agreeing): still LOW."""
    rng = random.Random()
    pth, folder = f"{SITE}/{_word(rng)}.pth", f"/home/dev/.local/share/{_word(rng)}"
    mkdir = ev(EventKind.DIR_CREATE, "mkdir", path=folder, seq=0)
    assert _ps005([mkdir, *_write(pth, f"{folder}\n", 1)], (_diff(pth, f"{folder}\n"),)) == [Severity.LOW]


def test_a_pth_rewritten_in_place_is_judged_by_what_it_holds() -> None:
    """The trace's writes spell a path, but a seek back to 0 (or a write through a hard
    link under another name) left an ``import`` line at the top: the writes joined read
    ``/aaaa…import os;…`` (no line starts with ``import``), the diff shows the file as
    ``site`` will read it. On main the writes alone were judged: LOW."""
    rng = random.Random()
    pth = f"{SITE}/{_word(rng)}.pth"
    code = f"import os; os.environ.setdefault('{_word(rng).upper()}', '1')\n"
    pad = "/" + "a" * (len(code) + rng.randrange(4, 40))
    seek = [*_write(pth, pad, 1), ev(EventKind.FILE_WRITE, "write", path=pth, seq=3, data=code[:-1] + "\\n")]
    final = code + pad[len(code) :]
    assert _ps005(seek, (_diff(pth, final),)) == [Severity.HIGH]
    # the import line written through a hard link: the .pth's own writes are a path
    link = f"/tmp/{_word(rng)}"
    through = [
        *_write(pth, pad + "\n", 1),
        ev(EventKind.FILE_LINK, "link", path=link, path2=pth, seq=5),
        *_write(link, code, 6),
    ]
    assert _ps005(through, (_diff(pth, pad + "\n" + code),)) == [Severity.HIGH]
    # a diff that kept only the head of a longer file cannot vouch for the rest
    long = _diff(pth, pad + "\n").model_copy(update={"size": 4096})
    assert _ps005(_write(pth, pad + "\n", 1), (long,)) == [Severity.HIGH]
    # bytes that are not text: a replaced byte widens the head past a cut, and what
    # site reads then depends on the user's locale
    odd = pad[:200] + "\ufffd" * 100
    assert _ps005(_write(pth, pad + "\n", 1), (_diff(pth, odd).model_copy(update={"size": 400}),)) == [
        Severity.HIGH
    ]
    latin = [ev(EventKind.FILE_WRITE, "openat", path=pth, seq=1)]
    latin.append(ev(EventKind.FILE_WRITE, "write", path=pth, seq=2, data="/a\\351\\351b\\n", size=6))
    assert _ps005(latin) == [Severity.HIGH]


def test_a_start_up_hook_in_any_form_the_import_system_loads_keeps_a_pth_persistence() -> None:
    """The folder a path-only .pth adds gets a start-up module ``site`` imports at every
    start, in a form other than ``sitecustomize.py``: a sourceless ``.pyc``, an
    extension module, a package's compiled ``__init__``; or reached through ``..``; or
    the line names a zip archive (``zipimport``) holding it. On main only the exact
    ``{folder}/sitecustomize.py`` (or the package's ``__init__.py``) kept it HIGH."""
    rng = random.Random()
    pth, folder = f"{SITE}/{_word(rng)}.pth", f"/tmp/{_word(rng)}"
    benign = _write(pth, f"{folder}\n", 1)
    for hook in (
        f"{folder}/sitecustomize.pyc",
        f"{folder}/usercustomize.cpython-311-x86_64-linux-gnu.so",
        f"{folder}/sitecustomize.abi3.so",
        f"{folder}/sitecustomize/__init__.pyc",
    ):
        planted = ev(EventKind.FILE_WRITE, "openat", path=hook, seq=9)
        assert _ps005([*benign, planted]) == [Severity.HIGH], hook
        renamed = ev(
            EventKind.FILE_RENAME, "rename", path=f"{hook}.{rng.randrange(10**6)}", path2=hook, seq=9
        )
        assert _ps005([*benign, renamed]) == [Severity.HIGH], hook
    # "x/../y" is y to site (os.path.abspath): the hook written into y
    real = f"/tmp/{_word(rng)}"
    dotted = _write(pth, f"{folder}/../{real.rsplit('/', 1)[1]}\n", 1)
    planted = ev(EventKind.FILE_WRITE, "openat", path=f"{real}/sitecustomize.py", seq=9)
    assert _ps005([*dotted, planted]) == [Severity.HIGH]
    # a zip archive on the path: zipimport finds sitecustomize inside it
    archive = f"/tmp/{_word(rng)}.{rng.choice(['zip', 'egg', 'dat'])}"
    zipped = [*_write(pth, f"{archive}\n", 1), *_write(archive, "PK\\3\\4", 9)]
    assert _ps005(zipped) == [Severity.HIGH]
    # a module cached beside a source elsewhere is not one: __pycache__ is read only there
    cached = ev(
        EventKind.FILE_WRITE, "openat", path="/tmp/x/__pycache__/sitecustomize.cpython-311.pyc", seq=9
    )
    assert _ps005([*benign, cached]) == [Severity.LOW]


# ---------------------------------------------------------------- PS008 own memory


def test_writing_into_the_traced_harness_memory_is_an_escape_attempt() -> None:
    """During install pip runs traced, as the candidate's uid, and is the harness: its
    events are not judged. A build backend writing into pip's memory
    (``process_vm_writev``, or taking its fds with ``pidfd_getfd``) makes the harness
    act for it. On main any traced pid counted as the candidate's own: no finding."""
    rng = random.Random()
    pip, backend = rng.randrange(20, 200), rng.randrange(200, 400)
    procs = [
        ProcessInfo(pid=pip, ppid=1, phase=Phase.INSTALL, argv=("pip",), exe="pip", start=0.0).model_copy(
            update={"origin": Origin.HARNESS}
        ),
        ProcessInfo(pid=backend, ppid=pip, phase=Phase.INSTALL, argv=("python",), exe="python", start=0.5),
    ]
    for call in ("process_vm_writev", "process_vm_readv", "pidfd_getfd"):
        e = ev(EventKind.PTRACE, call, phase=Phase.INSTALL, pid=backend, target=pip)
        found = [f.severity for f in evaluate(obs([e], procs)) if f.rule_id == "PS008"]
        assert found == [Severity.HIGH], call
        # the carve-out it was made for: the candidate's own process, or another of its own
        for target in (backend, pip + 1):
            own = [
                *procs,
                ProcessInfo(pid=pip + 1, ppid=backend, phase=Phase.INSTALL, argv=("x",), exe="x", start=1),
            ]
            e = ev(EventKind.PTRACE, call, phase=Phase.INSTALL, pid=backend, target=target)
            assert [f for f in evaluate(obs([e], own)) if f.rule_id == "PS008"] == [], (call, target)


# ---------------------------------------------------------------- PS001 client configuration


def test_changing_client_configuration_is_never_calmed_as_reading_it() -> None:
    """The calm is for a library loading its own configuration (``load_dotenv()``,
    botocore reading ``~/.aws/config``). Writing those files at import plants what the
    user's tools run later: a ``credential_process`` in the AWS config (every SDK runs
    it for credentials), a ``.env`` line (``LD_PRELOAD`` for the app's children), a
    kubeconfig ``exec`` plugin in a command's run. On main the path alone decided: LOW."""
    rng = random.Random()
    for phase, path in (
        (Phase.IMPORT, "/home/dev/.aws/config"),
        (Phase.STARTUP, f"/home/dev/{_word(rng)}/.env"),
        (Phase.EXERCISE, rng.choice(["/home/dev/.kube/config", "/home/dev/.docker/config.json"])),
    ):
        read = ev(EventKind.FILE_READ, "openat", phase=phase, path=path, seq=1)
        write = ev(EventKind.FILE_WRITE, "openat", phase=phase, path=path, seq=2, flags="O_WRONLY|O_APPEND")
        sev = [f.severity for f in evaluate(obs([read, write])) if f.rule_id == "PS001"]
        assert Severity.MEDIUM in sev, (phase, path, sev)
        # the carve-out's case: only read, nothing sent
        assert [f.severity for f in evaluate(obs([read])) if f.rule_id == "PS001"] == [Severity.LOW], path


def test_a_start_up_module_in_any_loadable_form_at_the_top_of_site_packages_is_persistence() -> None:
    """``site`` imports ``sitecustomize`` from sys.path in whatever form the import
    system loads: a sourceless ``.pyc``, an extension module, a package. On main only
    ``sitecustomize.py`` (and a package's ``__init__.py``) counted, whether the
    candidate wrote it, a wheel shipped it (pip writes it) or the snapshot diff saw it."""
    rng = random.Random()
    hook = rng.choice(["sitecustomize", "usercustomize"])
    form = rng.choice([".pyc", ".cpython-311-x86_64-linux-gnu.so", ".abi3.so", ".so", "/__init__.pyc"])
    path = f"{SITE}/{hook}{form}"
    assert _ps005([ev(EventKind.FILE_WRITE, "openat", path=path, seq=1)]) == [Severity.HIGH], path
    shipped = ev(EventKind.FILE_WRITE, "openat", phase=Phase.INSTALL, path=path, seq=1).model_copy(
        update={"origin": Origin.HARNESS}
    )
    assert _ps005([shipped]) == [Severity.HIGH], path
    assert _ps005([], (_diff(path, "\\x00"),)) == [Severity.HIGH], path
    # a copy vendored inside a package, or the bytecode cache of one, never runs at start
    for inert in (f"{SITE}/pkg/{hook}{form}", f"{SITE}/__pycache__/{hook}.cpython-311.pyc"):
        assert _ps005([ev(EventKind.FILE_WRITE, "openat", path=inert, seq=1)]) == [], inert


def test_the_snapshot_keeps_start_up_modules_in_every_form(tmp_path: Path) -> None:
    """The agent's persistence snapshot lists a site directory's start-up modules in
    any form (on main only ``.py`` files and the package folder)."""
    site = tmp_path / "site-packages"
    names = ["sitecustomize.pyc", "usercustomize.cpython-311-x86_64-linux-gnu.so", "a.pth", "other.pyc"]
    for name in names:
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(b"\x00")
    assert sorted(Path(p).name for p in persist._site_dir(str(site))) == sorted(names[:3])


def test_code_put_in_the_folder_a_path_only_pth_adds_keeps_it_persistence() -> None:
    """The folder a path-only .pth adds is searched by every import of the venv: a
    module the run writes there answers any name found nowhere earlier (an optional
    dependency other packages try: ``try: import x``), a dist-info there declares entry
    points plugin hosts load (pytest imports every ``pytest11`` plugin). The plugin
    system the carve-out was made for only creates the folder at import. On main only
    a ``sitecustomize.py`` there counted."""
    rng = random.Random()
    pth, folder = f"{SITE}/{_word(rng)}.pth", f"/home/dev/.local/share/{_word(rng)}"
    base = [ev(EventKind.DIR_CREATE, "mkdir", path=folder, seq=0), *_write(pth, f"{folder}\n", 1)]
    mod = _word(rng)
    for planted in (
        ev(EventKind.FILE_WRITE, "openat", path=f"{folder}/{mod}.py", seq=9),
        ev(EventKind.FILE_WRITE, "openat", path=f"{folder}/{mod}/__init__.pyc", seq=9),
        ev(EventKind.FILE_WRITE, "openat", path=f"{folder}/{mod}-1.0.dist-info/entry_points.txt", seq=9),
        ev(EventKind.FILE_LINK, "symlink", path=f"{folder}/{mod}", path2=f"/tmp/{mod}", seq=9),
    ):
        assert _ps005([*base, planted]) == [Severity.HIGH], planted.path
    # a line through a link the run made: what is written behind it is elsewhere
    real, link = f"/tmp/{_word(rng)}", f"/tmp/{_word(rng)}"
    through = [
        ev(EventKind.FILE_LINK, "symlink", path=link, path2=real, seq=0),
        *_write(pth, f"{link}/plugins\n", 1),
    ]
    assert _ps005(through) == [Severity.HIGH]
    # data the plugin system keeps there (no module, no metadata) does not run
    data = ev(EventKind.FILE_WRITE, "openat", path=f"{folder}/{mod}.json", seq=9)
    assert _ps005([*base, data]) == [Severity.LOW]


def test_a_cloud_cli_writing_its_own_state_directory_stays_calm() -> None:
    """A cloud CLI run with --help writes its command index and session under its own
    directory (``~/.azure``, ``~/.config/gcloud``): the exercise phase's calm for a
    command's own configuration still covers it."""
    rng = random.Random()
    state = rng.choice(["/home/dev/.azure/commandIndex.json", "/home/dev/.config/gcloud/access_tokens.db"])
    events = [
        ev(EventKind.FILE_READ, "openat", phase=Phase.EXERCISE, path=state, seq=1),
        ev(EventKind.FILE_WRITE, "openat", phase=Phase.EXERCISE, path=state, seq=2),
    ]
    assert [f.severity for f in evaluate(obs(events)) if f.rule_id == "PS001"] == [Severity.LOW], state
