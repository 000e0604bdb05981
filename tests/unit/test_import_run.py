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


def test_spans_start_when_the_driver_wrote_not_when_the_agent_read() -> None:
    # The agent reads the pipe late on a busy machine: a span opened on receipt missed the
    # call's first syscalls (the eBPF CI run: a connect left with no "call ..." context).
    import time

    run = _run()
    sent = time.time()
    time.sleep(0.02)  # the agent is slow to read
    run.on_message({"ev": "start", "m": "a", "t": sent})
    run.on_message({"ev": "end", "m": "a", "ok": True, "t": time.time()})
    (got,) = run.outcomes()
    assert got["t0"] == sent and got["t1"] >= sent


def test_a_forged_time_never_moves_a_span_outside_its_true_window() -> None:
    import time

    run = _run()
    launched = time.time()
    run.on_message({"ev": "start", "m": "a", "t": launched - 3600.0})  # before the driver ran
    run.on_message({"ev": "end", "m": "a", "ok": True, "t": time.time() + 3600.0})  # the future
    run.on_message({"ev": "start", "m": "b", "t": "soon"})
    run.on_message({"ev": "end", "m": "b", "ok": True, "t": launched})  # before b started
    a, b = run.outcomes()
    now = time.time()
    assert launched <= a["t0"] <= a["t1"] <= b["t0"] <= b["t1"] <= now
