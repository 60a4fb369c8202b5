"""Quota settings: a default, a window, and per-org overrides from the environment."""

from __future__ import annotations

import pytest

from services.backend.config import quota_policy
from services.settings import load_settings


def test_without_settings_no_org_has_a_limit() -> None:
    policy = quota_policy(load_settings({}))

    assert policy.limit_for("org-a") is None and policy.window_seconds == 24 * 3600


def test_overrides_replace_the_default_for_their_org_only() -> None:
    settings = load_settings({
        "IMAGE_BUILDER_QUOTA_COMPOSES": "10",
        "IMAGE_BUILDER_QUOTA_WINDOW_SECONDS": "3600",
        "IMAGE_BUILDER_QUOTA_OVERRIDES": "org-a=100, org-b=0,org-c=unlimited",
    })  # fmt: skip
    policy = quota_policy(settings)

    assert [policy.limit_for(org) for org in ("org-a", "org-b", "org-c", "org-d")] == [100, 0, None, 10]
    assert policy.window_seconds == 3600


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IMAGE_BUILDER_QUOTA_COMPOSES", "many"),
        ("IMAGE_BUILDER_QUOTA_WINDOW_SECONDS", "0"),
        ("IMAGE_BUILDER_QUOTA_OVERRIDES", "org-a"),
        ("IMAGE_BUILDER_QUOTA_OVERRIDES", "org-a=-1"),
    ],
)
def test_a_malformed_quota_setting_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        load_settings({name: value})
