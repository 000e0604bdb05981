"""The ``pkgsandbox`` command line: composes the parts, renders, maps errors to exit codes.

This is the only module that knows rich (through :mod:`sandbox.ui`) and process exit
codes; :class:`~sandbox.errors.PkgSandboxError` is caught once, in :func:`main`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.markup import escape

from sandbox import __version__
from sandbox.cli_args import EXIT_HELP, build_parser
from sandbox.errors import ExitCode, InputError, Interrupted, PkgSandboxError, SandboxError, exit_code_for
from sandbox.gate.formats import OutputFormat, render
from sandbox.judge.profiles import Profile, load_profile
from sandbox.judge.verdict import exit_code_for_verdict
from sandbox.models import Phase, Report, Verdict
from sandbox.report.json_format import write_json, write_json_file
from sandbox.report.sanitize import printable
from sandbox.runner.interface import Limits, Observer, RunOptions, Sandbox
from sandbox.runner.plan import recorder_choice, resolve_recorder, run_options

__all__ = ["EXIT_HELP", "build_parser", "main"]


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pkgsandbox`` console script; returns the exit code."""
    err = Console(stderr=True, highlight=False)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_term)  # SIGTERM cleans up like Ctrl-C
        # and Ctrl-C always does: a non-interactive shell starts its background jobs (a
        # CI runner's steps) with SIGINT ignored, which Python keeps, so a cancel that
        # sends SIGINT would be ignored and the run killed later with its container
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "vet":
            return int(cmd_vet(args, err))
        if args.command == "baseline":
            return int(cmd_baseline(args, err))
        if args.command == "diff":
            return int(cmd_diff(args, err))
        if args.command == "show":
            return int(cmd_show(args, err))
        if args.command == "gate":
            return int(cmd_gate(args, err))
        if args.command == "cache":
            return int(cmd_cache(args, err))
        if args.command == "doctor":
            return int(cmd_doctor(args, err))
        if args.command == "image" and args.image_command == "build":
            return int(cmd_image_build(args, err))
        if args.command == "sweep":
            return int(cmd_sweep(args, err))
        build_parser().print_help(sys.stderr)
        return int(ExitCode.USAGE)
    except KeyboardInterrupt:
        e: PkgSandboxError = Interrupted("interrupted; sandbox resources removed")
        _print_error(err, e.diagnostics())
        return int(e.exit_code)
    except PkgSandboxError as e:
        _print_error(err, e.diagnostics())
        return int(exit_code_for(e))
    except Exception as e:  # a bug: still one line and exit 3, never 1 ("findings")
        if os.environ.get("PKGSANDBOX_DEBUG"):
            import traceback

            traceback.print_exc(file=sys.stderr)
        _print_error(err, f"internal error: {type(e).__name__}: {e} (PKGSANDBOX_DEBUG=1 shows the traceback)")
        return int(exit_code_for(e))


def _print_error(err: Console, message: str) -> None:
    """Exactly one line, however long (no wrapping: scripts grep it); untrusted text made inert."""
    err.print(f"[bold red]pkgsandbox:[/] {escape(printable(message))}", soft_wrap=True, highlight=False)


def _run_options(args: argparse.Namespace, profile: Profile, err: Console | None = None) -> RunOptions:
    phases = None
    if args.phases:
        names = [n.strip() for n in args.phases.split(",") if n.strip()]
        try:
            wanted = {Phase(n) for n in names}
        except ValueError as exc:
            raise InputError(
                f"unknown phase in --phases {args.phases!r}", advice="phases: install, startup, import"
            ) from exc
        wanted.add(Phase.INSTALL)
        phases = tuple(p for p in Phase if p in wanted)
    base = run_options(profile, recorder="strace")  # for its limits only
    timeouts = {p: float(args.timeout) for p in Phase} if args.timeout else None
    limits = None
    if args.memory or args.pids or args.cpus:
        limits = Limits(
            memory_mb=args.memory or base.limits.memory_mb,
            pids=args.pids or base.limits.pids,
            cpus=args.cpus or base.limits.cpus,
            max_memory_mb=max(args.memory or 0, base.limits.max_memory_mb),
        )
    runtime = _runtime(args, profile)
    recorder = _recorder(getattr(args, "recorder", None), runtime)
    auto = recorder_choice(getattr(args, "recorder", None)) == "auto"
    if auto and err is not None and not getattr(args, "quiet", False):
        why = " (eBPF cannot see inside gVisor)" if runtime == "runsc" else ""
        err.print(f"[dim]recorder: {recorder} (auto){why}[/]")
    return run_options(
        profile,
        phases=phases,
        timeouts=timeouts,
        module_timeout=args.module_timeout,
        window=args.window,
        limits=limits,
        recorder=recorder,
        recorder_auto=auto and recorder == "ebpf",
        runtime=runtime,
        max_modules=getattr(args, "max_modules", None),
    )


def _runtime(args: argparse.Namespace, profile: Profile) -> str:
    """The container runtime: ``--runtime``, else the profile's ``[sandbox] runtime``."""
    return str(getattr(args, "runtime", None) or profile.sandbox.runtime)


def _recorder(choice: str | None, runtime: str = "runc") -> str:
    """The recorder a run uses (:func:`resolve_recorder`): ``auto`` becomes eBPF only where
    it is proven to attach, and never under runsc: gVisor's kernel runs the candidate's
    syscalls, the host's tracepoints never fire for them, so strace inside records."""
    return resolve_recorder(choice, runtime)  # --recorder, else $PKGSANDBOX_RECORDER, else auto


def _write_output(path: Path, content: str | Report) -> None:
    """Write *content* to *path*; a report as JSON, in pieces (a big run's is hundreds
    of megabytes)."""
    try:
        if isinstance(content, Report):
            write_json_file(content, path)
        else:
            path.write_text(content, encoding="utf-8")
    except OSError as exc:
        raise PkgSandboxError(f"cannot write report to {path}: {exc.strerror or exc}") from exc


def cmd_vet(args: argparse.Namespace, err: Console) -> ExitCode:
    from sandbox.ui.terminal import LiveObserver, render_summary
    from sandbox.vet import VetOptions, vet

    profile = load_profile(args.profile)
    options = VetOptions(
        run=_run_options(args, profile, err),
        base_image=args.base_image,
        offline=args.offline,
        profile=profile,
        evidence=args.evidence,
        keep=args.keep,
        sinkhole=not args.no_sinkhole,
        **({"capture_kib": args.capture_kib} if args.capture_kib else {}),
    )
    baseline = None
    if args.baseline:
        from sandbox.judge.baseline import load_baseline

        baseline = load_baseline(args.baseline)  # bad input fails before any container starts
    try:
        with LiveObserver(err, quiet=args.quiet) as observer:
            report = vet(args.spec, options, observer, _sandbox(args, observer, runtime=options.run.runtime))
    except Interrupted as e:
        # leave what the interrupted run knew where the report was asked for
        if args.output and isinstance(e.partial, Report):
            with contextlib.suppress(OSError):
                args.output.write_text(render(e.partial, OutputFormat.JSON), encoding="utf-8")
        raise
    if baseline is not None:
        from sandbox.judge.baseline import apply_baseline

        report = apply_baseline(report, baseline)
    # the JSON report is written in pieces: a big run's is hundreds of megabytes
    if args.format == "json":
        if args.output:
            _write_output(args.output, report)
        else:
            write_json(report, sys.stdout)
    else:
        render_summary(report, Console(highlight=False))
        if args.output:
            _write_output(args.output, report)
    return exit_code_for_verdict(report.verdict, Verdict(args.fail_on))


def _sandbox(
    args: argparse.Namespace, observer: Observer, spec: str | None = None, runtime: str = "runc"
) -> Sandbox:
    """The sandbox every vet of this command runs in, built once (engine, image); bad
    input is reported before the engine is touched, a missing runtime before any container."""
    from sandbox.fetch import parse_spec
    from sandbox.runner.docker_backend import DockerSandbox
    from sandbox.runner.runtime import require

    parse_spec(spec or args.spec)
    sandbox = DockerSandbox.connect(base_image=args.base_image, offline=args.offline, observer=observer)
    require(sandbox.client, runtime)
    return sandbox


def _plain_vet(spec: str, args: argparse.Namespace, err: Console) -> Report:
    from sandbox.ui.terminal import LiveObserver
    from sandbox.vet import VetOptions, vet

    profile = load_profile(args.profile)
    options = VetOptions(
        run=run_options(profile, runtime=_runtime(args, profile)),
        base_image=args.base_image,
        offline=args.offline,
        profile=profile,
    )
    with LiveObserver(err, quiet=args.quiet) as observer:
        return vet(spec, options, observer, _sandbox(args, observer, spec, options.run.runtime))


def cmd_baseline(args: argparse.Namespace, err: Console) -> ExitCode:
    from sandbox.judge.baseline import make_baseline

    report = _plain_vet(args.spec, args, err)
    if report.verdict is Verdict.INCOMPLETE:
        raise SandboxError(
            f"the run of {args.spec} was incomplete ({report.verdict_reason}); no baseline written"
        )
    base = make_baseline(report)
    _write_output(args.output, base.model_dump_json(indent=1) + "\n")
    counts = ", ".join(
        f"{len(base.behaviour.get(c))} {c}" for c in ("files", "processes", "endpoints", "pth")
    )
    print(f"baseline of {args.spec} ({report.verdict.value}) written to {args.output}: {counts}")
    if report.verdict is not Verdict.CLEAN:
        err.print(
            f"[yellow]warning:[/] the trusted version itself is {report.verdict.value}: "
            f"its findings are now part of the baseline"
        )
    return ExitCode.CLEAN


def cmd_diff(args: argparse.Namespace, err: Console) -> ExitCode:
    from sandbox.judge.baseline import DiffReport, apply_baseline, diff, extract, make_baseline
    from sandbox.ui.terminal import render_diff

    old = _plain_vet(args.old, args, err)
    new = _plain_vet(args.new, args, err)
    judged = apply_baseline(new, make_baseline(old))
    result = DiffReport(
        old=args.old,
        new=args.new,
        old_verdict=old.verdict,
        new_verdict=judged.verdict,
        changes=diff(extract(old), extract(new)),
        deviations=tuple(f for f in judged.findings if f.rule_id == "PS024"),
        old_report=old,
        new_report=judged,
    )
    text = result.model_dump_json(indent=1) + "\n"
    if args.format == "json" and not args.output:
        sys.stdout.write(text)
    else:
        if args.format == "terminal":
            render_diff(result, judged, Console(highlight=False))
        if args.output:
            _write_output(args.output, text)
    return exit_code_for_verdict(judged.verdict, Verdict(args.fail_on))


def cmd_gate(args: argparse.Namespace, err: Console) -> ExitCode:
    """Vet what a lockfile change introduces; write the asked formats; the gate's exit code."""
    from sandbox.cache import ResultCache
    from sandbox.gate import PlainGateObserver, cache_context, make_vet_fn, plan_gate, run_gate
    from sandbox.runner.docker_backend import DockerSandbox
    from sandbox.vet import VetOptions

    if len(args.output) > len(args.format):
        raise InputError("each -o needs a --format before it", advice="e.g. --format sarif -o gate.sarif")
    plan = plan_gate(args.lockfile, base=args.base, base_ref=args.base_ref)  # bad input: exit 2, no engine
    profile = load_profile(args.profile)
    options = VetOptions(
        run=run_options(profile, runtime=_runtime(args, profile)),
        base_image=args.base_image,
        offline=args.offline,
        profile=profile,
    )
    sandbox = DockerSandbox.connect(base_image=options.base_image, offline=options.offline)
    from sandbox.runner.runtime import require

    require(sandbox.client, options.run.runtime)
    cache = None if args.no_cache else ResultCache(args.cache)
    ctx = cache_context(options, sandbox.image, _index_urls())
    interactive = err.is_terminal and not os.environ.get("CI") and not args.quiet
    observer: Any
    if interactive:
        from sandbox.ui.terminal import RichGateObserver

        observer = RichGateObserver(err)
    else:
        observer = PlainGateObserver(sys.stderr if not args.quiet else open(os.devnull, "w"))  # noqa: SIM115
    with observer if interactive else contextlib.nullcontext():
        result = run_gate(
            plan,
            vet_fn=make_vet_fn(options, observer, sandbox),
            workers=args.workers,
            max_time=args.max_time,
            cache=cache,
            cache_context=ctx,
            fail_on=Verdict(args.fail_on),
            allow_incomplete=args.allow_incomplete,
            observer=observer,
        )
    root = _git_root(args.lockfile)
    outputs = dict(zip(args.format, [*args.output, *[None] * len(args.format)], strict=False))
    for fmt, path in outputs.items():
        text = render(result, OutputFormat(fmt), root=root)
        if path is None:
            sys.stdout.write(text)
        else:
            _write_output(path, text)
    if not args.format:
        sys.stdout.write(render(result, OutputFormat.MARKDOWN))
    return ExitCode(result.exit_code)


def _index_urls() -> list[str]:
    try:
        from sandbox.fetch.index import load_config
        from sandbox.fetch.pip import Deadline, PipRunner

        cfg = load_config(PipRunner(None, Deadline(60)))
        return [u for u in (cfg.index_url, *cfg.extra_index_urls, *cfg.find_links) if u]
    except PkgSandboxError:
        return []


def _git_root(path: Path) -> Path | None:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "-C", str(path.resolve().parent), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def cmd_cache(args: argparse.Namespace, err: Console) -> ExitCode:
    from sandbox import cache

    if args.action == "clear":
        n = cache.clear(args.cache)
        print(f"removed {n} cached result(s)")
        return ExitCode.CLEAN
    entries = cache.ls(args.cache)
    for e in entries:
        print(
            f"{e.name} {e.version}  {e.verdict.value:<11} {e.filename}  sha256 {e.sha256[:12]}  "
            f"profile {e.profile_hash[:8]}  tool {e.tool_version}  image {e.image_id[7:19]}"
        )
    if not entries:
        print("the cache is empty")
    return ExitCode.CLEAN


def cmd_show(args: argparse.Namespace, err: Console) -> ExitCode:
    """Lay out saved report(s); exit 0 once shown (2 for a file that is not a report)."""
    from sandbox.report.views import load_reports

    reports = load_reports(args.report)
    if args.format == "html":
        from sandbox.report.html import to_html_many

        page = to_html_many(reports)
        if args.output:
            _write_output(args.output, page)
        else:
            sys.stdout.write(page)
        return ExitCode.CLEAN
    from sandbox.ui.show import render_show

    def render_all(console: Console) -> None:
        for label, report in reports:
            if len(reports) > 1:
                console.rule(label, characters="═")
            render_show(report, console, phase=args.phase, limit=args.limit)

    if args.output:
        try:
            with args.output.open("w", encoding="utf-8") as fh:
                render_all(Console(file=fh, width=160, highlight=False))
        except OSError as exc:
            raise PkgSandboxError(f"cannot write to {args.output}: {exc.strerror or exc}") from exc
    else:
        render_all(Console(highlight=False))
    return ExitCode.CLEAN


def cmd_image_build(args: argparse.Namespace, err: Console) -> ExitCode:
    from sandbox.runner.engine import connect
    from sandbox.runner.image import ensure_image

    client = connect()
    info = ensure_image(
        client,
        base=args.base_image,
        offline=args.offline,
        rebuild=args.rebuild,
        log=lambda m: err.print(f"[dim]{m}[/]"),
    )
    print(f"{info.tag} (base {info.base}, Python {info.python}, {', '.join(info.platforms)})")
    return ExitCode.CLEAN


def cmd_sweep(args: argparse.Namespace, err: Console) -> ExitCode:
    from sandbox.runner.engine import connect, sweep
    from sandbox.tempdirs import sweep_temp

    removed = sweep(connect(), everything=args.all) + sweep_temp()
    for item in removed:
        print(f"removed {item}")
    if not removed:
        print("nothing to remove")
    return ExitCode.CLEAN


def cmd_doctor(args: argparse.Namespace, err: Console) -> ExitCode:
    from sandbox.doctor import run_doctor

    if args.provision:
        from sandbox.doctor import provision

        provision(lambda m: err.print(f"[dim]{m}[/]"))
    if args.tells:
        return _doctor_tells(args, err)
    ok = True
    for check in run_doctor(
        base=args.base_image,
        offline=args.offline,
        profile=load_profile(args.profile),
        security_only=args.security,
        runtime=args.runtime,
    ):
        mark = "[green]ok  [/]" if check.ok else "[red]FAIL[/]"
        err.print(f"{mark} {check.name}: {check.detail}")
        ok = ok and check.ok
        if not check.ok and check.fatal:
            break
    if os.environ.get("PKGSANDBOX_DEBUG"):
        err.print(f"python {sys.version.split()[0]}, pkgsandbox {__version__}")
    return ExitCode.CLEAN if ok else ExitCode.SANDBOX


def _doctor_tells(args: argparse.Namespace, err: Console) -> ExitCode:
    """``doctor --tells``: 0 when a candidate can read no tell, 1 when some remain, 3 when
    the probe could not run."""
    from sandbox.doctor import run_tells

    tells = 0
    profile = load_profile(args.profile)
    runtime = _runtime(args, profile)
    recorder = _recorder(args.recorder, runtime)
    err.print(f"[dim]probing as the candidate under {runtime} with the {recorder} recorder[/]")
    for check in run_tells(
        base=args.base_image, offline=args.offline, profile=profile, runtime=runtime, recorder=recorder
    ):
        if check.fatal:
            err.print(f"[red]FAIL[/] {check.name}: {check.detail}")
            return ExitCode.SANDBOX
        mark = "[green]ok  [/]" if check.ok else "[yellow]TELL[/]"
        err.print(f"{mark} {check.name}: {check.detail}")
        tells += not check.ok
    err.print(f"{tells} tell(s) a package could read" if tells else "no tell seen")
    return ExitCode.FINDINGS if tells else ExitCode.CLEAN
