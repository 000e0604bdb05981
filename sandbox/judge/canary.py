"""Honeytokens and the proof that they left: pure code, host side.

:func:`make_honeytokens` generates, per run, credentials that look real and are
unique (environment variables and files a developer's HOME holds); each carries
one or more *canaries*: high-entropy strings that appear nowhere else.
:class:`CanaryMatcher` then looks for those canaries in captured outbound bytes
— plain, base64 (standard and URL-safe, every alignment), base32, hex,
URL-encoded, JSON-escaped, compressed (gzip, zlib, bz2, xz), and nested
combinations of those — and in DNS query names, where exfiltration splits the
encoded secret into labels and often across queries.

A match is proof: the canary exists only in the planted file or variable, so the
bytes that carry it were read from there and sent.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import contextlib
import json
import lzma
import random
import re
import secrets
import sqlite3
import string
import tempfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote_to_bytes

from sandbox.judge import aesgcm
from sandbox.judge.cienv import ci_env

# --------------------------------------------------------------------------- honeytokens


@dataclass(frozen=True)
class Canary:
    """One unique secret string and where it was planted."""

    name: str  # e.g. "AWS_SECRET_ACCESS_KEY"
    value: str
    location: str  # "env AWS_SECRET_ACCESS_KEY" or "~/.aws/credentials"

    @property
    def fingerprint(self) -> str:
        """A short form that is safe to print (reports must not carry the secret)."""
        return f"{self.value[:4]}…{self.value[-4:]}" if len(self.value) > 12 else "…"


@dataclass(frozen=True)
class HoneytokenSet:
    """What is planted in one run: variables, files (relative to HOME), canaries."""

    env: dict[str, str]
    files: dict[str, str]
    canaries: tuple[Canary, ...]
    blobs: dict[str, bytes] = field(default_factory=dict)  # binary files (SQLite, leveldb)
    windows_env: dict[str, str] = field(default_factory=dict)  # the Windows pass's variables
    ci_env: dict[str, str] = field(default_factory=dict)  # the ci pass's (a GitHub Actions job)
    ci_files: tuple[str, ...] = ()  # its workflow-command files, created at setup

    def plan(self) -> dict[str, object]:
        """The plan keys the agent reads (``env`` of the candidate, ``home_files``,
        ``home_blobs`` base64-encoded)."""
        return {
            "env": dict(self.env),
            "home_files": dict(self.files),
            "home_blobs": {rel: base64.b64encode(data).decode() for rel, data in self.blobs.items()},
        }

    def paths(self, home: str) -> dict[str, str]:
        """Absolute path of every planted file → its ``~/`` form."""
        return {f"{home.rstrip('/')}/{rel}": f"~/{rel}" for rel in [*self.files, *self.blobs]}


_ALNUM = string.ascii_letters + string.digits
_B32 = string.ascii_uppercase + "234567"
_B64 = _ALNUM + "+/"
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _fake_openssh_key(rng: random.Random) -> tuple[str, str]:
    """A PEM that looks like an OpenSSH RSA key; returns (file text, canary slice).

    Real keys start with a fixed prefix (``openssh-key-v1``, ``none``, ``ssh-rsa``),
    so the canary is taken from the random part after it.
    """
    prefix = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAABlwAAAAdzc2gtcn"
    body = prefix + "NhAAAAAwEAAQAAAYEA" + _rand(rng, _B64, 2480) + "=="
    lines = [body[i : i + 70] for i in range(0, len(body), 70)]
    text = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    return text, lines[3][6:54]


def make_honeytokens(
    rng: random.Random | None = None, *, user: str = "dev", project_rel: str = "project", hostname: str = ""
) -> HoneytokenSet:
    """A fresh, realistic, unique set of credentials (from :mod:`secrets` unless *rng*)."""
    r = rng or random.Random(secrets.randbits(128))
    company = r.choice(["acme", "northwind", "globex", "initech", "umbrella", "hooli", "vandelay"])
    hostname = hostname or f"{user}-{r.choice(['laptop', 'thinkpad', 'xps', 'mbp'])}"
    canaries: list[Canary] = []

    def canary(name: str, value: str, location: str) -> str:
        canaries.append(Canary(name, value, location))
        return value

    def env_canary(name: str, value: str) -> str:
        return canary(name, value, f"env {name}")

    env: dict[str, str] = {
        "AWS_ACCESS_KEY_ID": env_canary("AWS_ACCESS_KEY_ID", "AKIA" + _rand(r, _B32, 16)),
        "AWS_SECRET_ACCESS_KEY": env_canary("AWS_SECRET_ACCESS_KEY", _rand(r, _B64, 40)),
        "AWS_DEFAULT_REGION": "eu-west-1",
        "GITHUB_TOKEN": env_canary("GITHUB_TOKEN", "ghp_" + _rand(r, _ALNUM, 36)),
        "OPENAI_API_KEY": env_canary("OPENAI_API_KEY", "sk-proj-" + _rand(r, _ALNUM + "-_", 48)),
        "ANTHROPIC_API_KEY": env_canary(
            "ANTHROPIC_API_KEY", "sk-ant-api03-" + _rand(r, _ALNUM + "-_", 93) + "AA"
        ),
        "HF_TOKEN": env_canary("HF_TOKEN", "hf_" + _rand(r, _ALNUM, 34)),
        "NPM_TOKEN": env_canary("NPM_TOKEN", "npm_" + _rand(r, _ALNUM, 36)),
    }
    files: dict[str, str] = {}

    key_text, key_canary = _fake_openssh_key(r)
    canary("id_rsa", key_canary, "~/.ssh/id_rsa")
    files[".ssh/id_rsa"] = key_text
    files[".ssh/id_rsa.pub"] = (
        f"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ{_rand(r, _B64, 500)}= {user}@{hostname}\n"
    )
    files[".ssh/known_hosts"] = (
        "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
        f"|1|{_rand(r, _B64, 27)}=|{_rand(r, _B64, 27)}= ecdsa-sha2-nistp256 "
        f"AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBB{_rand(r, _B64, 88)}=\n"
    )
    files[".ssh/config"] = (
        f"Host bastion\n    HostName bastion.{company}.internal\n    User {user}\n"
        "    IdentityFile ~/.ssh/id_rsa\n\nHost *.internal\n    ProxyJump bastion\n"
    )

    aws_id = canary("aws_access_key_id", "AKIA" + _rand(r, _B32, 16), "~/.aws/credentials")
    aws_secret = canary("aws_secret_access_key", _rand(r, _B64, 40), "~/.aws/credentials")
    files[".aws/credentials"] = (
        f"[default]\naws_access_key_id = {aws_id}\n"
        f"aws_secret_access_key = {aws_secret}\n\n"
        f"[{company}-prod]\naws_access_key_id = AKIA{_rand(r, _B32, 16)}\n"
        f"aws_secret_access_key = {_rand(r, _B64, 40)}\n"
    )
    files[".aws/config"] = (
        f"[default]\nregion = eu-west-1\noutput = json\n\n[profile {company}-prod]\nregion = us-east-1\n"
    )

    kube = canary(
        "kube token", "eyJhbGciOiJSUzI1NiIsImtpZCI6I" + _rand(r, _ALNUM + "-_", 60), "~/.kube/config"
    )
    files[".kube/config"] = (
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: "
        f"LS0tLS1CRUdJTi{_rand(r, _B64, 120)}\n    server: https://k8s.{company}.internal:6443\n"
        f"  name: {company}-prod\ncontexts:\n- context:\n    cluster: {company}-prod\n    user: {user}\n"
        f"  name: {company}-prod\ncurrent-context: {company}-prod\nkind: Config\npreferences: {{}}\n"
        f"users:\n- name: {user}\n  user:\n    token: {kube}\n"
    )

    docker_pw = canary("docker registry password", _rand(r, _ALNUM, 32), "~/.docker/config.json")
    auth = base64.b64encode(f"{user}:{docker_pw}".encode()).decode()
    files[".docker/config.json"] = (
        json.dumps({"auths": {f"registry.{company}.io": {"auth": auth}}, "credsStore": ""}, indent="\t")
        + "\n"
    )

    git_tok = canary("git credential", "ghp_" + _rand(r, _ALNUM, 36), "~/.git-credentials")
    files[".git-credentials"] = f"https://{user}:{git_tok}@github.com\n"

    netrc_pw = canary("netrc password", _rand(r, _ALNUM, 28), "~/.netrc")
    files[".netrc"] = (
        f"machine api.heroku.com\n  login {user}@{company}.com\n  password {netrc_pw}\n"
        f"machine git.{company}.internal\n  login {user}\n  password {_rand(r, _ALNUM, 20)}\n"
    )

    db_pw = canary("DATABASE_URL password", _rand(r, _ALNUM, 24), f"~/{project_rel}/.env")
    app_secret = canary("SECRET_KEY", _rand(r, _ALNUM, 50), f"~/{project_rel}/.env")
    stripe = canary("STRIPE_SECRET_KEY", "sk_live_" + _rand(r, _ALNUM, 40), f"~/{project_rel}/.env")
    files[f"{project_rel}/.env"] = (
        f"DEBUG=false\nDATABASE_URL=postgres://app:{db_pw}@db.{company}.internal:5432/app\n"
        f"SECRET_KEY={app_secret}\nSTRIPE_SECRET_KEY={stripe}\n"
        f"SENTRY_DSN=https://{_rand(r, '0123456789abcdef', 32)}@o1.ingest.sentry.io/42\n"
    )

    xprv = canary(
        "wallet xprv", "xprv9s21ZrQH143K" + _rand(r, _B58, 95), "~/.electrum/wallets/default_wallet"
    )
    files[".electrum/wallets/default_wallet"] = (
        json.dumps(
            {
                "keystore": {
                    "type": "bip32",
                    "xprv": xprv,
                    "xpub": "xpub661MyMwAqRbc" + _rand(r, _B58, 95),
                    "derivation": "m/0'",
                },
                "wallet_type": "standard",
                "seed_version": 18,
                "use_encryption": False,
            },
            indent=4,
        )
        + "\n"
    )
    files[".electrum/config"] = json.dumps({"config_version": 3, "auto_connect": True}) + "\n"
    blobs, win_env = _windows_tree(r, user, canary, files)
    ci, ci_files = ci_env(r, user, project_rel, canary)
    return HoneytokenSet(
        env=env,
        files=files,
        canaries=tuple(canaries),
        blobs=blobs,
        windows_env=win_env,
        ci_env=ci,
        ci_files=tuple(ci_files),
    )


def _v10(r: random.Random, key: bytes, password: str) -> bytes:
    """Chromium's v80+ password blob: ``v10`` + nonce + AES-256-GCM(key) + tag, so a
    stealer holding the Local State key (the Windows pass's DPAPI stub unwraps it)
    decrypts the canary instead of failing on noise."""
    nonce = r.randbytes(12)
    ciphertext, tag = aesgcm.encrypt(key, nonce, password.encode())
    return b"v10" + nonce + ciphertext + tag


def _login_data(rows: list[tuple[str, str, bytes]]) -> bytes:
    """A Chromium ``Login Data`` SQLite file holding *rows* (url, username, password blob)."""
    with tempfile.TemporaryDirectory(prefix="pkgsandbox-ld-") as tmp:
        path = Path(tmp) / "Login Data"
        db = sqlite3.connect(path)
        try:
            db.execute(
                "CREATE TABLE logins (origin_url VARCHAR NOT NULL, action_url VARCHAR, username_element "
                "VARCHAR, username_value VARCHAR, password_element VARCHAR, password_value BLOB, "
                "signon_realm VARCHAR NOT NULL, date_created INTEGER NOT NULL, blacklisted_by_user "
                "INTEGER NOT NULL, scheme INTEGER NOT NULL, times_used INTEGER, date_last_used INTEGER)"
            )
            db.execute("CREATE TABLE meta (key LONGVARCHAR NOT NULL UNIQUE PRIMARY KEY, value LONGVARCHAR)")
            db.execute("INSERT INTO meta VALUES ('version', '35'), ('last_compatible_version', '35')")
            for url, username, blob in rows:
                db.execute(
                    "INSERT INTO logins VALUES (?, ?, 'email', ?, 'password', ?, ?, "
                    "13300000000000000, 0, 0, 3, 13350000000000000)",
                    (url, url, username, blob, url),
                )
            db.commit()
        finally:
            db.close()
        return path.read_bytes()


def _windows_tree(
    r: random.Random,
    user: str,
    canary: Callable[[str, str, str], str],
    files: dict[str, str],
) -> tuple[dict[str, bytes], dict[str, str]]:
    """The honey tree a Windows stealer looks for, where a Wine prefix keeps it
    (``~/.wine/drive_c/users/USER``: plausible on a Linux workstation): Discord's
    leveldb token, Chrome/Edge ``Login Data`` + ``Local State``, Exodus, Atomic and
    Electrum wallets, Telegram ``tdata``. Text files go into *files*; returns the
    binary ones and the Windows pass's environment (HOME-relative, ``{home}``)."""
    profile = f".wine/drive_c/users/{user}"
    roaming, local = f"{profile}/AppData/Roaming", f"{profile}/AppData/Local"
    blobs: dict[str, bytes] = {}

    uid = str(r.randrange(10**17, 10**18))
    # 24.6.27: the classic shape, which both the old `[\w-]{24}\.[\w-]{6}\.[\w-]{27}`
    # grabbers and the newer, longer patterns take whole (a longer third part was cut
    # to 27 by the old ones, and the sent prefix was no canary)
    token = canary(
        "discord token",
        base64.b64encode(uid.encode()).decode().rstrip("=")
        + "."
        + _rand(r, _ALNUM + "-_", 6)
        + "."
        + _rand(r, _ALNUM + "-_", 27),
        f"~/{roaming}/discord/Local Storage/leveldb/000005.ldb",
    )
    # Discord (like Chromium) keeps its tokens encrypted since 2022: "dQw4w9WgXcQ:" +
    # base64(v10 blob) under the key in discord/Local State; grabbers decrypt that copy
    # (the Windows pass's DPAPI stub unwraps the key), so it holds the same canary
    key = r.randbytes(32)
    enc_key = canary(
        "Discord os_crypt key",
        base64.b64encode(b"DPAPI" + b"\x01\x00\x00\x00\xd0\x8c\x9d\xdf" + key).decode(),
        f"~/{roaming}/discord/Local State",
    )
    files[f"{roaming}/discord/Local State"] = json.dumps({"os_crypt": {"encrypted_key": enc_key}})
    encrypted = "dQw4w9WgXcQ:" + base64.b64encode(_v10(r, key, token)).decode()
    leveldb = f"{roaming}/discord/Local Storage/leveldb"
    blobs[f"{leveldb}/000005.ldb"] = (
        b"\x00\x01_https://discord.com\x00\x01token\x01\x00"
        + f'"{token}"'.encode()
        + b"\x00\n\x00\x01_https://discord.com\x00\x01tokens\x01\x00"
        + f'{{"{uid}":"{encrypted}"}}'.encode()
        + b"\x00\n"
        + r.randbytes(64)
    )
    files[f"{leveldb}/CURRENT"] = "MANIFEST-000004\n"
    files[f"{leveldb}/LOG"] = "2026/11/02-09:14:07.113 4f1c Recovering log #3\n"

    for browser, vendor in (("Chrome", "Google"), ("Edge", "Microsoft")):
        base = f"{local}/{vendor}/{browser}/User Data"
        key = r.randbytes(32)
        enc_key = canary(
            f"{browser} os_crypt key",
            base64.b64encode(b"DPAPI" + b"\x01\x00\x00\x00\xd0\x8c\x9d\xdf" + key).decode(),
            f"~/{base}/Local State",
        )
        files[f"{base}/Local State"] = json.dumps(
            {"os_crypt": {"encrypted_key": enc_key}, "profile": {"last_used": "Default"}}
        )
        # The pre-v80 format: the password is a DPAPI blob, which the Windows pass's
        # CryptUnprotectData stub returns as is, so the "decrypted" password is the canary.
        password = canary(f"{browser} saved password", _rand(r, _ALNUM, 20), f"~/{base}/Default/Login Data")
        rows = [
            (
                f"https://accounts.{r.choice(['example.com', 'example.org'])}/",
                f"{user}@example.com",
                password.encode(),
            ),
            (
                "https://github.com/session",
                user,
                _v10(r, key, password),  # the same canary: sent decrypted, it is found
            ),
        ]
        blobs[f"{base}/Default/Login Data"] = _login_data(rows)

    seed = canary("Exodus seed", _rand(r, _B64, 44), f"~/{roaming}/Exodus/exodus.wallet/seed.seco")
    blobs[f"{roaming}/Exodus/exodus.wallet/seed.seco"] = (
        b"SECO\x00\x00\x00\x01" + seed.encode() + r.randbytes(96)
    )
    files[f"{roaming}/Exodus/exodus.wallet/passphrase.json"] = json.dumps({"passphrase": None}) + "\n"
    atomic = canary(
        "Atomic wallet", _rand(r, _ALNUM, 48), f"~/{roaming}/atomic/Local Storage/leveldb/000003.log"
    )
    blobs[f"{roaming}/atomic/Local Storage/leveldb/000003.log"] = (
        b"\x00_file://\x00\x01general_mnemonic\x01" + atomic.encode() + r.randbytes(32)
    )
    xprv = canary(
        "Electrum (Windows) xprv",
        "xprv9s21ZrQH143K" + _rand(r, _B58, 95),
        f"~/{roaming}/Electrum/wallets/default_wallet",
    )
    files[f"{roaming}/Electrum/wallets/default_wallet"] = (
        json.dumps(
            {"keystore": {"type": "bip32", "xprv": xprv}, "wallet_type": "standard", "seed_version": 18}
        )
        + "\n"
    )
    tdata = f"{roaming}/Telegram Desktop/tdata"
    tg = canary("Telegram tdata key", _rand(r, _ALNUM, 32), f"~/{tdata}/key_datas")
    blobs[f"{tdata}/key_datas"] = b"TDF$\x8f\x2c\x00\x00" + tg.encode() + r.randbytes(64)
    blobs[f"{tdata}/D877F783D5D3EF8C/maps"] = b"TDF$\x8f\x2c\x00\x00" + r.randbytes(128)

    computer = "DESKTOP-" + _rand(r, string.ascii_uppercase + string.digits, 7)
    env = {
        "USERPROFILE": "{home}/" + profile,
        "APPDATA": "{home}/" + roaming,
        "LOCALAPPDATA": "{home}/" + local,
        "TEMP": "{home}/" + local + "/Temp",
        "TMP": "{home}/" + local + "/Temp",
        "USERNAME": user,
        "COMPUTERNAME": computer,
        "HOMEDRIVE": "C:",
        "HOMEPATH": f"\\Users\\{user}",
        "OS": "Windows_NT",
        "PROGRAMFILES": "C:\\Program Files",
        "SYSTEMROOT": "C:\\Windows",
        "WINDIR": "C:\\Windows",
    }
    return blobs, env


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class CanaryMatch:
    """A canary found in some bytes."""

    canary: Canary
    encoding: str  # how it was encoded, outermost first: "base64", "gzip>base64", "hex (dns labels)" …
    offset: int  # in the view it was found in (the raw bytes when ``encoding`` has no ">")
    excerpt: str  # the bytes around it, escaped


MIN_B64_FRAGMENT = 12  # shorter aligned fragments could occur by chance
MAX_VIEWS = 256
MAX_VIEW_BYTES = 8 << 20
MAX_DEPTH = 3


def _b64_fragments(value: bytes, alphabet_urlsafe: bool) -> list[str]:
    """The part of base64(value) fixed by *value* alone, for each of the 3 alignments.

    With *a* unknown bytes before the value, base64 characters ``[ceil(8a/6),
    floor(8(a+n)/6))`` depend on the value's bits only.
    """
    out = []
    n = len(value)
    for a in range(3):
        enc = base64.b64encode(b"\0" * a + value + b"\0\0").decode()
        start = -(-8 * a // 6)
        end = (8 * (a + n)) // 6
        frag = enc[start:end]
        if alphabet_urlsafe:
            frag = frag.replace("+", "-").replace("/", "_")
        if len(frag) >= MIN_B64_FRAGMENT:
            out.append(frag)
    return out


def _b32_fragments(value: bytes) -> list[str]:
    """Like :func:`_b64_fragments` for base32 (5 alignments), lower case."""
    out = []
    n = len(value)
    for a in range(5):
        enc = base64.b32encode(b"\0" * a + value + b"\0" * 5).decode().lower()
        start = -(-8 * a // 5)
        end = (8 * (a + n)) // 5
        frag = enc[start:end]
        if len(frag) >= MIN_B64_FRAGMENT:
            out.append(frag)
    return out


@dataclass
class _Needles:
    exact: list[tuple[bytes, str]] = field(default_factory=list)  # case-sensitive
    folded: list[tuple[bytes, str]] = field(default_factory=list)  # searched in lower-cased bytes


def _needles(c: Canary) -> _Needles:
    v = c.value.encode()
    n = _Needles()
    n.exact.append((v, "plain"))
    for frag in _b64_fragments(v, False):
        n.exact.append((frag.encode(), "base64"))
    for frag in _b64_fragments(v, True):
        n.exact.append((frag.encode(), "base64url"))
    n.folded.append((v.lower(), "plain (case-folded)"))
    n.folded.append((v.hex().encode(), "hex"))
    for frag in _b32_fragments(v):
        n.folded.append((frag.encode(), "base32"))
    for enc in {quote(c.value, safe=""), quote_plus(c.value)}:
        if enc != c.value:
            n.folded.append((enc.lower().encode(), "url-encoded"))
    return n


_B64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RUN = re.compile(rb"(?:[0-9a-fA-F]{2}){12,}")
# Byte values in decimal, one separator apart (``115.107.95.108/105.118…``: a version-
# or address-looking path segment, a list in a header): 12 bytes at least.
_BYTE = rb"(?:25[0-5]|2[0-4]\d|1\d\d|\d\d?)"
_DEC_RUN = re.compile(rb"(?<!\d)(?:" + _BYTE + rb"[./,;:_ -]){11,}" + _BYTE + rb"(?!\d)")
_DEC_SEP = re.compile(rb"[./,;:_ -]")
_B32_RUN = re.compile(rb"[A-Za-z2-7]{16,}={0,6}")
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\x78\x01", "zlib"),
    (b"\x78\x5e", "zlib"),
    (b"\x78\x9c", "zlib"),
    (b"\x78\xda", "zlib"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
)


def _decompress(data: bytes, kind: str, limit: int) -> bytes | None:
    try:
        if kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, limit)
        if kind == "zlib":
            return zlib.decompressobj().decompress(data, limit)
        if kind == "bz2":
            return bz2.BZ2Decompressor().decompress(data, limit)
        if kind == "xz":
            return lzma.LZMADecompressor().decompress(data, limit)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return None
    return None


def _b64_decode(run: bytes) -> bytes | None:
    text = run.rstrip(b"=")
    text = text[: len(text) - len(text) % 4] if len(text) % 4 == 1 else text
    padded = text + b"=" * (-len(text) % 4)
    try:
        if b"-" in padded or b"_" in padded:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded)
    except (binascii.Error, ValueError):
        return None


def _b32_decode(run: bytes) -> bytes | None:
    text = run.rstrip(b"=").upper()
    text = text[: len(text) - len(text) % 8] if len(text) % 8 in (1, 3, 6) else text
    try:
        return base64.b32decode(text + b"=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None


def derived_views(data: bytes, depth: int = MAX_DEPTH) -> list[tuple[str, bytes]]:
    """*data* and what it decodes to: URL/JSON unescaping, base64/base32/hex runs,
    compressed streams (at each magic number), nested up to *depth* levels; bounded
    in count and bytes. Each view is named by its chain of decodings."""
    views: list[tuple[str, bytes]] = [("", data)]
    seen = {data}
    total = len(data)
    i = 0
    while i < len(views) and len(views) < MAX_VIEWS:
        name, view = views[i]
        i += 1
        if name.count(">") + (1 if name else 0) >= depth:
            continue
        found: list[tuple[str, bytes]] = []
        if b"%" in view or b"+" in view:
            found.append(("url", unquote_to_bytes(view.replace(b"+", b" "))))
        if b"\\" in view:
            found.append(("json", view.replace(b"\\/", b"/").replace(b"\\n", b"\n").replace(b'\\"', b'"')))
        for magic, kind in _MAGIC:
            start = view.find(magic)
            hits = 0
            while start >= 0 and hits < 4:
                out = _decompress(view[start:], kind, MAX_VIEW_BYTES)
                if out:
                    found.append((kind, out))
                hits += 1
                start = view.find(magic, start + 1)
        for rx, kind, dec in ((_B64_RUN, "base64", _b64_decode), (_B32_RUN, "base32", _b32_decode)):
            for m in list(rx.finditer(view))[:32]:
                out = dec(m.group(0))
                if out and len(out) >= 8:
                    found.append((kind, out))
        for m in list(_HEX_RUN.finditer(view))[:32]:
            with contextlib.suppress(ValueError):
                found.append(("hex", bytes.fromhex(m.group(0).decode())))
        for m in list(_DEC_RUN.finditer(view))[:32]:
            found.append(("decimal bytes", bytes(int(x) for x in _DEC_SEP.split(m.group(0)))))
        for kind, out in found:
            if out in seen or total + len(out) > MAX_VIEW_BYTES * 4:
                continue
            seen.add(out)
            total += len(out)
            views.append((f"{name}>{kind}" if name else kind, out))
            if len(views) >= MAX_VIEWS:
                break
    return views


def _excerpt(data: bytes, at: int, n: int) -> str:
    lo, hi = max(0, at - 24), min(len(data), at + n + 24)
    return data[lo:hi].decode("latin-1").encode("unicode_escape").decode("ascii")[:240]


class CanaryMatcher:
    """Finds the canaries of a :class:`HoneytokenSet` in captured bytes."""

    def __init__(self, canaries: Sequence[Canary]) -> None:
        self.canaries = tuple(c for c in canaries if len(c.value) >= 16)
        self._needles = [(c, _needles(c)) for c in self.canaries]

    def search(self, data: bytes, *, decode: bool = True) -> list[CanaryMatch]:
        """Every canary in *data* or in what it decodes to (one match per canary: the
        most direct encoding wins)."""
        if not self.canaries or not data:
            return []
        found: dict[str, CanaryMatch] = {}
        for view_name, view in derived_views(data) if decode else [("", data)]:
            lowered = view.lower()
            for c, needles in self._needles:
                if c.value in found:
                    continue
                for needle, enc in needles.exact:
                    at = view.find(needle)
                    if at >= 0:
                        found[c.value] = CanaryMatch(
                            c, _chain(view_name, enc), at, _excerpt(view, at, len(needle))
                        )
                        break
                else:
                    for needle, enc in needles.folded:
                        at = lowered.find(needle)
                        if at >= 0:
                            found[c.value] = CanaryMatch(
                                c, _chain(view_name, enc), at, _excerpt(view, at, len(needle))
                            )
                            break
            if len(found) == len(self.canaries):
                break
        return list(found.values())

    def search_dns(self, names: Sequence[str]) -> list[tuple[CanaryMatch, tuple[int, ...]]]:
        """Canaries in query names, in order; each match names the queries it spans.

        Exfiltration over DNS puts encoded data in the labels left of the domain it
        controls, split at arbitrary points, often over several queries, sometimes
        with a sequence number label. The streams tried: each name's data labels
        joined; and, per domain, all its queries' data labels concatenated in
        order, as they are, without the first label, and without labels that are
        short decimal numbers.
        """
        out: list[tuple[CanaryMatch, tuple[int, ...]]] = []
        done: set[str] = set()
        for text, idx in dns_streams(names):
            for m in self.search(text.encode(), decode=True):
                if m.canary.value in done:
                    continue
                done.add(m.canary.value)
                out.append((CanaryMatch(m.canary, f"{m.encoding} (dns labels)", m.offset, m.excerpt), idx))
        return out


def _chain(view: str, enc: str) -> str:
    """How the canary was wrapped, outermost first: the decodings that led to the
    view (``base64>gzip``: base64 of gzip'd data), then the needle's own encoding."""
    if not view:
        return enc
    steps = view.split(">")
    return ">".join([*steps, enc]) if enc != "plain" else ">".join(steps)


def _split_name(name: str) -> tuple[list[str], str]:
    labels = [lb for lb in name.rstrip(".").split(".") if lb]
    if len(labels) <= 2:
        return [], ".".join(labels)
    return labels[:-2], ".".join(labels[-2:])


_DECIMAL = re.compile(r"^\d{1,4}$")


def dns_streams(names: Sequence[str]) -> list[tuple[str, tuple[int, ...]]]:
    """Candidate data streams in a sequence of query names (see :meth:`CanaryMatcher.search_dns`)."""
    streams: list[tuple[str, tuple[int, ...]]] = []
    by_domain: dict[str, list[tuple[int, list[str]]]] = {}
    for i, name in enumerate(names):
        data, domain = _split_name(name)
        if not data:
            continue
        seq = by_domain.setdefault(domain, [])
        if seq and seq[-1][1] == data:
            continue  # A and AAAA (or a retry) of the same name: once
        seq.append((i, data))
        streams.append(("".join(data), (i,)))
    for seq in by_domain.values():
        if len(seq) < 2:
            continue
        idx = tuple(i for i, _ in seq)
        variants = (
            "".join("".join(d) for _, d in seq),
            "".join("".join(d[1:]) for _, d in seq),
            "".join("".join(lb for lb in d if not _DECIMAL.match(lb)) for _, d in seq),
        )
        for v in dict.fromkeys(variants):
            if v:
                streams.append((v, idx))
    return streams


# Request fields an encoded secret is split across: separators dropped, pieces joined in
# order (alphanumerics only for hex/base32/plain; the base64 alphabets kept for base64).
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
_NOT_B64 = re.compile(r"[^A-Za-z0-9+/=_-]")
_STANDARD_HEADERS = frozenset(
    {"host", "accept", "accept-encoding", "accept-language", "connection", "user-agent", "cache-control"}
)


def _unshared(values: list[str]) -> list[str]:
    """*values* without the prefix and suffix they all share (``Mozilla/5.0 (…)``)."""

    def shared(vs: list[str]) -> int:
        n = min(len(v) for v in vs)
        return next((i for i in range(n) if len({v[i] for v in vs}) > 1), n)

    pre = shared(values)
    suf = shared([v[pre:][::-1] for v in values])
    return [v[pre : len(v) - suf] for v in values]


def _pieces(paths: list[list[str]]) -> tuple[list[str], list[str]]:
    """One piece per fetch: the segments of *paths* (in order) without those every fetch
    repeats; and also without a sequence number (a position decimal in every fetch)."""
    if len({len(p) for p in paths}) != 1:
        fixed = set.intersection(*(set(p) for p in paths))
        varying = [s for p in paths for s in p if s not in fixed]
        return varying, varying
    cols = list(zip(*paths, strict=True))
    keep = [len(set(col)) > 1 for col in cols]
    counter = [all(_DECIMAL.match(x) for x in col) for col in cols]
    varying = [s for p in paths for i, s in enumerate(p) if keep[i]]
    return varying, [s for p in paths for i, s in enumerate(p) if keep[i] and not counter[i]]


def joined_fields(requests: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> bytes:
    """The streams a secret split across the parts of HTTP requests (``(target,
    headers)``, in order) would form again: path segments, each header value, the
    non-standard header values, all joined with their separators (``.``, ``/``,
    ``-``, spaces) dropped, per request and across the requests given.  Like DNS
    labels: ``/cdn/4a6f686e2053/6d697468206b/…``, UUID-shaped ``X-*-Id`` headers or a
    User-Agent of spaced hex chunks hide the hex of a canary from a search of the raw
    bytes.  Streams are newline-separated so that none joins another."""
    streams: list[list[str]] = []
    all_targets: list[str] = []
    all_extra: list[str] = []
    for target, headers in requests:
        segs = [s for s in re.split(r"[/?&=#;]", target) if s]
        extra = [v for k, v in headers if k.lower() not in _STANDARD_HEADERS]
        streams += [segs, [v for _, v in headers], extra, *[[v] for _, v in headers]]
        all_targets += segs
        all_extra += extra
    if len(requests) > 1:
        varying, unnumbered = _pieces([[s for s in re.split(r"[/?&=#;]", t) if s] for t, _ in requests])
        by_name: dict[str, list[str]] = {}
        for _, headers in requests:
            for k, v in headers:
                by_name.setdefault(k.lower(), []).append(v)
        streams += [all_targets, all_extra, varying, unnumbered]
        streams += [_unshared([t for t, _ in requests])]
        streams += [_unshared(vs) for vs in by_name.values() if len(set(vs)) > 1]
    out: list[str] = [t for t, _ in requests]  # as sent too (decimal bytes need their separators)
    out += [v for _, headers in requests for _, v in headers]
    for parts in streams:
        for rx in (_NOT_ALNUM, _NOT_B64):
            joined = "".join(rx.sub("", p) for p in parts)
            if len(joined) >= 16:
                out.append(joined)
    return "\n".join(dict.fromkeys(out)).encode("utf-8", "replace")


def names_value(value: str, requests: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> bool:
    """Whether the fields of *requests* (``(target, headers)``) carry *value* (a
    short fact of the sandbox, like its host name, that is no canary): plainly,
    case-folded or in hex, base32 or base64 (every alignment), whole or split across
    the fields as :func:`joined_fields` joins them."""
    if len(value) < 4:
        return False
    raw = "\n".join(f"{t}\n" + "\n".join(v for _, v in hs) for t, hs in requests).encode("utf-8", "replace")
    hay = raw + b"\n" + joined_fields(requests)
    needles = _needles(Canary("value", value, ""))
    low = hay.lower()
    return any(n in hay for n, _ in needles.exact) or any(n in low for n, _ in needles.folded)


def find_canaries(data: bytes, canaries: Iterable[Canary]) -> list[CanaryMatch]:
    """Convenience: :meth:`CanaryMatcher.search` with a throw-away matcher."""
    return CanaryMatcher(list(canaries)).search(data)
