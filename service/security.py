"""API keys in the ``X-API-Key`` header, with scopes, compared in constant time.

Each configured key (``LOANRISK_API_KEYS``, :func:`service.config.parse_api_keys`) is kept as the
SHA-256 digest of its secret, a name and its scopes. A presented key is hashed once and its digest
compared with every configured digest (:func:`hmac.compare_digest`, no early exit), so the time
taken reveals neither which key nearly matched nor where. A missing or unknown key answers 401
``unauthorized``; a known key without the route's scope answers 403 ``forbidden`` naming the scope.
With no keys configured the service runs open and every check passes.

Each route names its scope: the scoring routes check in line (:func:`check_api_key`, they resolve
no dependencies), the others through :func:`require_scope`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from service.config import ApiKey, Scope
from service.errors import ApiError

API_KEY_HEADER = "X-API-Key"
# Routes that need a valid key but no particular scope (GET /v1/model: which version answers,
# needed by every client and revealing no applicant's data).
ANY_SCOPE = None

logger = logging.getLogger("loanrisk.service")


@dataclass(frozen=True)
class ResolvedKey:
    """A configured key as the checks use it: the digest of its secret, its name, its scopes."""

    digest: bytes
    name: str
    scopes: frozenset[str]


class KeyRing:
    """The configured keys, built once by ``create_app``; :meth:`resolve` finds a presented one."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self.keys = tuple(
            ResolvedKey(
                bytes.fromhex(key.sha256)
                if key.sha256 is not None
                else hashlib.sha256(str(key.key).encode()).digest(),
                key.name,
                frozenset(key.scopes),
            )
            for key in keys
        )
        digests = [key.digest for key in self.keys]
        if len(set(digests)) != len(digests):
            raise ValueError("LOANRISK_API_KEYS holds the same secret under two names")
        plaintext = [key.name for key in keys if key.key is not None]
        if plaintext:
            logger.warning(
                "API keys %s are configured as plaintext secrets; give their SHA-256 digests "
                "instead (README, Authentication) so no secret sits in the environment",
                ", ".join(plaintext),
            )

    @property
    def open(self) -> bool:
        """No keys configured: every request is let in."""
        return not self.keys

    def resolve(self, presented: str | None) -> ResolvedKey | None:
        """The configured key whose secret is ``presented``, or None.

        One SHA-256 of the presented value, then a constant-time comparison with every
        configured digest; the loop never stops early. A missing or empty value is no key (a
        digest of the empty string configured by mistake lets nobody in).
        """
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        found: ResolvedKey | None = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found


def check_api_key(request: Request, scope: Scope | None) -> str | None:
    """The name of the request's key, after checking it holds ``scope`` (None: any valid key).

    Returns None when the service runs open. Raises :class:`ApiError` 401 ``unauthorized``
    (missing or unknown key) or 403 ``forbidden`` (the key lacks ``scope``; the details name it).
    """
    ring: KeyRing = request.app.state.api_keys
    if ring.open:
        return None
    key = ring.resolve(request.headers.get(API_KEY_HEADER))
    if key is None:
        raise ApiError(
            401,
            "unauthorized",
            f"missing or invalid API key in the {API_KEY_HEADER} header",
        )
    if scope is not None and scope not in key.scopes:
        raise ApiError(
            403,
            "forbidden",
            f"API key {key.name!r} lacks the scope {scope!r}",
            {"missing_scope": scope},
        )
    return key.name


def require_scope(scope: Scope | None) -> Callable[[Request], Awaitable[None]]:
    """A route dependency running :func:`check_api_key` for ``scope``; the key's name is left in
    ``request.state.api_key_name``."""

    async def require(request: Request) -> None:
        request.state.api_key_name = check_api_key(request, scope)

    return require
