"""Who may call the gateway, and which Cliniko credential each request runs with.

``upstream/credentials.py`` defines a credential (a key and where it goes); this module
picks one per HTTP request and decides whether the caller may use it.  In ``service``
mode the gateway holds one key.  In ``forward`` mode every caller sends its own key, as
HTTP Basic (``base64(key + ":")``, the way Cliniko itself takes it) or as ``Bearer key``;
the key's shard suffix routes it.  A request without a usable key is refused before any
upstream call.  Nothing here logs or echoes a key.

A WebSocket (live updates over graphql-transport-ws) carries no ``Authorization``
header a browser could set: its ``connection_init`` payload does, under the same name and
in the same forms (``{"Authorization": "Basic …"}`` or ``{"authorization": "Bearer …"}``,
any case, or inside a ``headers`` object, as some clients nest it):
:func:`authorization_from_params`.

In service mode anyone who reaches the port acts as the service key's Cliniko user, so
off loopback callers must present a *gateway token* (``Authorization: Bearer <token>``).
The gateway keeps only SHA-256 digests of its tokens (``GatewayTokens``): a leaked
configuration or process dump does not hand out working tokens.  SHA-256 rather than a
slow password hash because tokens are random and long (the settings refuse short ones):
there is nothing to brute-force, and a slow hash would cost CPU on every request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import HTTPConnection

from appointments_gateway.upstream import Credential, InvalidApiKey

__all__ = [
    "GatewayTokens",
    "MissingCredential",
    "authorization_from_params",
    "credential_from_authorization",
    "credential_from_request",
    "token_digest",
]


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
    return credential_from_authorization(conn.headers.get("authorization"), base_url=base_url)


def authorization_from_params(params: Mapping[str, Any]) -> str | None:
    """The ``Authorization`` value of a ``connection_init`` payload (see the module docs)."""
    for scope in (params, params.get("headers")):
        if isinstance(scope, Mapping):
            for name, value in scope.items():
                if isinstance(name, str) and name.lower() == "authorization":
                    return value if isinstance(value, str) else None
    return None


def credential_from_authorization(header: str | None, *, base_url: str | None) -> Credential:
    """The credential an ``Authorization`` value carries (forward mode)."""
    if not header:
        raise MissingCredential(
            "This gateway forwards each caller's own Cliniko API key: send it as HTTP "
            "Basic (the key as user name, no password) or as 'Authorization: Bearer <key>'."
        )
    key = _key_from_authorization(header)
    try:
        return Credential.from_api_key(key, base_url=base_url)
    except InvalidApiKey as exc:
        # Its messages never quote the key: an overlong key, characters no key has, or
        # a shard suffix that is not one.  Refused here, before anything goes upstream.
        raise MissingCredential(str(exc)) from None


def token_digest(token: str) -> str:
    """The lower-case hex SHA-256 of a gateway token, the only form the gateway keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class GatewayTokens:
    """The digests of the tokens that may use the service key; checks a request's token.

    Args:
        digests: hex SHA-256 digests (see :func:`token_digest`); at least one.
    """

    __slots__ = ("_digests",)

    def __init__(self, digests: Iterable[str]) -> None:
        self._digests = tuple(bytes.fromhex(d) for d in digests)
        if not self._digests:
            raise ValueError("GatewayTokens needs at least one token digest.")

    def __repr__(self) -> str:
        # Digests are not secrets, but nothing about tokens belongs in logs.
        return f"GatewayTokens(<{len(self._digests)} digests>)"

    def accepts(self, token: str) -> bool:
        """Whether ``token`` is one of the configured tokens.

        Every configured digest is compared, in constant time, whether or not an earlier
        one matched: the time taken reveals neither which token matched nor how much of
        a guess was right.
        """
        presented = hashlib.sha256(token.encode("utf-8")).digest()
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(presented, digest)
        return matched

    def check(self, conn: HTTPConnection) -> None:
        """Raise ``MissingCredential`` unless the request carries an accepted Bearer token."""
        self.check_authorization(conn.headers.get("authorization", ""))

    def check_authorization(self, header: str) -> None:
        """Raise ``MissingCredential`` unless ``header`` is an accepted ``Bearer`` token."""
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise MissingCredential(
                "This gateway needs a gateway token: send 'Authorization: Bearer <token>'."
            )
        if not self.accepts(token):
            raise MissingCredential("The gateway token is not valid.")
