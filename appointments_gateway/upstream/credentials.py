"""Who we call Cliniko as, and where: API key, shard routing and base URL.

Cliniko shards accounts by region (``au1``..``au4``, ``uk1``, ``eu1``...). The
shard is the key's suffix after its **last** hyphen (key bodies may contain
hyphens themselves); a key without a hyphen belongs to ``au1``. A key must go
to its own shard's host and nowhere else, so the base URL is derived from the
key, or given explicitly (the sandbox, a proxy) and then wins.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field

import httpx

from .errors import InvalidApiKey, InvalidBaseUrl

__all__ = [
    "DEFAULT_SHARD",
    "MAX_API_KEY_CHARS",
    "Credential",
    "base_url_for_shard",
    "is_cliniko_host",
    "shard_from_api_key",
]

DEFAULT_SHARD = "au1"
"""The shard of keys that carry no suffix (accounts from before sharding)."""

_SHARD = re.compile(r"\w{2}\d{1,2}", re.IGNORECASE | re.ASCII)
#: Longer keys are refused before they are sent anywhere.  Cliniko's keys are base64 text
#: and a shard suffix, a few dozen characters (its docs' examples have 32 and 46; real
#: ones run to about 80); 256 leaves room for longer keys to come, while a caller's 60 KB
#: "key" is no key at all and would only be forwarded to Cliniko on every request.
MAX_API_KEY_CHARS = 256
# Anything but printable ASCII, and ":" (it splits a Basic-auth user from the password):
# base64 and a '-shard' suffix never hold spaces, controls or non-ASCII letters, and such a
# key would be unusable in a header or re-encoded on its way upstream.
_BAD_KEY_CHARS = re.compile(r"[^\x21-\x7e]|:")
# A fixed salt: fingerprints must agree across processes and replicas (shared caches),
# while not being a bare SHA-256 of the key that could be matched against other systems.
_FINGERPRINT_SALT = b"appointments-gateway/credential-fingerprint/v1"


def shard_from_api_key(api_key: str) -> str:
    """Return the lower-case shard named by the key's suffix after its last hyphen.

    Raises:
        InvalidApiKey: the suffix is not two word characters and one or two digits.
    """
    _, hyphen, suffix = api_key.rpartition("-")
    if not hyphen:
        return DEFAULT_SHARD
    if not _SHARD.fullmatch(suffix):
        # Never quote the key, not even its tail: it is a secret.
        raise InvalidApiKey(
            "The API key's suffix after its last hyphen is not a Cliniko shard "
            "(expected two letters and one or two digits, e.g. 'au2')."
        )
    return suffix.lower()


def base_url_for_shard(shard: str) -> str:
    """Cliniko's API root for a shard, e.g. ``https://api.au2.cliniko.com/v1``."""
    return f"https://api.{shard}.cliniko.com/v1"


def is_cliniko_host(host: str) -> bool:
    """True for the real service (``cliniko.com`` and its sub-domains)."""
    host = host.lower().rstrip(".")
    return host == "cliniko.com" or host.endswith(".cliniko.com")


def _normalise_base_url(base_url: str) -> str:
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL:
        raise InvalidBaseUrl("The base URL is not a valid URL.") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidBaseUrl("The base URL must be an absolute http:// or https:// URL.")
    if url.userinfo or url.query or url.fragment:
        raise InvalidBaseUrl("The base URL must not carry credentials, a query or a fragment.")
    if url.scheme != "https" and is_cliniko_host(url.host):
        raise InvalidBaseUrl("Cliniko must be called over https: the API key travels in a header.")
    return str(url).rstrip("/")


@dataclass(frozen=True, slots=True)
class Credential:
    """A Cliniko API key and the base URL it is valid for.

    ``repr``/``str`` show only the shard, base URL and a short fingerprint,
    never the key, so a credential can sit in logs and tracebacks.

    Args:
        api_key: the key, with or without its ``-shard`` suffix.
        base_url: an explicit API root (the sandbox, a proxy). It wins over the
            shard; the key's suffix is then not required to name a shard.
    """

    api_key: str = field(repr=False)
    base_url: str | None = None
    shard: str | None = field(init=False)
    """The key's shard, or ``None`` for a non-Cliniko key behind an explicit base URL."""
    api_root: str = field(init=False)
    """Where requests go: ``base_url`` if given (normalised), else the shard's root."""
    host: str = field(init=False, compare=False)
    """The host of ``api_root``: the only host this key is ever sent to."""
    fingerprint: str = field(init=False)
    """A stable, non-reversible id of the key: cache keys, metrics labels, logs."""
    authorization: str = field(init=False, repr=False, compare=False)
    """The ``Authorization`` header value, computed once."""

    def __post_init__(self) -> None:
        key = self.api_key
        if not key:
            raise InvalidApiKey("The API key is empty.")
        if len(key) > MAX_API_KEY_CHARS:
            raise InvalidApiKey(
                f"The API key is longer than any Cliniko key ({MAX_API_KEY_CHARS} characters)."
            )
        if _BAD_KEY_CHARS.search(key):
            raise InvalidApiKey(
                "The API key has characters no Cliniko key has (spaces, ':', control or "
                "non-ASCII characters)."
            )
        shard: str | None
        if self.base_url is None:
            shard = shard_from_api_key(key)
            api_root = base_url_for_shard(shard)
        else:
            api_root = _normalise_base_url(self.base_url)
            try:
                shard = shard_from_api_key(key)
            except InvalidApiKey:
                shard = None  # sandbox and proxy keys need not follow Cliniko's format
        digest = hmac.new(_FINGERPRINT_SALT, key.encode(), hashlib.sha256).hexdigest()
        token = base64.b64encode(key.encode() + b":").decode("ascii")
        object.__setattr__(self, "shard", shard)
        object.__setattr__(self, "api_root", api_root)
        object.__setattr__(self, "host", httpx.URL(api_root).host)
        object.__setattr__(self, "fingerprint", digest[:32])
        object.__setattr__(self, "authorization", f"Basic {token}")

    @classmethod
    def from_api_key(cls, api_key: str, *, base_url: str | None = None) -> Credential:
        """Same as ``Credential(api_key, base_url)``; reads better at call sites."""
        return cls(api_key, base_url)

    @property
    def is_cliniko(self) -> bool:
        """True when requests go to the real service (so its User-Agent rules apply)."""
        return is_cliniko_host(self.host)

    def __repr__(self) -> str:
        return (
            f"Credential(shard={self.shard!r}, api_root={self.api_root!r}, "
            f"fingerprint={self.fingerprint[:12]!r})"
        )

    __str__ = __repr__
