"""Rule fixes the benign corpus demanded (issue 12), each with its hostile twin."""

from __future__ import annotations

import pytest

from sandbox.judge.rules import evaluate
from sandbox.models import EventKind, Severity
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
