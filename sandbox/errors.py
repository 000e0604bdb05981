"""One exception hierarchy; each class states its exit code once (its ``exit_code``).

Every error carries a one-line user-facing message and, where useful, advice
(:meth:`PkgSandboxError.diagnostics`). The CLI catches :class:`PkgSandboxError`
once and prints it (anything else is a bug: exit 3, one line); nothing else calls
``sys.exit``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented process exit codes of every ``pkgsandbox`` command."""

    CLEAN = 0
    FINDINGS = 1
    USAGE = 2
    SANDBOX = 3


class PkgSandboxError(Exception):
    """Base class of every error the tool reports to a user."""

    exit_code: ExitCode = ExitCode.SANDBOX

    def __init__(self, message: str, *, advice: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.advice = advice

    def diagnostics(self) -> str:
        """One clear line: what went wrong and, when known, what to do."""
        if self.advice:
            return f"{self.message} ({self.advice})"
        return self.message


class InputError(PkgSandboxError):
    """The user's input cannot be vetted: bad spec, unknown package, corrupt archive."""

    exit_code = ExitCode.USAGE


class FetchError(InputError):
    """An artifact or one of its dependencies could not be resolved or downloaded."""


class ProfileError(InputError):
    """A profile file is missing or invalid."""


class IndexUnavailable(PkgSandboxError):
    """The package index could not be read (network error, HTTP 5xx, timeout).

    Not bad input: the same command may work once the index answers, and a
    package that could not be looked at is never reported as unknown.
    """

    exit_code = ExitCode.SANDBOX


class EngineError(PkgSandboxError):
    """The container engine is unreachable, refuses us, or failed mid-run."""

    exit_code = ExitCode.SANDBOX


class ImageError(EngineError):
    """The sandbox image could not be built or found."""


class SandboxError(EngineError):
    """The sandbox could not run or record a phase (agent failure, lost trace)."""


class RecorderUnavailable(SandboxError):
    """The eBPF recorder could not start or attach (missing tools, too many recorders)."""


class Interrupted(PkgSandboxError):
    """The run was interrupted (SIGINT/SIGTERM); resources were cleaned up.

    ``partial`` holds what was known when it happened (a report with verdict
    ``incomplete``), for the CLI to write when an output file was asked for.
    """

    exit_code = ExitCode.SANDBOX

    def __init__(self, message: str, *, advice: str | None = None, partial: object = None) -> None:
        super().__init__(message, advice=advice)
        self.partial = partial


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code for *error*: its class's ``exit_code``; 3 for anything unexpected."""
    if isinstance(error, PkgSandboxError):
        return error.exit_code
    return ExitCode.SANDBOX
