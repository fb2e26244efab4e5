"""Creating and updating accounts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.auth.passwords import hash_password, password_problem
from server.exceptions import Conflict, Invalid
from server.models import Role, User


def create_user(
    session: Session, *, username: str, password: str, role: Role, display_name: str = ""
) -> User:
    """Create an account.

    Raises:
        Conflict: the username is taken.
        Invalid: a weak password.
    """
    problem = password_problem(password)
    if problem:
        raise Invalid(problem)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"username {username!r} is taken")
    user = User(
        username=username, password_hash=hash_password(password), role=role, display_name=display_name
    )
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    problem = password_problem(password)
    if problem:
        raise Invalid(problem)
    user.password_hash = hash_password(password)
    # Existing tokens and browser sessions end with a password change.
    user.token_version += 1
