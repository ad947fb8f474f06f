"""The two demo accounts and their API keys, and Basic-auth parsing.

Two accounts exist so isolation can be tested: each key sees only its own account's rows, and
another account's id answers 404 exactly like an id that does not exist.

Like Cliniko, the key is the Basic-auth username and the ``-au1`` shard suffix may be left off.
Not imitated: the password is ignored (Cliniko documents it as empty), there is no 403
(permissions), and keys cannot be created or revoked.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

__all__ = ["DEMO_ACCOUNTS", "DEMO_KEY_A", "DEMO_KEY_B", "DemoAccount", "account_for_authorization"]

DEMO_KEY_A = "sandbox-key-a-au1"
"""Account A: the main demo clinic group, with realistic volume."""

DEMO_KEY_B = "sandbox-key-b-au1"
"""Account B: a separate, small practice used to test isolation."""


@dataclass(frozen=True)
class DemoAccount:
    """One demo account.

    Attributes:
        label: ``"a"`` or ``"b"``; used in stats and in the database, never the key itself.
        api_key: The Basic-auth username that opens this account.
        name: A human description for docs and the CLI.
    """

    label: str
    api_key: str
    name: str


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("a", DEMO_KEY_A, "Harbourside Allied Health (3 clinics, large data set)"),
    DemoAccount("b", DEMO_KEY_B, "Fremantle Family Physio (1 clinic, small data set)"),
)

_BY_KEY: dict[str, DemoAccount] = {}
for _account in DEMO_ACCOUNTS:
    _BY_KEY[_account.api_key] = _account
    _BY_KEY[_account.api_key.rsplit("-", 1)[0]] = _account  # the shard suffix is optional


def account_for_authorization(header: str | None) -> DemoAccount | None:
    """The account a ``Authorization: Basic`` header opens, or ``None``."""
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username = decoded.partition(":")[0]
    return _BY_KEY.get(username)
