"""A small package-index client for the files pip will not fetch for us: sdists.

It reads the same sources pip does (index-url, extra-index-url, find-links,
no-index, constraints, cert, client-cert, proxy, trusted-host from pip's own
configuration, PIP_* variables and the pip command's general options), speaks
the PEP 691 JSON simple API with a PEP 503 HTML fallback, reads ``file://``
indexes and find-links directories, and downloads files to a private directory
with the index's hash checked. It never interprets a file beyond its name.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import netrc
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from sandbox.errors import FetchError, IndexUnavailable
from sandbox.fetch.archive import split_sdist_filename
from sandbox.fetch.pip import Deadline, PipRunner

log = logging.getLogger(__name__)

DEFAULT_INDEX = "https://pypi.org/simple"
ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
MAX_PAGE = 128 * 1024**2  # the JSON page of a project with thousands of files
MAX_DOWNLOAD = 1024**3
_CHUNK = 1024 * 1024
_HASHES = ("sha256", "sha384", "sha512", "sha224", "sha1", "md5")
_TRUE = {"1", "true", "yes", "on"}


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class IndexConfig:
    """Where pip looks for packages, and how it talks to those places."""

    index_url: str | None = DEFAULT_INDEX  # None with --no-index
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    cert: str | None = None
    client_cert: str | None = None
    proxy: str | None = None
    trusted_hosts: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    pre: bool = False
    cwd: str = field(default_factory=os.getcwd)

    @property
    def indexes(self) -> tuple[str, ...]:
        """Index URLs in pip's order (none with --no-index)."""
        first = (self.index_url,) if self.index_url else ()
        return first + (self.extra_index_urls if self.index_url else ())

    def describe(self) -> str:
        """Where packages are looked for, for messages."""
        places = [*self.indexes, *self.find_links]
        return ", ".join(redact(p) for p in places) or "no index (--no-index)"


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(value.split()) if value else ()


def _cli_options(prefix: Sequence[str]) -> dict[str, list[str]]:
    """General options given in the pip command itself (``--cert X``, ``--proxy=Y``)."""
    wanted = {"--cert", "--client-cert", "--proxy", "--trusted-host"}
    out: dict[str, list[str]] = {}
    items = list(prefix)
    for i, item in enumerate(items):
        key, eq, value = item.partition("=")
        if key in wanted:
            if eq:
                out.setdefault(key, []).append(value)
            elif i + 1 < len(items):
                out.setdefault(key, []).append(items[i + 1])
    return out


def _last(values: list[str] | None) -> str | None:
    return values[-1] if values else None


def load_config(pip: PipRunner) -> IndexConfig:
    """The index configuration pip itself would use for ``pip download``."""
    cfg = pip.config()
    cli = _cli_options(pip.prefix)
    no_index = cfg.get("no-index", "").strip().lower() in _TRUE
    cert = _last(cli.get("--cert")) or cfg.get("cert")
    if not cert:
        # What requests (inside pip) honours when no cert option is set;
        # SSL_CERT_FILE/SSL_CERT_DIR are honoured by the default SSL context.
        cert = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None
    return IndexConfig(
        index_url=None if no_index else (cfg.get("index-url") or DEFAULT_INDEX).strip(),
        extra_index_urls=_split(cfg.get("extra-index-url")),
        find_links=_split(cfg.get("find-links")),
        cert=cert,
        client_cert=_last(cli.get("--client-cert")) or cfg.get("client-cert"),
        proxy=_last(cli.get("--proxy")) or cfg.get("proxy"),
        trusted_hosts=(*_split(cfg.get("trusted-host")), *cli.get("--trusted-host", [])),
        constraints=_split(cfg.get("constraint")),
        pre=cfg.get("pre", "").strip().lower() in _TRUE,
    )


def redact(url: str) -> str:
    """*url* without its password (for messages and artifact sources)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password or parts.username:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return urllib.parse.urlunsplit(parts._replace(netloc=f"***@{netloc}"))
    return url


def load_constraints(config: IndexConfig, notes: list[str]) -> dict[NormalizedName, SpecifierSet]:
    """Specifiers from pip's constraint files (local files; other lines are ignored)."""
    out: dict[NormalizedName, SpecifierSet] = {}
    for entry in config.constraints:
        path = Path(entry)
        if entry.startswith("file:"):
            path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(entry).path))
        elif "://" in entry:
            notes.append(f"constraint file {redact(entry)} was not read (only local files are)")
            continue
        if not path.is_absolute():
            path = Path(config.cwd) / path
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            raise FetchError(f"cannot read pip constraint file {path}: {exc.strerror}") from None
        for line in lines:
            line = line.split(" #", 1)[0].strip()
            if not line or line.startswith(("#", "-")):
                continue
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            name = canonicalize_name(req.name)
            out[name] = out.get(name, SpecifierSet()) & req.specifier
    return out


# --------------------------------------------------------------------------- HTTP


class NotFound(Exception):
    """The index has no page for the project."""


class Unavailable(Exception):
    """The index could not be read (network, TLS, server error)."""


def _file_path(url: str) -> Path:
    parts = urllib.parse.urlsplit(url)
    return Path(urllib.request.url2pathname(parts.path))


class Http:
    """urllib with pip's certificate, proxy, trusted-host and credential settings."""

    def __init__(self, config: IndexConfig, deadline: Deadline) -> None:
        self.config = config
        self.deadline = deadline
        proxies: dict[str, str] | None = None
        if config.proxy:
            proxies = {"http": config.proxy, "https": config.proxy}
        self._verified = self._opener(self._context(verify=True), proxies)
        self._trusted = self._opener(self._context(verify=False), proxies)
        try:
            self._netrc: netrc.netrc | None = netrc.netrc()
        except (OSError, netrc.NetrcParseError):
            self._netrc = None

    def _context(self, *, verify: bool) -> ssl.SSLContext:
        if not verify:
            # pip's --trusted-host: the user accepts this host without TLS checks.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            try:
                cert = self.config.cert
                if cert and os.path.isdir(cert):
                    context = ssl.create_default_context(capath=cert)
                else:
                    context = ssl.create_default_context(cafile=cert)
            except (OSError, ssl.SSLError) as exc:
                raise FetchError(f"cannot load the CA bundle {self.config.cert}: {exc}") from None
        if self.config.client_cert:
            try:
                context.load_cert_chain(self.config.client_cert)
            except (OSError, ssl.SSLError) as exc:
                raise FetchError(
                    f"cannot load the client certificate {self.config.client_cert}: {exc}"
                ) from None
        return context

    @staticmethod
    def _opener(context: ssl.SSLContext, proxies: dict[str, str] | None) -> urllib.request.OpenerDirector:
        # ProxyHandler() without arguments reads http(s)_proxy/no_proxy, as pip does.
        proxy = urllib.request.ProxyHandler(proxies) if proxies else urllib.request.ProxyHandler()
        return urllib.request.build_opener(proxy, urllib.request.HTTPSHandler(context=context))

    def secure(self, url: str) -> bool:
        """Would pip use *url*? pip ignores plain-http locations unless trusted or local."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http":
            return True
        host = parts.hostname or ""
        local = host == "localhost" or host == "::1" or host.startswith("127.")
        return local or self._trusted_host(parts)

    def _trusted_host(self, parts: urllib.parse.SplitResult) -> bool:
        host = parts.hostname or ""
        hostport = f"{host}:{parts.port}" if parts.port else host
        return host in self.config.trusted_hosts or hostport in self.config.trusted_hosts

    def _request(self, url: str, accept: str) -> tuple[urllib.request.Request, urllib.request.OpenerDirector]:
        parts = urllib.parse.urlsplit(url)
        headers = {"Accept": accept, "User-Agent": "pkgsandbox-fetch", "Cache-Control": "max-age=0"}
        user, password = parts.username, parts.password
        if user is None and self._netrc is not None and parts.hostname:
            auth = self._netrc.authenticators(parts.hostname)
            if auth:
                user, password = auth[0], auth[2]
        if user is not None:
            token = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
            netloc = parts.hostname or ""
            if parts.port:
                netloc += f":{parts.port}"
            url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        opener = self._trusted if self._trusted_host(parts) else self._verified
        return urllib.request.Request(url, headers=headers), opener

    def open(self, url: str, accept: str, what: str) -> tuple[Any, str, str]:
        """Open *url*: (response, final url, content type). Raises NotFound/Unavailable."""
        request, opener = self._request(url, accept)
        try:
            response = opener.open(request, timeout=self.deadline.remaining(what))
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 410):
                raise NotFound(url) from None
            raise Unavailable(f"HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unavailable(str(reason)) from None
        return response, response.geturl(), response.headers.get("Content-Type", "")

    def get(self, url: str, accept: str, what: str, cap: int = MAX_PAGE) -> tuple[str, str, bytes]:
        """(final url, content type, body) of *url*, ``file://`` included."""
        if url.startswith("file:"):
            path = _file_path(url)
            if path.is_dir():
                # pip reads index.html for a file:// index directory.
                path = path / "index.html"
                url = path.as_uri()
            try:
                with open(path, "rb") as fh:
                    body = fh.read(cap + 1)
            except FileNotFoundError:
                raise NotFound(url) from None
            except OSError as exc:
                raise Unavailable(exc.strerror or str(exc)) from None
            if len(body) > cap:
                raise Unavailable(f"page larger than {cap} bytes")
            # No content type on disk: the page is sniffed (JSON if it starts with "{").
            return url, "", body
        response, final, kind = self.open(url, accept, what)
        try:
            with response:
                body = response.read(cap + 1)
        except (OSError, ssl.SSLError) as exc:
            raise Unavailable(str(exc)) from None
        if len(body) > cap:
            raise Unavailable(f"page larger than {cap} bytes")
        return final, kind, body

    def download(
        self, url: str, dest: Path, what: str, cap: int = MAX_DOWNLOAD
    ) -> tuple[str, dict[str, str]]:
        """Stream *url* to *dest*; returns (sha256, {algorithm: hexdigest}) of what was written."""
        hashers = {name: hashlib.new(name) for name in _HASHES}
        size = 0
        try:
            if url.startswith("file:"):
                local = _file_path(url)
                if not local.is_file():
                    raise NotFound(url)
                source: Any = open(local, "rb")  # noqa: SIM115 - closed below
            else:
                source, _, _ = self.open(url, "*/*", what)
            with source, open(dest, "wb") as out:
                while True:
                    self.deadline.remaining(what)
                    chunk = source.read(_CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > cap:
                        raise Unavailable(f"file larger than {cap} bytes")
                    out.write(chunk)
                    for h in hashers.values():
                        h.update(chunk)
        except FileNotFoundError:
            raise NotFound(url) from None
        except (OSError, ssl.SSLError) as exc:
            raise Unavailable(str(exc)) from None
        digests = {name: h.hexdigest() for name, h in hashers.items()}
        return digests["sha256"], digests


# --------------------------------------------------------------------------- listings


@dataclass(frozen=True)
class IndexFile:
    """One file an index or find-links location offers for a project."""

    filename: str
    url: str
    source: str  # the index URL or find-links location it was listed by
    version: Version
    kind: str  # "wheel" or "sdist"
    hashes: tuple[tuple[str, str], ...] = ()
    requires_python: str | None = None
    yanked: bool = False
    tags: frozenset[Tag] = frozenset()

    def hash(self, algorithm: str) -> str | None:
        """The hex digest the index gives for *algorithm*, if any."""
        return dict(self.hashes).get(algorithm)

    def python_ok(self, python_full_version: str) -> bool:
        """Does the file's Requires-Python (from the index) admit this Python?"""
        if not self.requires_python:
            return True
        try:
            return SpecifierSet(self.requires_python).contains(python_full_version, prereleases=True)
        except InvalidSpecifier:
            return True  # pip ignores an invalid Requires-Python too


@dataclass
class Listing:
    """Everything the configured sources offer for one project."""

    name: NormalizedName
    files: list[IndexFile] = field(default_factory=list)
    found_in: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (location, reason)

    @property
    def exists(self) -> bool:
        """Did any source know the project?"""
        return bool(self.found_in)

    def versions(self) -> list[Version]:
        """Every version offered, ascending."""
        return sorted({f.version for f in self.files})


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self.anchors.append(dict(attrs))


def _fragment_hashes(url: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    base, _, fragment = url.partition("#")
    hashes: list[tuple[str, str]] = []
    for part in fragment.split("&"):
        algo, eq, value = part.partition("=")
        if eq and algo.lower() in _HASHES:
            hashes.append((algo.lower(), value.lower()))
    return base, tuple(hashes)


def _classify(filename: str, project: NormalizedName) -> tuple[str, Version, frozenset[Tag]] | None:
    # The filename names a file we write: no separators, no hidden or special names.
    if not filename or any(c in filename for c in "/\\\x00") or filename.startswith("."):
        return None
    if filename.lower().endswith(".whl"):
        try:
            name, version, _, tags = parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion):
            return None
        return ("wheel", version, frozenset(tags)) if name == project else None
    split = split_sdist_filename(filename, project)
    if split is None:
        return None
    try:
        return "sdist", Version(split[1]), frozenset()
    except InvalidVersion:
        return None


def _same_realm(page: str, file: str) -> bool:
    """A remote page may only point at remote files: never let it read local paths."""
    page_scheme = urllib.parse.urlsplit(page).scheme
    file_scheme = urllib.parse.urlsplit(file).scheme
    if file_scheme == "file":
        return page_scheme == "file"
    return file_scheme in ("http", "https")


class IndexClient:
    """Lists projects and downloads files from the sources pip is configured with."""

    def __init__(self, config: IndexConfig, deadline: Deadline) -> None:
        self.config = config
        self.deadline = deadline
        self.http = Http(config, deadline)
        self._cache: dict[NormalizedName, Listing] = {}

    def listing(self, project: str) -> Listing:
        """All files of *project* from every index and find-links location."""
        name = canonicalize_name(project)
        if name in self._cache:
            return self._cache[name]
        listing = Listing(name)
        for index in self.config.indexes:
            if not self.http.secure(index):
                listing.errors.append(
                    (redact(index), "plain http and not a trusted host (pip ignores it too)")
                )
                continue
            url = index.rstrip("/") + f"/{name}/"
            try:
                final, kind, body = self.http.get(url, ACCEPT, f"reading {redact(url)}")
            except NotFound:
                continue
            except Unavailable as exc:
                listing.errors.append((redact(index), str(exc)))
                continue
            listing.found_in.append(redact(index))
            listing.files += self._parse_page(final, kind, body, name, redact(index))
        for location in self.config.find_links:
            self._find_links(location, name, listing)
        self._cache[name] = listing
        return listing

    def _find_links(self, location: str, name: NormalizedName, listing: Listing) -> None:
        path: Path | None = None
        if location.startswith("file:"):
            path = _file_path(location)
        elif "://" not in location:
            path = Path(location).expanduser()
            if not path.is_absolute():
                path = Path(self.config.cwd) / path
        if path is not None and path.is_dir():
            files = []
            for entry in sorted(path.iterdir()):
                classified = _classify(entry.name, name)
                if classified is not None and entry.is_file():
                    kind, version, tags = classified
                    files.append(
                        IndexFile(entry.name, entry.resolve().as_uri(), str(path), version, kind, tags=tags)
                    )
            if files:
                listing.found_in.append(str(path))
                listing.files += files
            return
        url = path.as_uri() if path is not None else location
        if not self.http.secure(url):
            listing.errors.append(
                (redact(location), "plain http and not a trusted host (pip ignores it too)")
            )
            return
        try:
            final, kind, body = self.http.get(url, "text/html", f"reading {redact(location)}")
        except NotFound:
            return
        except Unavailable as exc:
            listing.errors.append((redact(location), str(exc)))
            return
        files = self._parse_page(final, kind or "text/html", body, name, redact(location))
        if files:
            listing.found_in.append(redact(location))
            listing.files += files

    def _parse_page(
        self, url: str, kind: str, body: bytes, name: NormalizedName, source: str
    ) -> list[IndexFile]:
        text = body.decode("utf-8", "replace")
        if "json" in kind or (not kind.startswith("text/html") and text.lstrip().startswith("{")):
            try:
                return self._parse_json(url, json.loads(text), name, source)
            except (ValueError, TypeError, AttributeError) as exc:
                raise FetchError(f"index {source} returned an invalid JSON page for {name}: {exc}") from None
        return self._parse_html(url, text, name, source)

    @staticmethod
    def _parse_json(url: str, data: Any, name: NormalizedName, source: str) -> list[IndexFile]:
        out = []
        for entry in data.get("files", []):
            filename = str(entry["filename"])
            classified = _classify(filename, name)
            if classified is None or not _same_realm(url, urllib.parse.urljoin(url, str(entry["url"]))):
                continue
            kind, version, tags = classified
            hashes = tuple((str(k).lower(), str(v).lower()) for k, v in (entry.get("hashes") or {}).items())
            out.append(
                IndexFile(
                    filename=filename,
                    url=urllib.parse.urljoin(url, str(entry["url"])),
                    source=source,
                    version=version,
                    kind=kind,
                    hashes=hashes,
                    requires_python=entry.get("requires-python") or None,
                    yanked=bool(entry.get("yanked")),
                    tags=tags,
                )
            )
        return out

    @staticmethod
    def _parse_html(url: str, text: str, name: NormalizedName, source: str) -> list[IndexFile]:
        parser = _Anchors()
        parser.feed(text)
        base = urllib.parse.urljoin(url, parser.base) if parser.base else url
        out = []
        for attrs in parser.anchors:
            href = attrs.get("href")
            if not href:
                continue
            full, hashes = _fragment_hashes(urllib.parse.urljoin(base, href))
            filename = urllib.parse.unquote(urllib.parse.urlsplit(full).path.rsplit("/", 1)[-1])
            classified = _classify(filename, name)
            if classified is None or not _same_realm(url, full):
                continue
            kind, version, tags = classified
            out.append(
                IndexFile(
                    filename=filename,
                    url=full,
                    source=source,
                    version=version,
                    kind=kind,
                    hashes=hashes,
                    requires_python=attrs.get("data-requires-python") or None,
                    yanked="data-yanked" in attrs,
                    tags=tags,
                )
            )
        return out

    def download(self, file: IndexFile, directory: Path) -> tuple[Path, str]:
        """Download *file* into *directory*, checking the index's hash; (path, sha256)."""
        dest = directory / file.filename
        partial = directory / (file.filename + ".part")
        what = f"downloading {file.filename}"
        try:
            sha256, digests = self.http.download(file.url, partial, what)
        except NotFound:
            partial.unlink(missing_ok=True)
            raise FetchError(f"cannot download {file.filename} from {file.source}: not found") from None
        except Unavailable as exc:
            partial.unlink(missing_ok=True)
            raise IndexUnavailable(f"cannot download {file.filename} from {file.source}: {exc}") from None
        for algorithm, expected in file.hashes:
            if algorithm in digests and digests[algorithm] != expected:
                partial.unlink(missing_ok=True)
                raise FetchError(
                    f"{algorithm} mismatch for {file.filename} from {file.source}: "
                    f"index says {expected}, downloaded file has {digests[algorithm]}"
                )
        os.replace(partial, dest)
        return dest, sha256


def best_first(files: Iterable[IndexFile]) -> list[IndexFile]:
    """Highest version first; for one version prefer .tar.gz, then the first source listed."""
    indexed = list(enumerate(files))
    indexed.sort(
        key=lambda item: (item[1].version, item[1].filename.endswith(".tar.gz"), -item[0]), reverse=True
    )
    return [f for _, f in indexed]


def allowed_versions(
    req: Requirement, versions: Iterable[Version], *, pre: bool, constraint: SpecifierSet | None
) -> set[Version]:
    """The versions pip could pick for *req*.

    As in pip's finder: prereleases only with ``--pre``, when the specifier
    names one, or when nothing else matches; constraints narrow the choice.
    """
    allow_pre = True if pre else None
    chosen = set(req.specifier.filter(sorted(set(versions)), prereleases=allow_pre))
    if constraint is not None:
        chosen = {v for v in chosen if constraint.contains(v, prereleases=True)}
    return chosen


def yanked_allowed(req: Requirement) -> bool:
    """PEP 592: a yanked file is only used when the requirement pins it exactly."""
    return any(s.operator in ("==", "===") and "*" not in s.version for s in req.specifier)
