"""The pkgsandbox command line's argparse construction (the commands live in :mod:`sandbox.cli`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sandbox import __version__
from sandbox.errors import InputError
from sandbox.gate.formats import GATE_FORMATS, VET_FORMATS
from sandbox.models import Phase

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
    """The ``pkgsandbox`` argument parser (usage errors raise :class:`~sandbox.errors.InputError`)."""
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
    v.add_argument(
        "--max-modules",
        type=_positive(int),
        metavar="N",
        help="modules of the candidate the import phase tries at most (default 3000; "
        "top-level and entry-point modules first)",
    )
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
        default=None,
        help="auto (default; $PKGSANDBOX_RECORDER changes it): eBPF where it is proven to attach "
        "(root), else strace, and strace again for a run eBPF could not record whole; ebpf: "
        "tracepoints on the host, invisible to the candidate; strace: inside the sandbox "
        "(always strace under --runtime runsc: eBPF cannot see inside gVisor)",
    )
    _runtime_arg(v)
    _image_args(v)
    v.add_argument("-q", "--quiet", action="store_true", help="no live status")

    b = sub.add_parser(
        "baseline", help="record a trusted version's behaviour as a baseline (allowlist)", epilog=EXIT_HELP
    )
    b.add_argument("spec", help="the trusted version: NAME==VERSION or a local artifact")
    b.add_argument("-o", "--output", type=Path, required=True, help="baseline JSON file to write")
    b.add_argument("--profile", default="default", metavar="NAME|PATH")
    _runtime_arg(b)
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
    _runtime_arg(df)
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
    _runtime_arg(g)
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
        help="as root on Debian: install docker.io, start dockerd, build the offline base image, "
        "install gVisor's runsc and register it with the engine (daemon.json merged, dockerd reloaded "
        "with SIGHUP, never restarted)",
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
    d.add_argument(
        "--recorder",
        choices=["auto", "ebpf", "strace"],
        help="--tells: probe with this recorder in front (default: auto, as `vet` chooses)",
    )
    _runtime_arg(d)
    _image_args(d)

    i = sub.add_parser("image", help="manage the sandbox image")
    isub = i.add_subparsers(dest="image_command", metavar="ACTION", parser_class=_Parser)
    ib = isub.add_parser("build", help="build the sandbox image (and the offline base with --offline)")
    _image_args(ib)
    ib.add_argument("--rebuild", action="store_true", help="rebuild even if the tagged image exists")

    s = sub.add_parser("sweep", help="remove containers, networks and volumes left by dead runs")
    s.add_argument("--all", action="store_true", help="remove every pkgsandbox resource, even of live runs")
    return p


def _runtime_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--runtime",
        choices=["runc", "runsc"],
        help="container runtime: runc (Docker's default) or runsc (gVisor, a user-space kernel; "
        "needs `pkgsandbox doctor --provision`); default: the profile's [sandbox] runtime",
    )


def _image_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--offline",
        action="store_true",
        default=None,
        help="use the debootstrap offline base image (also PKGSANDBOX_OFFLINE=1)",
    )
    p.add_argument("--base-image", help="base image for the sandbox Dockerfile (also PKGSANDBOX_BASE_IMAGE)")
