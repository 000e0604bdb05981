"""The phases: install (with rounds), startup, import, exercise (:mod:`exercise`),
execute; install's inventory."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

from . import checkout, flat, legacy, rounds
from .common import (
    OUT,
    RUN_DIR,
    STAGE,
    STAGE_ARTIFACTS,
    VENV_TEMPLATE,
    emit,
    load_plan,
    module_file,
    site_packages,
)
from .exercise import entry_point_scripts, phase_exercise
from .home import install_kit
from .modlist import modules_from_record
from .scripts import CALLS_STATE
from .steps import ImportRun, StepRun


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def candidate_dist_info(site: Path, name: str) -> Path | None:
    want = _norm(name)
    for info in site.glob("*.dist-info"):
        dist = info.name[: -len(".dist-info")].rsplit("-", 1)[0]
        if _norm(dist) == want:
            return info
    return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def inventory(plan: dict[str, Any]) -> dict[str, Any]:
    """What install put in place: distributions, .pth files, the candidate's modules."""
    site = site_packages(Path(plan["venv"]))
    dists = []
    for info in sorted(site.glob("*.dist-info")):
        stem = info.name[: -len(".dist-info")]
        name, _, version = stem.rpartition("-")
        dists.append({"name": name, "version": version})
    pths = []
    template = {p.name: p.read_bytes() for p in site_packages(VENV_TEMPLATE).glob("*.pth")}
    for pth in sorted(site.glob("*.pth")):
        data = pth.read_bytes()
        if template.get(pth.name) == data:
            continue  # shipped with the venv template, not by what was installed
        pths.append(
            {
                "path": str(pth),
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "head": data[:4096].decode("utf-8", "replace"),
                "executes": any(
                    line.startswith(("import ", "import\t"))
                    for line in data.decode("utf-8", "replace").splitlines()
                ),
            }
        )
    cand = candidate_dist_info(site, plan["candidate"]["name"])
    modules: list[str] = []
    capped = first = 0
    if cand is not None:
        modules, capped, first = modules_from_record(cand, int(plan.get("max_modules", 5000)))
    entry_points = ""
    if cand is not None and (cand / "entry_points.txt").exists():
        entry_points = (cand / "entry_points.txt").read_text(errors="replace")[:65536]
    return {
        "site_packages": str(site),
        "distributions": dists,
        "pth_files": pths,
        "candidate_dist_info": str(cand) if cand else None,
        "modules": modules,
        "modules_capped": capped,
        "modules_first": first,
        "entry_points": entry_points,
    }


def _pip_install(plan: dict[str, Any], names: list[str]) -> list[str]:
    """argv of a harness pip step installing staged index packages (wheels) into the venv."""
    return rounds.pip_install_argv(plan, STAGE_ARTIFACTS, names)


def _with_flag(args: list[str], flag: str, extra: list[str] | None = None) -> list[str]:
    """pip *args* with *flag* right after ``install`` (and *extra* targets at the end)."""
    if flag in args:
        return args
    i = args.index("install") + 1
    return [*args[:i], flag, *args[i:], *(extra or [])]


# pip: "ERROR: Package 'x' requires a different Python: 3.11.2 not in '<3.9,>=3.8.0'"
_WRONG_PYTHON = re.compile(r"ERROR: Package '[^']+' requires a different Python: [^\n]+")


# pip: "ERROR: Could not build wheels for PyAudio, which is required to install …",
# "ERROR: Failed building wheel for PyAudio"
_FAILED_BUILD = re.compile(r"(?:Could not build wheels for|Failed building wheel for) ([A-Za-z0-9][\w.-]*)")


def _failed_builds(output: str) -> set[str]:
    """Normalised names of the distributions pip could not build."""
    return {_norm(m.group(1).rstrip(".,")) for m in _FAILED_BUILD.finditer(output)}


def _dist_of(filename: str) -> str:
    """The normalised distribution name of a wheel or sdist file name."""
    return _norm(Path(filename).name.split("-", 1)[0])


def run_rounds() -> rounds.Rounds:
    return rounds.shared(load_plan(), STAGE)


def phase_install(plan: dict[str, Any], timeout: float, window: float) -> dict[str, Any]:
    """pip install of the candidate; on a missing module or distribution, a round (the
    host stages wheels) and the install re-runs in this container. Legacy setup.py
    sdists first get a developer's venv (the kit) and build without isolation."""
    args: list[str] = list(plan["install_args"])
    end = time.monotonic() + timeout
    steps: list[dict[str, Any]] = []
    problems: list[str] = []
    agent_pids: list[int] = []  # the agent's own candidate-uid processes (the kit copy)
    kit = list(plan.get("kit") or [])
    extra = str(plan.get("_pass") or "default") != "default"
    if extra:
        # A re-install in an extra pass builds in the venv, where the pass's stubs are
        # on PYTHONPATH (pip's isolated build env replaces PYTHONPATH with its own).
        if kit and not plan.get("kit_in_image") and _kit_installed():
            kit = []  # the default pass pip-installed it (an image kit is only copied: again)
        build = [] if kit else [str(n) for n in plan.get("build_names") or []]
        if build:
            res = StepRun(plan, "install", "build", _pip_install(plan, build)).run(timeout, window).result()
            steps.append(res)
        args = _with_flag(args, "--no-build-isolation")
        if plan.get("_reinstall"):  # the default install worked: build it again, nothing else
            args = _with_flag(_with_flag(args, "--force-reinstall"), "--no-deps")
    if kit and plan.get("kit_in_image"):
        # baked into the image: a copy, not a resolution and a traced pip install per run
        emit("status", phase="install", msg=f"developer packages (from the image): {' '.join(kit)}")
        try:
            install_kit(Path(plan["venv"]), plan["uid"], plan["gid"], pids=agent_pids)
            args = _with_flag(args, "--no-build-isolation")
        except Exception as exc:  # the candidate's build then runs isolated, and says so
            problems.append(f"the developer packages did not install ({type(exc).__name__}: {exc})")
    elif kit:
        emit("status", phase="install", msg=f"developer packages: {' '.join(kit)}")
        res = (
            StepRun(plan, "install", "kit", _pip_install(plan, kit))
            .run(end - time.monotonic(), window)
            .result()
        )
        steps.append(res)
        if res["status"] == "ok" and res["exit_code"] == 0:
            args = _with_flag(args, "--no-build-isolation")
        else:
            problems.append("the developer packages did not install; building with isolation")
    rnd = run_rounds()
    if not extra and "--no-build-isolation" in args:
        steps += _setup_requires(plan, rnd, end, window)
    attempt = 0
    while True:
        run = StepRun(plan, "install", str(attempt), [*rounds.harness_python(plan), *args])
        step = run.run(max(1.0, end - time.monotonic()), window).result()
        steps.append(step)
        if step["status"] != "ok" or step["exit_code"] == 0 or time.monotonic() >= end:
            break
        wrong_python = _WRONG_PYTHON.search(step["output"])
        if wrong_python and "--ignore-requires-python" not in args:
            # Requires-Python is a declaration, not a capability: a developer on another
            # Python forces it, and the code (payload included) mostly runs.
            problems.append(f"{wrong_python.group(0).strip()[:160]}: installed with --ignore-requires-python")
            args = _with_flag(args, "--ignore-requires-python")
            attempt += 1
            continue
        unbuilt = _failed_builds(step["output"]) - {_norm(str(plan["candidate"]["name"]))}
        listed = [a for a in args[1:] if a.startswith(f"{STAGE_ARTIFACTS}/") and _dist_of(a) in unbuilt]
        if unbuilt and ("--no-deps" not in args or listed):
            # A dependency that does not build here (no Linux wheel, headers missing:
            # PyAudio): install the candidate with what did, as a developer would.
            problems.append(
                f"dependencies that did not build: {', '.join(sorted(unbuilt))}; installed without them"
            )
            if "--no-deps" in args:  # already alone with the staged files: drop the unbuilt ones
                args = [a for a in args if a not in listed]
            else:
                deps = [f for f in plan.get("dependency_files") or [] if _dist_of(f) not in unbuilt]
                args = _with_flag(args, "--no-deps", deps)
            attempt += 1
            continue
        modules, reqs = rounds.needs_from_output(step["output"])
        if not (modules or reqs):
            break
        reason = next(
            (
                ln.strip()
                for ln in reversed(step["output"].splitlines())
                if "No module named" in ln or "No matching distribution" in ln
            ),
            "",
        )
        answer = rnd.ask("install", modules, reqs, reason)
        if answer is None:
            if reqs and "--no-deps" not in args:
                # Dependencies nobody can supply (no Linux wheel …): install the candidate
                # alone with what was staged, as a developer would with --no-deps.
                args = _with_flag(args, "--no-deps", list(plan.get("dependency_files") or []))
                attempt += 1
                continue
            break
        names = rounds.to_install(answer)
        changed = False
        if names:
            pip_res = StepRun(plan, "install", f"round{rnd.used}-pip", _pip_install(plan, names))
            steps.append(pip_res.run(max(1.0, end - time.monotonic()), window).result())
            changed = True
        if modules and names and "--no-build-isolation" not in args:
            # setup.py imports what its isolated build env cannot have: build in the venv
            build = [str(n) for n in plan.get("build_names") or []]
            if build:
                pip_res = StepRun(plan, "install", f"round{rnd.used}-build", _pip_install(plan, build))
                steps.append(pip_res.run(max(1.0, end - time.monotonic()), window).result())
            args = _with_flag(args, "--no-build-isolation")
        if reqs and answer.get("missing") and "--no-deps" not in args:
            args = _with_flag(args, "--no-deps", list(plan.get("dependency_files") or []))
            changed = True
        if not changed:
            break
        attempt += 1
    last = steps[-1]
    status = last["status"]
    if status == "ok" and last["exit_code"] != 0:
        status = "error"
    sdist = legacy.wanted(plan)
    if sdist is not None and end - time.monotonic() > 2:
        # setup.py acts on `install` in its argv, which pip's wheel build never passes:
        # run it as a developer would; its exit does not change the phase's status
        emit("status", phase="install", msg="python setup.py install (setup.py reads its command line)")
        left = min(legacy.STEP_CAP, end - time.monotonic())
        res = StepRun(plan, "install", "setup-install", legacy.argv(plan, sdist)).run(left, window).result()
        res["context"] = "python setup.py install"
        steps.insert(len(steps) - 1, res)  # pip's step stays last: the phase's exit and cause
        problems.append("setup.py reads its command line for `install`: also ran `python setup.py install`")
    inv: dict[str, Any] = {}
    try:
        inv = inventory(plan)
    except Exception as exc:  # an install that failed may leave no site-packages
        last["problems"].append(f"inventory failed: {exc}")
    (OUT / (f"{plan['_pass']}.inventory.json" if extra else "inventory.json")).write_text(json.dumps(inv))
    return {
        "phase": "install",
        "status": status,
        "steps": steps,
        "inventory": inv,
        "problems": problems,
        "agent_pids": agent_pids,
    }


def _setup_requires(
    plan: dict[str, Any], rnd: rounds.Rounds, end: float, window: float
) -> list[dict[str, Any]]:
    """Before a legacy build in the venv: a round for the setup.py's ``setup_requires``
    not installed there, so that setuptools finds them and does not fetch them from the
    internet itself (its own ``pip wheel``, which the sinkhole answers: a benign
    ``setup_requires=["pytest-runner"]`` looked like a beacon to pypi.org)."""
    sdist = legacy.candidate_sdist(plan)
    site = site_packages(Path(plan["venv"]))
    reqs = legacy.setup_requires(sdist) if sdist else []
    # a requirement's name: what comes before its extras, version or marker
    wanted = [r for r in reqs if candidate_dist_info(site, re.split(r"[\s\[<>=!~;]", r)[0]) is None]
    if not wanted:
        return []
    answer = rnd.ask("install", [], wanted, f"setup_requires of setup.py: {', '.join(wanted)}")
    names = rounds.to_install(answer)
    if not names:
        return []
    step = StepRun(plan, "install", f"round{rnd.used}-setup-requires", _pip_install(plan, names))
    return [step.run(max(1.0, end - time.monotonic()), window).result()]


def _kit_installed() -> bool:
    """Whether the default pass's install put the developer packages in the venv."""
    try:
        res = json.loads((OUT / "install.result.json").read_text())
    except (OSError, ValueError):
        return False
    return any(s.get("tag") == "kit" and s.get("exit_code") == 0 for s in res.get("steps") or [])


def _imported_ok() -> set[str] | None:
    """The modules the default pass's import phase imported; None without its result."""
    try:
        res = json.loads((OUT / "import.result.json").read_text())
    except (OSError, ValueError):
        return None
    return {str(m.get("name")) for m in res.get("modules") or [] if m.get("status") == "ok"}


def _inventory_file(plan: dict[str, Any]) -> Path:
    """The inventory a phase reads: the checkout's (an import from the unpacked sdist),
    its own pass's re-install's, else the default one."""
    if plan.get("_checkout"):
        return OUT / checkout.INVENTORY
    own = OUT / f"{plan.get('_pass') or 'default'}.inventory.json"
    return own if own.exists() else OUT / "inventory.json"


def phase_startup(plan: dict[str, Any], timeout: float, window: float) -> dict[str, Any]:
    py = f"{plan['venv']}/bin/python"
    commands = [
        ("python-c-pass", [py, "-c", "pass"]),
        ("pip-version", [py, "-m", "pip", "--version"]),
        ("long-running", [py, str(RUN_DIR / "keepalive.py")]),
    ]
    steps = []
    status = "ok"
    end = time.monotonic() + timeout
    for tag, argv in commands:
        left = end - time.monotonic()
        if left <= 0:
            status = "timeout"
            break
        emit("status", phase="startup", msg=" ".join(argv[1:])[:120])
        # the long-running driver says "done" at once: its window opens right away
        driver = argv[-1].endswith("keepalive.py")
        res = StepRun(plan, "startup", tag, argv, driver=driver).run(left, window).result()
        steps.append(res)
        if res["status"] == "timeout":
            status = "timeout"
        elif res["exit_code"] not in (0, None) and status == "ok":
            status = "error"
    return {"phase": "startup", "status": status, "steps": steps}


def phase_import(plan: dict[str, Any], timeout: float, window: float) -> dict[str, Any]:
    inv_path = _inventory_file(plan)
    inv = json.loads(inv_path.read_text()) if inv_path.exists() else {}
    modules: list[str] = list(inv.get("modules") or [])
    if not modules:
        if inv.get("candidate_dist_info"):
            return {
                "phase": "import",
                "status": "ok",
                "steps": [],
                "modules": [],
                "problems": ["the candidate installs no importable module"],
            }
        return {
            "phase": "import",
            "status": "error",
            "steps": [],
            "modules": [],
            "problems": ["the candidate's distribution was not found after install"],
        }
    py = f"{plan['venv']}/bin/python"
    module_timeout = float(plan.get("module_timeout", 30))
    end = time.monotonic() + timeout
    steps = []
    deps = list(plan.get("dependency_files") or [])
    if plan.get("_checkout") and deps and str(plan.get("_pass") or "default") == "default":
        # the failed install took its staged dependencies down with it: a developer
        # installs them before running the checkout (wheels, nothing of them builds)
        emit("status", phase="import", msg=f"installing the {len(deps)} staged dependencies for the checkout")
        dep_step = StepRun(plan, "import", "checkout-deps", _pip_install(plan, ["--no-deps", *deps]))
        steps.append(dep_step.run(max(1.0, (end - time.monotonic()) / 2), window).result())
    results: list[dict[str, Any]] = []
    status = "ok"
    remaining = modules
    attempt = 0
    while remaining:
        left = end - time.monotonic()
        if left <= 0 or attempt >= 25:
            status = "timeout"
            results.extend(
                {"name": m, "status": "skipped", "duration": 0, "detail": "not reached"} for m in remaining
            )
            break
        emit("status", phase="import", msg=f"importing {len(remaining)} modules (run {attempt + 1})")
        driver = str(RUN_DIR / "import_all.py")
        run = ImportRun(plan, str(attempt), [py, driver, *remaining], module_timeout)
        run.run(left, window)
        res = run.result()
        res["argv"] = [*res["argv"][:2], f"<{len(remaining)} modules>"]
        steps.append(res)
        outcomes = run.outcomes()
        results.extend(outcomes)
        if res["status"] == "timeout":
            status = "timeout"
        attempted = {r["name"] for r in outcomes}
        if run.done or not attempted:
            break
        idx = max(remaining.index(n) for n in attempted if n in remaining)
        remaining = remaining[idx + 1 :]
        attempt += 1
    if status == "ok":
        site = Path(str(inv.get("site_packages") or "/nonexistent"))
        folders, siblings = flat.sibling_folders(site, results)
        results, more = _import_rounds(plan, modules, results, end, window, siblings)
        steps += more
        if folders and end - time.monotonic() > 1:
            more_results, more = flat.import_by_bare_name(plan, site, folders, end, window)
            results += more_results
            steps += more
    problems = []
    if plan.get("_checkout"):
        problems.append(
            f"the install failed: imported {len(modules)} module(s) from the unpacked sdist "
            f"({plan['_checkout']}), as a developer would from a checkout"
        )
    return {
        "phase": "import",
        "status": status,
        "steps": steps,
        "modules": results,
        "modules_capped": inv.get("modules_capped", 0),
        # the list puts what a user reaches by name first: only more of those than the
        # cap leaves some of them out
        "named_capped": max(0, int(inv.get("modules_first", 0)) - len(modules)),
        "problems": problems,
    }


def _static_needs(plan: dict[str, Any], failed: list[str], known: set[str], rnd: rounds.Rounds) -> list[str]:
    """Modules the *failed* modules' sources import that nothing installed provides."""
    try:
        site = Path(str(json.loads(_inventory_file(plan).read_text())["site_packages"]))
    except (OSError, ValueError, KeyError):
        return []
    out: list[str] = []
    for name in failed:
        path, _ = module_file(site, name)
        if path is not None:
            more = rounds.absent(site, rounds.imported_tops(path), known | set(out))
            out += [m for m in more if f"m:{m}" not in rnd.asked]
    return out


def _import_rounds(
    plan: dict[str, Any],
    modules: list[str],
    results: list[dict[str, Any]],
    end: float,
    window: float,
    siblings: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Modules that failed on a module nobody installed: a round (the host stages the
    distribution providing it, a harness pip step installs it), then they import again.
    *siblings* are the candidate's own files imported by bare name: not asked for."""
    rnd = run_rounds()
    own = {m.split(".")[0] for m in modules} | set(siblings)
    steps: list[dict[str, Any]] = []
    py = f"{plan['venv']}/bin/python"
    while rnd.available() and end - time.monotonic() > 1:
        missing = {
            r["name"]: rounds.missing_module(str(r.get("detail", "")))
            for r in results
            if r["status"] == "error"
        }
        wanted = sorted({m for m in missing.values() if m and m not in own})
        if not wanted:
            break
        # what the failing modules import besides: one round instead of one per import
        failed = [n for n, m in missing.items() if m in wanted]
        wanted += _static_needs(plan, failed, own | set(wanted), rnd)[: rounds.MAX_NEEDS - len(wanted)]
        reason = next(str(r["detail"]) for r in results if missing.get(r["name"]) in wanted)
        answer = rnd.ask("import", wanted, [], reason)
        names = rounds.to_install(answer)
        if not names:
            break
        pip_step = StepRun(plan, "import", f"round{rnd.used}-pip", _pip_install(plan, names))
        steps.append(pip_step.run(max(1.0, end - time.monotonic()), window).result())
        retry = [n for n, m in missing.items() if m in wanted]
        emit("status", phase="import", msg=f"round {rnd.used}: importing {len(retry)} modules again")
        run = ImportRun(
            plan,
            f"r{rnd.used}",
            [py, str(RUN_DIR / "import_all.py"), *retry],
            float(plan.get("module_timeout", 30)),
        )
        run.run(max(1.0, end - time.monotonic()), window)
        res = run.result()
        res["argv"] = [*res["argv"][:2], f"<{len(retry)} modules>"]
        steps.append(res)
        again = {r["name"]: r for r in run.outcomes()}
        results = [again.get(r["name"], r) if r["name"] in retry else r for r in results]
    return results, steps


def phase_execute(plan: dict[str, Any], timeout: float, window: float) -> dict[str, Any]:
    """Run each console/gui script with --help and --version, then call the public
    functions and classes of the candidate's modules with mock arguments."""
    inv_path = OUT / "inventory.json"
    inv = json.loads(inv_path.read_text()) if inv_path.exists() else {}
    venv = plan["venv"]
    per_call = float(plan.get("call_timeout", 10))
    end = time.monotonic() + timeout
    steps: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    status = "ok"
    # the exercise phase, when it runs, has run every command with --help already
    flags = ("--version",) if "exercise" in (plan.get("phases") or {}) else ("--help", "--version")
    for name in entry_point_scripts(inv.get("entry_points", ""))[:50]:
        for flag in flags:
            left = end - time.monotonic()
            if left <= 0:
                status = "timeout"
                break
            emit("status", phase="execute", msg=f"{name} {flag}")
            tag = "script-" + re.sub(r"[^A-Za-z0-9._-]", "_", name) + flag
            t0 = time.time()
            step = StepRun(plan, "execute", tag, [f"{venv}/bin/{name}", flag])
            res = step.run(min(left, per_call * 3), window).result()
            res["context"] = f"entry point {name} {flag}"
            steps.append(res)
            calls.append(
                {
                    "name": f"entry point {name} {flag}",
                    "status": "timeout" if res["status"] == "timeout" else "ok",
                    "duration": round(time.time() - t0, 3),
                    "detail": f"exit {res['exit_code']}",
                    "t0": t0,
                    "t1": time.time(),
                }
            )
            if res["status"] == "timeout":
                status = "timeout"
    # only what imported in the default pass's import phase (its result, written after
    # it): a module that hung, stopped itself or failed there was judged there, and
    # calling into it would wait it out again
    imported = _imported_ok()
    modules = [
        m
        for m in (inv.get("modules") or [])
        if not any(p.startswith("_") for p in m.split(".")) and (imported is None or m in imported)
    ][:300]
    attempt = 0
    py = f"{venv}/bin/python"
    # the canaries the caller hands arguments named like a secret (HoneytokenSet.handed)
    handed = plan.get("call_secrets") or {}
    secrets = f"{handed.get('hex', '')}:{handed.get('text', '')}"
    attempted: list[str] = []  # calls a caller started (one that exited ends its process)
    problems: list[str] = []
    while modules and status != "timeout":
        left = end - time.monotonic()
        if left <= 0 or attempt >= 25:
            status = "timeout"
            break
        emit("status", phase="execute", msg=f"calling public functions of {len(modules)} modules")
        # the caller shares what is left among its calls, skipping those made already
        _write_calls_state(max(1.0, left - window - 1.0), attempted)
        run = ImportRun(
            plan,
            f"calls-{attempt}",
            [py, str(RUN_DIR / "call_all.py"), str(per_call), secrets, *modules],
            per_call + 5,
            phase="execute",
        )
        run.run(left, window)
        res = run.result()
        res["argv"] = [*res["argv"][:3], "<handed secrets>", f"<{len(modules)} modules>"]
        res["context"] = ""
        steps.append(res)
        calls.extend(run.results)
        if res["status"] == "timeout":
            status = "timeout"
        if run.done:
            if run.unreached:
                problems.append(f"the calls' budget was spent before {run.unreached} of them")
            break
        started = [o["name"] for o in run.outcomes()]
        if not started:
            break
        attempted += started
        attempt += 1
    _write_calls_state(0.0, [])
    return {"phase": "execute", "status": status, "steps": steps, "modules": calls, "problems": problems}


def _write_calls_state(budget: float, skip: list[str]) -> None:
    """The caller's budget and the calls an earlier caller of the phase made (root-owned,
    readable by the candidate's interpreter: it holds nothing secret)."""
    path = Path(CALLS_STATE)
    try:
        path.write_text(json.dumps({"budget": round(budget, 2), "skip": skip}))
        path.chmod(0o644)
    except OSError:
        pass


PHASES = {
    "install": phase_install,
    "startup": phase_startup,
    "import": phase_import,
    "exercise": phase_exercise,
    "execute": phase_execute,
}
