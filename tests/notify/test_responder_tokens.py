"""A responder's link token opens its one subject until it expires; anything
forged, altered, expired or malformed is refused with its reason, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.errors import TokenRefused
from hub.responder_tokens import ResponderTokens

NOW = datetime(2026, 7, 18, 11, 0, tzinfo=UTC)
KEY = b"responder-token-key-0123456789"
SUBJECT = "d-7Hq2xZ9kLm"


def test_a_token_opens_its_subject_until_it_expires() -> None:
    tokens = ResponderTokens(KEY)
    token = tokens.mint(SUBJECT, NOW + timedelta(hours=6))
    assert SUBJECT == tokens.read(token, NOW)
    assert SUBJECT == tokens.read(token, NOW + timedelta(hours=5, minutes=59))
    with pytest.raises(TokenRefused, match="expired"):
        tokens.read(token, NOW + timedelta(hours=6))


def test_a_token_is_short_enough_for_a_text_message() -> None:
    token = ResponderTokens(KEY).mint(SUBJECT, NOW + timedelta(hours=6))
    assert len(token) <= len(SUBJECT) + 32


def test_a_token_survives_a_restart_with_the_same_key_and_dies_with_another() -> None:
    token = ResponderTokens(KEY).mint(SUBJECT, NOW + timedelta(hours=1))
    assert SUBJECT == ResponderTokens(KEY).read(token, NOW)
    with pytest.raises(TokenRefused, match="bad signature"):
        ResponderTokens(b"another-key-0123456789abcdef").read(token, NOW)


def test_another_subject_or_a_later_expiry_under_the_same_signature_is_refused() -> None:
    tokens = ResponderTokens(KEY)
    subject, stamp, mac = tokens.mint(SUBJECT, NOW + timedelta(hours=1)).split(".")
    later = tokens.mint(SUBJECT, NOW + timedelta(days=30)).split(".")[1]
    for forged in (f"d-OtherAlarm1.{stamp}.{mac}", f"{subject}.{later}.{mac}"):
        with pytest.raises(TokenRefused, match="bad signature"):
            tokens.read(forged, NOW)


@given(st.text(max_size=300))
def test_any_text_is_a_subject_or_a_refusal(text: str) -> None:
    tokens = ResponderTokens(KEY)
    try:
        subject = tokens.read(text, NOW)
    except TokenRefused:
        return
    assert tokens.mint(subject, NOW + timedelta(hours=1))


@pytest.mark.parametrize("subject", ["short", "has.dot.inside", "x" * 65, "空格 subject"])
def test_a_subject_that_would_not_fit_a_link_is_not_minted(subject: str) -> None:
    with pytest.raises(ValueError, match="subject"):
        ResponderTokens(KEY).mint(subject, NOW)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        ResponderTokens(b"short")
