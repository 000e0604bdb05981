"""Honeytokens: per-run credentials that look real and are unique (pure code, host side).

:func:`make_honeytokens` generates the environment variables and files a developer's
HOME holds (and, for the extra passes, a Windows profile's and a CI job's); each
carries one or more *canaries*: high-entropy strings that appear nowhere else, which
:mod:`sandbox.judge.canary` then looks for in captured outbound bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import secrets
import sqlite3
import string
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.judge import aesgcm
from sandbox.judge.cienv import ci_env


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
    # the secrets pass's variables: the env honeytokens redrawn (same names and formats,
    # canaries too): what a phase sends that follows them carries them, however encoded
    redrawn_env: dict[str, str] = field(default_factory=dict)
    # secrets the execute phase's caller hands parameters and attributes named like one
    # (``private_key`` → "hex", ``password``/``access_key_secret`` → "text"): a call that
    # sends one to a host it was not handed is PS032
    handed: dict[str, str] = field(default_factory=dict)

    def plan(self) -> dict[str, object]:
        """The plan keys the agent reads (``env`` of the candidate, ``home_files``,
        ``home_blobs`` base64-encoded)."""
        return {
            "env": dict(self.env),
            "home_files": dict(self.files),
            "home_blobs": {rel: base64.b64encode(data).decode() for rel, data in self.blobs.items()},
            "call_secrets": dict(self.handed),
        }

    def paths(self, home: str) -> dict[str, str]:
        """Absolute path of every planted file → its ``~/`` form."""
        return {f"{home.rstrip('/')}/{rel}": f"~/{rel}" for rel in [*self.files, *self.blobs]}


# where the execute phase's handed secrets were "planted": the arguments of a call
HANDED = "an argument of a call"

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

    env = _env_tokens(r, env_canary)
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
    # drawn last: the values above stay what a seeded rng always gave
    redrawn = _env_tokens(r, lambda name, value: canary(name, value, f"env {name} (redrawn)"))
    handed = {
        "hex": canary("secret handed to a call (hex key)", _rand(r, "0123456789abcdef", 64), HANDED),
        "text": canary("secret handed to a call (password or token)", _rand(r, _ALNUM, 40), HANDED),
    }
    blobs.update(_linux_desktop(r, user, canary, files))
    return HoneytokenSet(
        env=env,
        files=files,
        canaries=tuple(canaries),
        blobs=blobs,
        windows_env=win_env,
        ci_env=ci,
        ci_files=tuple(ci_files),
        redrawn_env=redrawn,
        handed=handed,
    )


# The services each environment key (and the Windows pass's Discord token) logs in to:
# the registrable domains its own clients send it to. Such a key in an authentication
# header to one of them, during a call we made, is a client logging in (litellm's
# ``Authorization: Bearer $OPENAI_API_KEY`` to api.openai.com); to any other host it is
# a key sent away (netcapture's auth-only context is only granted here).
SERVICE_DOMAINS: dict[str, tuple[str, ...]] = {
    "AWS_ACCESS_KEY_ID": ("amazonaws.com", "amazonaws.com.cn", "api.aws"),
    # SigV4 sends the key id and a signature, never the secret: in a header to any host
    # (an attacker's API gateway or bucket is under amazonaws.com too) it was sent away
    "AWS_SECRET_ACCESS_KEY": (),
    "GITHUB_TOKEN": ("github.com", "githubusercontent.com", "ghcr.io"),
    # not openai.azure.com: its subdomains are whoever's resource names (Azure clients
    # read their own AZURE_OPENAI_API_KEY)
    "OPENAI_API_KEY": ("openai.com",),
    "ANTHROPIC_API_KEY": ("anthropic.com",),
    "HF_TOKEN": ("huggingface.co", "hf.co"),
    "NPM_TOKEN": ("npmjs.org", "npmjs.com"),
    "discord token": ("discord.com", "discordapp.com"),
}


def logs_in_to(canary_name: str, host: str | None, handed_hosts: frozenset[str] = frozenset()) -> bool:
    """Whether a key sent in an authentication header to *host* is its client logging in:
    the host is one of the key's services (or a host the call was handed, a client
    pointed at our made-up URL). A key with no known service keeps the benefit of the
    doubt; an unnamed host does not."""
    domains = SERVICE_DOMAINS.get(canary_name)
    if domains is None:
        return True
    name = bare_host(host)
    if not name:
        return False
    return name in handed_hosts or any(name == d or name.endswith("." + d) for d in domains)


def bare_host(host: str | None) -> str:
    """A captured host (SNI, Host header, DNS name) as a name: lower case, no trailing
    dot, no port ("" for none or a bracketed IPv6 literal)."""
    if not host or host.startswith("["):
        return ""
    return host.lower().rstrip(".").split(":", 1)[0]


def _env_tokens(r: random.Random, env_canary: Callable[[str, str], str]) -> dict[str, str]:
    """The environment's honeytokens (each registered through *env_canary*)."""
    return {
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


def _v10(r: random.Random, key: bytes, password: str) -> bytes:
    """Chromium's v80+ password blob: ``v10`` + nonce + AES-256-GCM(key) + tag, so a
    stealer holding the Local State key (the Windows pass's DPAPI stub unwraps it)
    decrypts the canary instead of failing on noise."""
    nonce = r.randbytes(12)
    ciphertext, tag = aesgcm.encrypt(key, nonce, password.encode())
    return b"v10" + nonce + ciphertext + tag


def _v10_linux(password: str) -> bytes:
    """Chromium's password blob on a Linux desktop with no keyring: ``v10`` +
    AES-128-CBC under PBKDF2-SHA1("peanuts", "saltysalt", 1 round), IV of 16 spaces: the
    key every Linux stealer knows, so it decrypts the canary."""
    key = hashlib.pbkdf2_hmac("sha1", b"peanuts", b"saltysalt", 1, 16)
    return b"v10" + aesgcm.cbc_encrypt(key, b" " * 16, password.encode())


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


def _discord_token(r: random.Random) -> tuple[str, str]:
    """A Discord user id and token of the classic shape (base64 id . 6 . 27), which both
    the old ``[\\w-]{24}\\.[\\w-]{6}\\.[\\w-]{27}`` grabbers and the newer, longer
    patterns take whole (a longer third part was cut to 27 by the old ones, and the
    sent prefix was no canary)."""
    uid = str(r.randrange(10**17, 10**18))
    token = (
        base64.b64encode(uid.encode()).decode().rstrip("=")
        + "."
        + _rand(r, _ALNUM + "-_", 6)
        + "."
        + _rand(r, _ALNUM + "-_", 27)
    )
    return uid, token


def _leveldb_token(token: str) -> bytes:
    """A Discord ``Local Storage/leveldb`` table entry holding *token* in clear."""
    return b"\x00\x01_https://discord.com\x00\x01token\x01\x00" + f'"{token}"'.encode() + b"\x00\n"


def _linux_desktop(
    r: random.Random, user: str, canary: Callable[[str, str, str], str], files: dict[str, str]
) -> dict[str, bytes]:
    """What the Linux desktop clients a developer runs keep in HOME and stealers look
    for there: Telegram Desktop's ``tdata`` (a session: whoever copies it is logged in),
    Discord's token store and Chrome's saved passwords, where the native clients keep
    them. Text files go into *files*; returns the binary ones."""
    blobs: dict[str, bytes] = {}
    chrome = ".config/google-chrome"
    password = canary("Chrome (Linux) saved password", _rand(r, _ALNUM, 20), f"~/{chrome}/Default/Login Data")
    site = f"https://accounts.{r.choice(['example.com', 'example.org'])}/"
    # a row from before the profile's passwords were encrypted (Chromium's Linux "basic"
    # store once kept them in clear: a copy of the file sent as it is carries the canary)
    # and a v10 row, decrypting to the same canary
    rows = [
        (site, f"{user}@example.com", password.encode()),
        ("https://github.com/session", user, _v10_linux(password)),
    ]
    blobs[f"{chrome}/Default/Login Data"] = _login_data(rows)
    files[f"{chrome}/Local State"] = json.dumps({"profile": {"last_used": "Default"}}) + "\n"
    tdata = ".local/share/TelegramDesktop/tdata"
    tg = canary("Telegram tdata key (Linux)", _rand(r, _ALNUM, 32), f"~/{tdata}/key_datas")
    blobs[f"{tdata}/key_datas"] = b"TDF$\x8f\x2c\x00\x00" + tg.encode() + r.randbytes(64)
    blobs[f"{tdata}/D877F783D5D3EF8C/maps"] = b"TDF$\x8f\x2c\x00\x00" + r.randbytes(128)
    blobs[f"{tdata}/settingss"] = b"TDF$\x8f\x2c\x00\x00" + r.randbytes(96)
    leveldb = ".config/discord/Local Storage/leveldb"
    _uid, token = _discord_token(r)
    canary("discord token (Linux)", token, f"~/{leveldb}/000005.ldb")
    blobs[f"{leveldb}/000005.ldb"] = _leveldb_token(token) + r.randbytes(64)
    files[f"{leveldb}/CURRENT"] = "MANIFEST-000004\n"
    files[".config/discord/settings.json"] = json.dumps({"IS_MAXIMIZED": False, "IS_MINIMIZED": True}) + "\n"
    return blobs


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

    uid, token = _discord_token(r)
    canary("discord token", token, f"~/{roaming}/discord/Local Storage/leveldb/000005.ldb")
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
        _leveldb_token(token)
        + b"\x00\x01_https://discord.com\x00\x01tokens\x01\x00"
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
