"""Tokens, users and roles.

A token is shown once, when its user is added; the registry keeps only its SHA-256 (tokens
are 256 random bits, so a plain hash is enough: nothing to brute-force). Every request but
the console's static files, ``/api/health`` and the OpenAPI schema needs
``Authorization: Bearer TOKEN``: 401 without a valid one, 403 when the user's role may not
do what the route does. Tokens never appear in a URL, a log line or an error message.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchestrator.registry import store
from orchestrator.registry.models import Role

TOKEN_PREFIX = "orch_"
bearer = HTTPBearer(auto_error=False, description="A user's token (`orch users add`).")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role

    def may(self, role: Role) -> bool:
        return self.role.rank >= role.rank


def unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def current_user(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("a token is needed: Authorization: Bearer TOKEN")
    digest = token_hash(credentials.credentials)
    with request.app.state.registry.session() as session:
        user = store.user_by_token_hash(session, digest)
        if user is None:
            raise unauthorized("the token is not valid (unknown or revoked)")
        principal = Principal(user.name, Role(user.role))
    request.state.user = principal.name
    return principal


def require(role: Role) -> Callable[..., Principal]:
    """A dependency: the caller, who must hold at least ``role``."""

    def check(user: Principal = Depends(current_user)) -> Principal:
        if not user.may(role):
            raise HTTPException(
                403, f"{user.name} is a {user.role.value}: this needs the {role.value} role"
            )
        return user

    check.__name__ = f"require_{role.value}"
    return check


viewer = require(Role.VIEWER)
member = require(Role.MEMBER)
admin = require(Role.ADMIN)
