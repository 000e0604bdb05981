"""Running the host's pip for wheel-only resolution, with source builds made impossible.

``pip download --only-binary=:all:`` never builds an index package, but pip
still *builds* direct references it meets in a wheel's metadata
(``Requires-Dist: evil @ file:///…/evil.tar.gz`` runs evil's setup.py on the
host, whatever the format options say). So pip is never run plainly: it runs
under :data:`GUARD`, a few lines executed in pip's own interpreter before pip's
``main`` that replace pip's "unpack a non-wheel link" and "prepare an sdist's
metadata" steps with an error. If pip's internals moved, the guard fails closed.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from sandbox.errors import FetchError, IndexUnavailable, InputError
from sandbox.fetch.target import TargetEnv

log = logging.getLogger(__name__)

REFUSED = "pkgsandbox-refused-build:"

# Runs as ``python -c GUARD ARGS…`` in place of ``python -m pip ARGS…``.
GUARD = f"""
import os, sys
if sys.path and sys.path[0] in ("", os.getcwd()):
    sys.path.pop(0)  # like pip's __main__: never import from the working directory
from pip._internal.exceptions import InstallationError
import pip._internal.distributions.sdist as _sdist
import pip._internal.operations.prepare as _prepare

def _refuse(what):
    raise InstallationError({REFUSED!r} + " " + str(what))

def _no_metadata(self, *args, **kwargs):
    _refuse(getattr(self, "req", "a source distribution"))

_sdist.SourceDistribution.prepare_distribution_metadata = _no_metadata
_unpack = _prepare.unpack_url

def _wheels_only(link, *args, **kwargs):
    if not link.is_wheel:
        _refuse(link.url)
    return _unpack(link, *args, **kwargs)

_prepare.unpack_url = _wheels_only
from pip._internal.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


class Deadline:
    """One time budget shared by every subprocess and HTTP request of a fetch."""

    def __init__(self, seconds: float) -> None:
        self.total = seconds
        self.end = time.monotonic() + seconds

    def remaining(self, what: str) -> float:
        """Seconds left; raises IndexUnavailable (exit 3, not bad input) when the budget is spent."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise IndexUnavailable(f"fetch timed out after {self.total:.0f} s while {what}")
        return left


@dataclass(frozen=True)
class PipResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """Did pip exit 0?"""
        return self.returncode == 0

    def error_lines(self) -> list[str]:
        """pip's ``ERROR:`` lines."""
        return [line.strip() for line in self.stderr.splitlines() if line.strip().startswith("ERROR:")]

    def conflict(self) -> str:
        """pip's explanation of a resolution conflict ("a 1.0 depends on b<2; …"), or ""."""
        if "ResolutionImpossible" not in self.stderr and "conflicting dependencies" not in self.stderr:
            return ""
        causes = [
            line.strip()
            for line in self.stdout.splitlines()
            if _DEPENDS.match(line) or line.strip().startswith("The user requested")
        ]
        return "; ".join(causes) or self.summary()

    def summary(self) -> str:
        """pip's error lines, or the tail of its output."""
        lines = self.error_lines() or self.stderr.strip().splitlines()[-3:] or ["(no output)"]
        return " / ".join(line.removeprefix("ERROR: ") for line in lines[-3:])


def guarded_command(pip: Sequence[str]) -> list[str]:
    """Turn ``[…, python, "-m", "pip", opts…]`` into ``[…, python, "-c", GUARD, opts…]``."""
    prefix = list(pip)
    for i in range(len(prefix) - 1):
        if prefix[i] == "-m" and prefix[i + 1] == "pip" and i > 0:
            return [*prefix[:i], "-c", GUARD, *prefix[i + 2 :]]
    raise InputError(
        f"the pip command {prefix!r} must run pip as a module ([python, '-m', 'pip', …]) "
        "so that source builds on the host can be blocked"
    )


_RUNNING: set[PipRunner] = set()  # every runner with a pip in flight, any thread
_RUNNING_LOCK = threading.Lock()


def kill_running() -> None:
    """Cancel every runner with a pip in flight (:meth:`PipRunner.cancel`; their threads
    then raise): an interrupted vet must not wait at exit for a fetch thread's pip,
    which its Ctrl-C never reaches."""
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for runner in running:
        runner.cancel()


class PipRunner:
    """Runs the user's pip (their configuration applies) under the build guard."""

    def __init__(self, pip: Sequence[str] | None, deadline: Deadline) -> None:
        self.prefix = list(pip) if pip else [sys.executable, "-m", "pip"]
        self.command = guarded_command(self.prefix)
        self.deadline = deadline
        self._config: dict[str, str] | None = None
        self._python: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._cancelled = False

    def env(self) -> dict[str, str]:
        """The environment pip runs with: the user's, plus non-interactive settings."""
        env = dict(os.environ)
        # Never prompt (no stdin), never nag; the rest of the user's PIP_* stays.
        env.update(
            PIP_NO_INPUT="1",
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            PIP_PROGRESS_BAR="off",
            PIP_REQUIRE_VIRTUALENV="0",
        )
        return env

    def run(self, args: Sequence[str], what: str) -> PipResult:
        """Run pip with *args*; kills its process group when the deadline passes."""
        if self._cancelled:
            raise FetchError("fetch cancelled")
        cmd = [*self.command, *args]
        timeout = self.deadline.remaining(what)
        log.debug("running pip %s", " ".join(args))
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.env(),
                start_new_session=True,  # so a timeout kills pip and anything it started
            )
        except OSError as exc:
            raise FetchError(f"cannot run pip ({self.prefix[0]}): {exc}") from None
        self._proc = proc
        if self._cancelled:  # cancelled from another thread while this one started pip
            self._kill(proc)
            raise FetchError("fetch cancelled")
        with _RUNNING_LOCK:
            _RUNNING.add(self)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            raise IndexUnavailable(
                f"fetch timed out after {self.deadline.total:.0f} s while {what}"
            ) from None
        except BaseException:
            # Interrupted (Ctrl-C does not reach pip's own session): take pip down too.
            self._kill(proc)
            raise
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(self)
        if self._cancelled:
            raise FetchError("fetch cancelled")
        result = PipResult(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
        if REFUSED in result.stderr:
            raise FetchError(refusal_message(result.stderr))
        return result

    def cancel(self) -> None:
        """From another thread: kill the pip run in flight (and refuse any later one);
        the thread waiting for it then raises."""
        self._cancelled = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()

    def download(
        self,
        requirements: Sequence[str],
        target: TargetEnv,
        dest: Path,
        *,
        find_links: Sequence[Path] = (),
        what: str,
    ) -> PipResult:
        """``pip download`` of wheels only, for *target*, with dependencies, into *dest*."""
        args = ["download", "--dest", str(dest), *target.pip_args()]
        for directory in find_links:
            args += ["--find-links", str(directory)]
        return self.run([*args, *requirements], what)

    def config(self) -> dict[str, str]:
        """pip's effective configuration for ``pip download`` (files, then PIP_* variables).

        ``pip config list`` costs a pip start-up (~0.4 s of CPU, competing with the
        sandbox's start on a small machine), so its answer is cached by everything it
        is made of: the command, the interpreter's prefix, pip's version, the PIP_* and
        XDG variables and the contents of every file pip reads its configuration from."""
        if self._config is None:
            key = self._config_key()
            self._config = _cached_config(key)
            if self._config is None:
                result = self.run(["config", "list"], "reading pip's configuration")
                if not result.ok:
                    raise FetchError(f"cannot read pip's configuration: {result.summary()}")
                self._config = parse_config_list(result.stdout)
                _cache_config(key, self._config)
        return self._config

    def _config_key(self) -> str | None:
        """What ``pip config list`` depends on, hashed; None when it cannot be known
        (a pip other than our interpreter's: its prefix and version are not ours)."""
        if self.prefix[0] != sys.executable:
            return None
        try:
            from importlib.metadata import version

            pip_version = version("pip")
        except Exception:
            return None
        env = self.env()
        home = Path(env.get("HOME") or Path.home())
        xdg_dirs = (env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep)
        files = [
            env.get("PIP_CONFIG_FILE") or "",
            *(os.path.join(d, "pip", "pip.conf") for d in xdg_dirs if d),
            "/etc/pip.conf",
            str(home / ".pip" / "pip.conf"),
            os.path.join(env.get("XDG_CONFIG_HOME") or str(home / ".config"), "pip", "pip.conf"),
            os.path.join(sys.prefix, "pip.conf"),
        ]
        h = hashlib.sha256(json.dumps([self.prefix, sys.prefix, pip_version]).encode())
        for name in sorted(k for k in env if k.startswith(("PIP_", "XDG_")) or k in ("HOME", "VIRTUAL_ENV")):
            h.update(f"{name}={env[name]}\0".encode())
        for path in files:
            h.update(path.encode() + b"\0")
            try:
                h.update(hashlib.sha256(Path(path).read_bytes()).digest())
            except OSError as exc:
                h.update(str(exc.errno).encode())  # absent and unreadable differ from present
        return h.hexdigest()

    def python_version(self) -> str | None:
        """``"3.11"``: the interpreter pip runs on (its markers are evaluated for it)."""
        if self._python is None and self.prefix[0] == sys.executable:
            # our own interpreter: no need to spend a pip start-up (~0.3 s) asking
            self._python = f"{sys.version_info[0]}.{sys.version_info[1]}"
        if self._python is None:
            result = self.run(["--version"], "asking pip for its version")
            m = re.search(r"\(python (\d+\.\d+)\)", result.stdout)
            self._python = m.group(1) if m else ""
        return self._python or None


def _config_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pkgsandbox" / "pip-config.json"


def _cached_config(key: str | None) -> dict[str, str] | None:
    if key is None:
        return None
    try:
        known = json.loads(_config_cache().read_text())
        entry = known.get(key) if isinstance(known, dict) else None
    except (OSError, ValueError):
        return None
    if isinstance(entry, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in entry.items()):
        return dict(entry)
    return None


def _cache_config(key: str | None, config: dict[str, str]) -> None:
    if key is None:
        return
    path = _config_cache()
    try:
        known = json.loads(path.read_text())
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    known = {k: v for k, v in list(known.items())[-15:] if k != key}  # a few configurations, newest last
    known[key] = config
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known))
        tmp.replace(path)
    except OSError:
        pass  # caching is an optimisation


def parse_config_list(text: str) -> dict[str, str]:
    """Merge ``pip config list`` output the way pip does for ``download``.

    Keys are ``section.option`` where the section is ``global``, ``download``
    or ``:env:`` (PIP_* variables); later sections win and empty values are
    ignored, as in pip's option parser.
    """
    sections: dict[str, dict[str, str]] = {"global": {}, "download": {}, ":env:": {}}
    for line in text.splitlines():
        key, sep, raw = line.partition("=")
        if not sep:
            continue
        section, _, option = key.strip().rpartition(".")
        if section not in sections:
            continue
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip().strip("'\"")
        if isinstance(value, str) and value.strip():
            sections[section][option.lower().replace("_", "-")] = value
    merged: dict[str, str] = {}
    for section in ("global", "download", ":env:"):
        merged.update(sections[section])
    return merged


def refusal_message(stderr: str) -> str:
    """The user-facing message for a build the guard refused."""
    what = ""
    for line in stderr.splitlines():
        if REFUSED in line:
            what = line.split(REFUSED, 1)[1].strip()
    return (
        f"refusing to fetch {what}: it is not a wheel (a direct reference to a source tree or "
        "sdist), and pip would build it on the host"
    )


# --------------------------------------------------------------------------- failures


@dataclass(frozen=True)
class Unsatisfied:
    """A requirement pip found no wheel for, and who asked for it."""

    requirement: Requirement
    text: str
    requester: str | None


_NOT_FOUND = re.compile(r"No matching distribution found for (?P<req>.+?)\s*$")
_NO_VERSION = re.compile(
    r"Could not find a version that satisfies the requirement (?P<req>.+?)"
    r"(?: \(from (?!versions:)(?P<from>[^()]+)\))?(?: \(from versions: [^)]*\))?\s*$"
)
_DEPENDS = re.compile(r"^\s*(?P<from>\S+ \S+) depends on (?P<req>.+?)\s*$")
_USER = re.compile(r"^\s*The user requested (?P<req>.+?)\s*$")


def _requirement(text: str) -> Requirement | None:
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def unsatisfied(result: PipResult) -> list[Unsatisfied]:
    """Requirements pip reported as having no matching (wheel) distribution.

    Parses "Could not find a version that satisfies the requirement X (from Y)",
    "No matching distribution found for X" and, for resolution conflicts,
    "Y depends on X" / "The user requested X".
    """
    found: dict[str, Unsatisfied] = {}
    for line in result.stderr.splitlines():
        line = line.strip().removeprefix("ERROR:").strip()
        for pattern in (_NO_VERSION, _NOT_FOUND):
            m = pattern.match(line)
            if m:
                req = _requirement(m.group("req"))
                if req is not None:
                    requester = m.groupdict().get("from")
                    previous = found.get(str(req))
                    if previous is None or (requester and not previous.requester):
                        found[str(req)] = Unsatisfied(req, m.group("req"), requester)
                break
    if found:
        return list(found.values())
    if "conflicting dependencies" in result.stderr or "ResolutionImpossible" in result.stderr:
        # pip explains conflicts on stdout ("The conflict is caused by: …").
        for line in (result.stdout + "\n" + result.stderr).splitlines():
            m = _DEPENDS.match(line) or _USER.match(line)
            if m:
                req = _requirement(m.group("req"))
                if req is not None and str(req) not in found:
                    found[str(req)] = Unsatisfied(req, m.group("req"), m.groupdict().get("from"))
    return list(found.values())
