from __future__ import annotations

import base64

import pytest

from appointments_gateway.upstream import (
    Credential,
    InvalidApiKey,
    InvalidBaseUrl,
    base_url_for_shard,
    is_cliniko_host,
    shard_from_api_key,
)
from appointments_gateway.upstream.credentials import MAX_API_KEY_CHARS


@pytest.mark.parametrize(
    ("key", "shard"),
    [
        ("abc123-au2", "au2"),
        ("abc123-uk1", "uk1"),
        ("abc123-eu1", "eu1"),
        ("abc123-au5", "au5"),  # undocumented but reported working
        ("abc123-AU3", "au3"),  # case-insensitive, normalised
        ("abc-def-ghi-ca1", "ca1"),  # hyphens in the key body: the LAST one counts
        ("abc123-au12", "au12"),
        ("abc123", "au1"),  # no suffix: the pre-shard default
    ],
)
def test_shard_from_api_key_uses_suffix_after_last_hyphen(key: str, shard: str) -> None:
    assert shard_from_api_key(key) == shard
    assert Credential(key).shard == shard
    assert Credential(key).api_root == f"https://api.{shard}.cliniko.com/v1"


@pytest.mark.parametrize(
    "key", ["abc-", "abc-au", "abc-au123", "abc-a1", "abc-notashard", "abc-au1x", "abc-au-1"]
)
def test_shard_suffix_that_is_not_a_shard_is_rejected(key: str) -> None:
    with pytest.raises(InvalidApiKey) as info:
        Credential(key)
    assert key not in str(info.value)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "has space-au1",
        "colon:key-au1",
        "line\nbreak",
        "nul\x00-au1",
        "del\x7f-au1",
        "non-ascii-kéy-au1",
        "nbsp\u00a0key-au1",
    ],
)
def test_unusable_keys_are_rejected(key: str) -> None:
    with pytest.raises(InvalidApiKey):
        Credential(key)
    with pytest.raises(InvalidApiKey):
        Credential(key, base_url="http://127.0.0.1:8911/v1")  # no shard needed there


def test_a_key_longer_than_any_cliniko_key_is_rejected_without_quoting_it() -> None:
    longest = "k" * (MAX_API_KEY_CHARS - 4) + "-au2"
    assert Credential(longest).shard == "au2"
    with pytest.raises(InvalidApiKey, match="longer than any Cliniko key") as info:
        Credential("k" + longest, base_url="http://127.0.0.1:8911/v1")
    assert "kkkk" not in str(info.value)


def test_explicit_base_url_wins_over_the_shard() -> None:
    credential = Credential("abc-au2", base_url="http://127.0.0.1:8080/v1/")
    assert credential.api_root == "http://127.0.0.1:8080/v1"
    assert credential.host == "127.0.0.1"
    assert credential.shard == "au2"
    assert not credential.is_cliniko


def test_from_api_key_is_the_constructor() -> None:
    assert Credential.from_api_key("abc-au2") == Credential("abc-au2")
    assert Credential.from_api_key("k", base_url="http://x.test/v1").api_root == "http://x.test/v1"


def test_explicit_base_url_accepts_keys_without_a_shard_suffix() -> None:
    credential = Credential("sandbox-demo-key", base_url="http://sandbox.test/v1")
    assert credential.shard is None
    assert credential.api_root == "http://sandbox.test/v1"


@pytest.mark.parametrize(
    "base_url",
    [
        "not a url",
        "ftp://example.com/v1",
        "/v1",
        "http://api.au1.cliniko.com/v1",  # key in clear text to the real service
        "https://user:pass@example.com/v1",
        "https://example.com/v1?x=1",
    ],
)
def test_bad_base_urls_are_rejected(base_url: str) -> None:
    with pytest.raises(InvalidBaseUrl):
        Credential("abc-au1", base_url=base_url)


def test_repr_and_str_hide_the_key() -> None:
    key = "SECRETKEYBODY-with-hyphens-au4"
    credential = Credential(key)
    for text in (repr(credential), str(credential), f"{credential}"):
        assert "SECRETKEYBODY" not in text
        assert "au4" in text
        assert credential.fingerprint[:12] in text
    assert "SECRETKEYBODY" not in credential.fingerprint
    assert "SECRETKEYBODY" not in credential.authorization  # base64, but never printed


def test_fingerprint_is_stable_and_distinguishes_keys() -> None:
    assert Credential("key-one-au1").fingerprint == Credential("key-one-au1").fingerprint
    assert Credential("key-one-au1").fingerprint != Credential("key-two-au1").fingerprint
    assert len(Credential("key-one-au1").fingerprint) == 32
    assert Credential("key-one-au1") == Credential("key-one-au1")
    assert hash(Credential("key-one-au1")) == hash(Credential("key-one-au1"))


def test_credential_is_frozen() -> None:
    credential = Credential("abc-au1")
    with pytest.raises(AttributeError):
        credential.api_key = "other"  # type: ignore[misc]


def test_authorization_is_basic_with_key_as_user_and_empty_password() -> None:
    credential = Credential("abc-def-au2")
    assert credential.authorization == "Basic " + base64.b64encode(b"abc-def-au2:").decode()


def test_cliniko_hosts() -> None:
    assert is_cliniko_host("api.au1.cliniko.com")
    assert is_cliniko_host("CLINIKO.COM.")
    assert not is_cliniko_host("notcliniko.com")
    assert not is_cliniko_host("cliniko.com.evil.test")
    assert base_url_for_shard("uk2") == "https://api.uk2.cliniko.com/v1"
