"""Rule fixes the benign corpus demanded (issue 12), each with its hostile twin."""

from __future__ import annotations

import pytest

from sandbox.judge.rules import evaluate
from sandbox.models import Address, EventKind, Severity
from tests.unit.test_rules import ev, obs

GCLOUD = "/home/dev/.config/gcloud"


@pytest.mark.parametrize("leaf", ["certificate_config.json", "properties", "configurations/config_default"])
def test_probing_gcloud_config_files_that_hold_no_secret_is_no_finding(leaf: str) -> None:
    """Google client libraries stat certificate_config.json at import (mTLS discovery)."""
    o = obs([ev(EventKind.FILE_STAT, "newfstatat", path=f"{GCLOUD}/{leaf}", errno="ENOENT")])
    assert not [f for f in evaluate(o) if f.rule_id == "PS001"]


@pytest.mark.parametrize(
    "path",
    [
        GCLOUD,
        f"{GCLOUD}/credentials.db",
        f"{GCLOUD}/access_tokens.db",
        f"{GCLOUD}/application_default_credentials.json",
        f"{GCLOUD}/legacy_credentials",
        f"{GCLOUD}/legacy_credentials/dev@example.invalid/adc.json",
    ],
)
def test_gcloud_secrets_and_the_directory_listing_stay_credential_access(path: str) -> None:
    kind = EventKind.FILE_LIST if path == GCLOUD else EventKind.FILE_READ
    fs = [f for f in evaluate(obs([ev(kind, "openat", path=path)])) if f.rule_id == "PS001"]
    assert [f.severity for f in fs] == [Severity.MEDIUM], path


SPIFFE = "/var/run/secrets/workload-spiffe-credentials/x509.credential-bundle.private-key.pem"


def test_an_existence_check_that_finds_nothing_is_low() -> None:
    """google-auth stats the GKE workload-identity key at import: nothing there, nothing taken."""
    fs = [f for f in evaluate(obs([ev(EventKind.FILE_STAT, "newfstatat", path=SPIFFE, errno="ENOENT")]))]
    assert [(f.rule_id, f.severity) for f in fs] == [("PS001", Severity.LOW)]
    assert "probed for absent" in fs[0].message


@pytest.mark.parametrize(
    "kind,syscall,errno",
    [
        (EventKind.FILE_READ, "openat", "ENOENT"),  # trying to open is more than a probe
        (EventKind.FILE_STAT, "newfstatat", "EACCES"),
    ],
)
def test_other_touches_stay_medium(kind: EventKind, syscall: str, errno: str | None) -> None:
    fs = [f for f in evaluate(obs([ev(kind, syscall, path=SPIFFE, errno=errno)])) if f.rule_id == "PS001"]
    assert [f.severity for f in fs] == [Severity.MEDIUM]


def test_a_stat_of_an_existing_one_with_nothing_read_is_low_and_a_read_after_it_medium() -> None:
    """A CLI walking HOME stats every entry (~/.aws, ~/.ssh …: a top-1000 environment
    manager's --help); nothing of them opened, listed or changed is their size and times."""
    key = "/home/dev/.ssh/id_rsa"
    stat = ev(EventKind.FILE_STAT, "newfstatat", path="/home/dev/.ssh", seq=1)
    fs = [f for f in evaluate(obs([stat])) if f.rule_id == "PS001"]
    assert [f.severity for f in fs] == [Severity.LOW] and "only checked" in fs[0].message
    read = ev(EventKind.FILE_READ, "openat", path=key, seq=2)
    fs = [f for f in evaluate(obs([stat, read])) if f.rule_id == "PS001"]
    assert [f.severity for f in fs] == [Severity.MEDIUM], [(f.severity, f.message) for f in fs]


def test_a_probe_in_a_run_that_reaches_out_is_high() -> None:
    from sandbox.models import Address

    o = obs(
        [
            ev(EventKind.FILE_STAT, "newfstatat", path=SPIFFE, errno="ENOENT", seq=1),
            ev(
                EventKind.CONNECT,
                "connect",
                seq=2,
                address=Address(family="inet", host="192.0.2.7", port=443),
                errno="ENETUNREACH",
            ),
        ]
    )
    fs = [f for f in evaluate(o) if f.rule_id == "PS001"]
    assert [f.severity for f in fs] == [Severity.HIGH]


def test_a_dotenv_loaded_at_import_with_nothing_sent_is_low() -> None:
    """load_dotenv() at module level (langchain-community, tensorflow): the project's .env
    read at import, nothing reached out: LOW. A cloud credential at import, or any
    network in the pass, keeps it MEDIUM or more."""
    dotenv = ev(EventKind.FILE_READ, "openat", path="/home/dev/project/.env")
    fs = [f for f in evaluate(obs([dotenv])) if f.rule_id == "PS001"]
    assert [f.severity for f in fs] == [Severity.LOW] and "by a library at import" in fs[0].message
    config = ev(EventKind.FILE_READ, "openat", path="/home/dev/.aws/config", seq=2)
    fs = [f for f in evaluate(obs([dotenv, config])) if f.rule_id == "PS001"]
    assert [f.severity for f in fs] == [Severity.LOW]
    aws = ev(EventKind.FILE_READ, "openat", path="/home/dev/.aws/credentials", seq=2)
    fs = [f for f in evaluate(obs([dotenv, aws])) if f.rule_id == "PS001"]
    assert [f.severity for f in fs] == [Severity.MEDIUM]
    sent = ev(EventKind.CONNECT, "connect", seq=3, address=Address(family="inet", host="192.0.2.7", port=443))
    fs = [f for f in evaluate(obs([dotenv, sent])) if f.rule_id == "PS001"]
    assert fs and all(f.severity is not Severity.LOW for f in fs)
