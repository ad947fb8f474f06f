"""Which Cliniko credential a request runs with.

In ``service`` mode the gateway holds one key.  In ``forward`` mode every caller sends
its own key, as HTTP Basic (``base64(key + ":")``, the way Cliniko itself takes it) or as
``Bearer key``; the key's shard suffix routes it.  A request without a usable key is
refused before any upstream call.  Nothing here logs or echoes a key.
"""

from __future__ import annotations

import base64
import binascii

from starlette.requests import HTTPConnection

from appointments_gateway.upstream import Credential, InvalidApiKey

__all__ = ["MissingCredential", "credential_from_request"]


class MissingCredential(Exception):
    """The request carries no usable Cliniko key; the message is safe to show the caller."""


def _key_from_authorization(header: str) -> str:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise MissingCredential("The Basic credentials are not valid base64.") from None
        key, _, _password = decoded.partition(":")
        if key:
            return key
    raise MissingCredential(
        "Send your Cliniko API key as HTTP Basic (the key as user name, no password) "
        "or as 'Authorization: Bearer <key>'."
    )


def credential_from_request(conn: HTTPConnection, *, base_url: str | None) -> Credential:
    """The credential of a forward-mode request, routed to ``base_url`` or the key's shard."""
    header = conn.headers.get("authorization")
    if not header:
        raise MissingCredential(
            "This gateway forwards each caller's own Cliniko API key: send it as HTTP "
            "Basic (the key as user name, no password) or as 'Authorization: Bearer <key>'."
        )
    key = _key_from_authorization(header)
    try:
        return Credential.from_api_key(key, base_url=base_url)
    except InvalidApiKey:
        raise MissingCredential(
            "The API key's shard suffix is not valid (expected e.g. '-au1')."
        ) from None
