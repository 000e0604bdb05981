"""The import driver's per-module outcomes, from its progress messages (no process runs)."""

from __future__ import annotations

from sandbox.agent.steps import ImportRun


def _run() -> ImportRun:
    return ImportRun({"venv": "/nonexistent"}, "t", ["python", "driver.py", "a", "b"], 30.0)


def test_a_module_the_interpreter_died_in_is_an_error() -> None:
    run = _run()
    run.on_message({"ev": "start", "m": "a"})
    run.on_message({"ev": "end", "m": "a", "ok": True})
    run.on_message({"ev": "start", "m": "b"})  # then the interpreter is gone
    got = {r["name"]: (r["status"], r["detail"]) for r in run.outcomes()}
    assert got == {"a": ("ok", ""), "b": ("error", "interpreter exited during import")}


def test_a_finished_run_reports_only_what_it_imported() -> None:
    run = _run()
    for m, ok in (("a", False), ("b", True)):
        run.on_message({"ev": "start", "m": m})
        run.on_message({"ev": "end", "m": m, "ok": ok, "err": "ImportError: x" if not ok else ""})
    run.on_message({"ev": "done"})
    assert [(r["name"], r["status"]) for r in run.outcomes()] == [("a", "error"), ("b", "ok")]
    assert run.main_done()
