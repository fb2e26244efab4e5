"""Creating and updating accounts."""

from __future__ import annotations

from fastapi import HTTPException, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.auth.passwords import hash_password, password_problem
from server.models import Role, User


def create_user(
    session: Session, *, username: str, password: str, role: Role, display_name: str = ""
) -> User:
    """Create an account.

    Raises:
        HTTPException: 409 if the username is taken, 422 for a weak password.
    """
    problem = password_problem(password)
    if problem:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problem)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"username {username!r} is taken")
    user = User(
        username=username, password_hash=hash_password(password), role=role, display_name=display_name
    )
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    problem = password_problem(password)
    if problem:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problem)
    user.password_hash = hash_password(password)
    # Existing tokens and browser sessions end with a password change.
    user.token_version += 1
