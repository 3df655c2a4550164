"""Users: a name, a role and the hash of their token; revoked users keep their row."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.errors import NotFoundError, UsageError
from orchestrator.registry.models import Role, User, utcnow


def add_user(
    session: Session, name: str, role: Role, token_hash: str, created_by: str | None
) -> User:
    """A new user, or a revoked one given a fresh token and role."""
    user = session.scalar(select(User).where(User.name == name))
    if user is not None and user.revoked_at is None:
        raise UsageError(
            f"user {name} already exists",
            hint=f"`orch users revoke {name}` first to give them a new token",
        )
    if user is None:
        user = User(name=name)
        session.add(user)
    user.role, user.token_hash, user.created_by = role.value, token_hash, created_by
    user.created_at, user.revoked_at = utcnow(), None
    session.flush()
    return user


def set_user_token(session: Session, name: str, role: Role, token_hash: str) -> User:
    """Give ``name`` this token and role, creating the user if needed (the local admin)."""
    user = find_user(session, name)
    if user is None:
        return add_user(session, name, role, token_hash, created_by=None)
    user.role, user.token_hash = role.value, token_hash
    return user


def user_by_token_hash(session: Session, token_hash: str) -> User | None:
    """The user this token belongs to, unless revoked."""
    return session.scalar(
        select(User).where(User.token_hash == token_hash, User.revoked_at.is_(None))
    )


def find_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFoundError(f"no user named {name}", hint="`orch users list` shows them")
    return user


def list_users(session: Session, include_revoked: bool = False) -> list[User]:
    """By name; the revoked ones only when asked."""
    query = select(User).order_by(User.name)
    if not include_revoked:
        query = query.where(User.revoked_at.is_(None))
    return list(session.scalars(query))
