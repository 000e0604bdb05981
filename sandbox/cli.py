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
from sandbox.errors import ExitCode, InputError, Interrupted, PkgSandboxError, SandboxError, exit_code_for
from sandbox.gate.formats import GATE_FORMATS, VET_FORMATS, OutputFormat, render
from sandbox.judge.profiles import Profile, load_profile
from sandbox.judge.verdict import exit_code_for_verdict
from sandbox.models import Phase, Report, Verdict
from sandbox.report.sanitize import printable
from sandbox.runner.interface import Limits, Observer, RunOptions, Sandbox
from sandbox.runner.plan import run_options

EXIT_HELP = "exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage/input error, 3 sandbox/engine error or incomplete"  # noqa: E501


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message}", advice=f"see `{self.prog} --help`")


def _positive(kind: type[float] | type[int]):  # type: ignore[no-untyped-def]
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="pkgsandbox",
        description="Vet third-party Python packages in a sealed, recorded sandbox.",
        epilog=EXIT_HELP,
    )
    p.add_argument("--version", action="version", version=f"pkgsandbox {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    v = sub.add_parser(
        "vet", help="install, start and import a package in the sandbox and judge it", epilog=EXIT_HELP
    )
    v.add_argument(
        "spec", help="NAME, NAME==VERSION, a PEP 508 requirement, or a path to a .whl/.tar.gz/.zip"
    )
    v.add_argument(
        "--format",
        choices=["terminal", *(f.value for f in VET_FORMATS)],
        default="terminal",
        help="terminal summary (default) or the JSON report",
    )
    v.add_argument(
        "-o", "--output", type=Path, help="write the report to FILE (JSON unless --format says otherwise)"
    )
    v.add_argument(
        "--fail-on",
        choices=["suspicious", "malicious"],
        default="suspicious",
        help="lowest verdict that exits 1 (default: suspicious)",
    )
    v.add_argument(
        "--phases", help="comma-separated phases to run (install is always run; default: the profile's)"
    )
    v.add_argument(
        "--profile",
        default="default",
        metavar="NAME|PATH",
        help="profile: a shipped name (default, strict, build) or a TOML file",
    )
    v.add_argument("--timeout", type=_positive(float), metavar="S", help="timeout of each phase in seconds")
    v.add_argument("--module-timeout", type=_positive(float), metavar="S", help="per-module import timeout")
    v.add_argument(
        "--window",
        type=_positive(float),
        metavar="S",
        help="seconds to watch what outlives each step (ends early when nothing is left)",
    )
    v.add_argument("--memory", type=_positive(int), metavar="MB")
    v.add_argument("--pids", type=_positive(int))
    v.add_argument("--cpus", type=_positive(float))
    v.add_argument(
        "--capture-kib",
        type=_positive(int),
        metavar="KIB",
        help="bytes of each outbound connection the sinkhole keeps (default 64 KiB)",
    )
    v.add_argument(
        "--no-sinkhole",
        action="store_true",
        help="a bare network-less namespace: connection attempts fail and carry no payload",
    )
    v.add_argument(
        "--evidence",
        type=Path,
        metavar="DIR",
        help="write an evidence bundle: raw traces, captures, dropped files, filesystem diff, report",
    )
    v.add_argument(
        "--keep",
        action="store_true",
        help="keep the container after the run (running until its deadline) and print how to inspect it",
    )
    v.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="a baseline from `pkgsandbox baseline`: behaviour absent from it is a deviation",
    )
    v.add_argument(
        "--recorder",
        choices=["auto", "ebpf", "strace"],
        default="strace",
        help="strace inside the sandbox (default), eBPF tracepoints on the host (root; invisible to "
        "the candidate), or auto: eBPF where `pkgsandbox doctor` proved it works, else strace",
    )
    _image_args(v)
    v.add_argument("-q", "--quiet", action="store_true", help="no live status")

    b = sub.add_parser(
        "baseline", help="record a trusted version's behaviour as a baseline (allowlist)", epilog=EXIT_HELP
    )
    b.add_argument("spec", help="the trusted version: NAME==VERSION or a local artifact")
    b.add_argument("-o", "--output", type=Path, required=True, help="baseline JSON file to write")
    b.add_argument("--profile", default="default", metavar="NAME|PATH")
    _image_args(b)
    b.add_argument("-q", "--quiet", action="store_true")

    df = sub.add_parser(
        "diff", help="vet two versions and show what the new one does differently", epilog=EXIT_HELP
    )
    df.add_argument("old", help="the trusted version (spec or artifact)")
    df.add_argument("new", help="the candidate version (spec or artifact)")
    df.add_argument("--format", choices=["terminal", "json"], default="terminal")
    df.add_argument("-o", "--output", type=Path, help="write the JSON diff to FILE")
    df.add_argument("--fail-on", choices=["suspicious", "malicious"], default="suspicious")
    df.add_argument("--profile", default="default", metavar="NAME|PATH")
    _image_args(df)
    df.add_argument("-q", "--quiet", action="store_true")

    g = sub.add_parser(
        "gate",
        help="vet only what a lockfile change introduces (CI): SARIF, JUnit, Markdown",
        epilog=EXIT_HELP,
    )
    g.add_argument(
        "lockfile", type=Path, help="requirements.txt, pyproject.toml, uv.lock, poetry.lock or pylock.toml"
    )
    base = g.add_mutually_exclusive_group()
    base.add_argument("--base", type=Path, metavar="FILE", help="the base lockfile to compare with")
    base.add_argument("--base-ref", metavar="GIT_REF", help="compare with the lockfile at this git ref")
    g.add_argument("--workers", type=_positive(int), help="parallel vets (default: number of cores)")
    g.add_argument(
        "--max-time",
        type=_positive(float),
        metavar="S",
        help="overall budget; packages not started in time are reported as not vetted",
    )
    g.add_argument(
        "--cache", type=Path, metavar="PATH", help="result cache (SQLite; default under the user cache dir)"
    )
    g.add_argument("--no-cache", action="store_true", help="vet everything again")
    g.add_argument(
        "--format",
        action="append",
        choices=[f.value for f in GATE_FORMATS],
        default=[],
        help="output format; repeat with one -o per format",
    )
    g.add_argument("-o", "--output", action="append", type=Path, default=[], metavar="FILE")
    g.add_argument("--fail-on", choices=["suspicious", "malicious"], default="suspicious")
    g.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="packages that could not be vetted (incomplete, over budget) do not fail the gate",
    )
    g.add_argument("--profile", default="default", metavar="NAME|PATH")
    _image_args(g)
    g.add_argument("-q", "--quiet", action="store_true")

    ca = sub.add_parser("cache", help="list or clear the gate's result cache")
    ca.add_argument("action", choices=["ls", "clear"])
    ca.add_argument("--cache", type=Path, metavar="PATH")

    sh = sub.add_parser(
        "show",
        help="lay out a saved report: findings, process tree, timeline, network, files",
        epilog=EXIT_HELP,
    )
    sh.add_argument(
        "report", type=Path, help="a JSON report written by vet (or a JSON document holding reports)"
    )
    sh.add_argument("--format", choices=["terminal", "html"], default="terminal")
    sh.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
    sh.add_argument("--phase", choices=[p.value for p in Phase], help="only this phase (terminal)")
    sh.add_argument(
        "--limit",
        type=_positive(int),
        default=200,
        metavar="N",
        help="timeline and network rows per phase in the terminal (cited events are always shown)",
    )

    d = sub.add_parser("doctor", help="check the engine, the image, strace and the hardening")
    d.add_argument(
        "--provision",
        action="store_true",
        help="as root on Debian: install docker.io, start dockerd, build the offline base image",
    )
    d.add_argument(
        "--security",
        action="store_true",
        help="only the effective hardening of a sandbox container, probed from inside as the "
        "candidate user; fails if anything is weaker than the profile asks",
    )
    d.add_argument(
        "--tells",
        action="store_true",
        help="list what still gives the sandbox away to a package that looks (PID 1, TracerPid, "
        "mounts, cgroups, processes, uptime, CPUs, memory, DMI, MACs …), probed as the candidate; "
        "exit 1 when any tell remains",
    )
    d.add_argument("--profile", default="default", metavar="NAME|PATH")
    _image_args(d)

    i = sub.add_parser("image", help="manage the sandbox image")
    isub = i.add_subparsers(dest="image_command", metavar="ACTION", parser_class=_Parser)
    ib = isub.add_parser("build", help="build the sandbox image (and the offline base with --offline)")
    _image_args(ib)
    ib.add_argument("--rebuild", action="store_true", help="rebuild even if the tagged image exists")

    s = sub.add_parser("sweep", help="remove containers, networks and volumes left by dead runs")
    s.add_argument("--all", action="store_true", help="remove every pkgsandbox resource, even of live runs")
    return p


def _image_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--offline",
        action="store_true",
        default=None,
        help="use the debootstrap offline base image (also PKGSANDBOX_OFFLINE=1)",
    )
    p.add_argument("--base-image", help="base image for the sandbox Dockerfile (also PKGSANDBOX_BASE_IMAGE)")


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pkgsandbox`` console script; returns the exit code."""
    err = Console(stderr=True, highlight=False)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_term)  # SIGTERM cleans up like Ctrl-C
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


def _run_options(args: argparse.Namespace, profile: Profile) -> RunOptions:
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
    base = run_options(profile)
    timeouts = {p: float(args.timeout) for p in Phase} if args.timeout else None
    limits = None
    if args.memory or args.pids or args.cpus:
        limits = Limits(
            memory_mb=args.memory or base.limits.memory_mb,
            pids=args.pids or base.limits.pids,
            cpus=args.cpus or base.limits.cpus,
        )
    return run_options(
        profile,
        phases=phases,
        timeouts=timeouts,
        module_timeout=args.module_timeout,
        window=args.window,
        limits=limits,
        recorder=_recorder(getattr(args, "recorder", None)),
    )


def _recorder(choice: str | None) -> str | None:
    """The recorder a run uses: ``auto`` becomes eBPF only where doctor proved it."""
    if choice in (None, "strace"):
        return choice
    from sandbox.runner.ebpf_recorder import ebpf_support

    support = ebpf_support(mount=True)
    if choice == "ebpf":
        if not support.usable:
            raise SandboxError(
                "the eBPF recorder is not usable here",
                advice="it needs root, bpftrace, tracefs, BTF and x86_64: see `pkgsandbox doctor`",
            )
        return "ebpf"
    return "ebpf" if support.usable and support.proven else "strace"


def _write_output(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PkgSandboxError(f"cannot write report to {path}: {exc.strerror or exc}") from exc


def cmd_vet(args: argparse.Namespace, err: Console) -> ExitCode:
    from sandbox.ui.terminal import LiveObserver, render_summary
    from sandbox.vet import VetOptions, vet

    profile = load_profile(args.profile)
    options = VetOptions(
        run=_run_options(args, profile),
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
            report = vet(args.spec, options, observer, _sandbox(args, observer))
    except Interrupted as e:
        # leave what the interrupted run knew where the report was asked for
        if args.output and isinstance(e.partial, Report):
            with contextlib.suppress(OSError):
                args.output.write_text(render(e.partial, OutputFormat.JSON), encoding="utf-8")
        raise
    if baseline is not None:
        from sandbox.judge.baseline import apply_baseline

        report = apply_baseline(report, baseline)
    if args.format == "json":
        text = render(report, OutputFormat.JSON)
        if args.output:
            _write_output(args.output, text)
        else:
            sys.stdout.write(text)
    else:
        render_summary(report, Console(highlight=False))
        if args.output:
            _write_output(args.output, render(report, OutputFormat.JSON))
    return exit_code_for_verdict(report.verdict, Verdict(args.fail_on))


def _sandbox(args: argparse.Namespace, observer: Observer, spec: str | None = None) -> Sandbox:
    """The sandbox every vet of this command runs in, built once (engine, image); bad
    input is reported before the engine is touched."""
    from sandbox.fetch import parse_spec
    from sandbox.runner.docker_backend import DockerSandbox

    parse_spec(spec or args.spec)
    return DockerSandbox.connect(base_image=args.base_image, offline=args.offline, observer=observer)


def _plain_vet(spec: str, args: argparse.Namespace, err: Console) -> Report:
    from sandbox.ui.terminal import LiveObserver
    from sandbox.vet import VetOptions, vet

    profile = load_profile(args.profile)
    options = VetOptions(
        run=run_options(profile), base_image=args.base_image, offline=args.offline, profile=profile
    )
    with LiveObserver(err, quiet=args.quiet) as observer:
        return vet(spec, options, observer, _sandbox(args, observer, spec))


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
        run=run_options(profile), base_image=args.base_image, offline=args.offline, profile=profile
    )
    sandbox = DockerSandbox.connect(base_image=options.base_image, offline=options.offline)
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
    from sandbox.runner.engine import connect, sweep, sweep_temp

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
    for check in run_tells(base=args.base_image, offline=args.offline, profile=load_profile(args.profile)):
        if check.fatal:
            err.print(f"[red]FAIL[/] {check.name}: {check.detail}")
            return ExitCode.SANDBOX
        mark = "[green]ok  [/]" if check.ok else "[yellow]TELL[/]"
        err.print(f"{mark} {check.name}: {check.detail}")
        tells += not check.ok
    err.print(f"{tells} tell(s) a package could read" if tells else "no tell seen")
    return ExitCode.FINDINGS if tells else ExitCode.CLEAN
