"""Account management (admins) and the caller's own profile."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from server.apitypes import Id, UtcDateTime
from server.auth.scopes import require_scope
from server.deps import AdminUser, SessionDep
from server.models import Role, User
from server.users import service

router = APIRouter(prefix="/api/users", tags=["users"])


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(max_length=256)
    role: Role
    display_name: str = Field(default="", max_length=128)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(default=None, max_length=256)
    role: Role | None = None
    display_name: str | None = Field(default=None, max_length=128)
    is_active: bool | None = None


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: Role
    is_active: bool
    created_at: UtcDateTime


@router.get("", response_model=list[UserPublic], dependencies=[require_scope("read")])
def list_users(session: SessionDep, _admin: AdminUser, role: Role | None = None) -> list[User]:
    stmt = select(User).order_by(User.id)
    if role is not None:
        stmt = stmt.where(User.role == role)
    return list(session.scalars(stmt))


@router.post(
    "", response_model=UserPublic, status_code=status.HTTP_201_CREATED, dependencies=[require_scope("write")]
)
def create_user(body: UserCreate, session: SessionDep, _admin: AdminUser) -> User:
    return service.create_user(
        session,
        username=body.username,
        password=body.password,
        role=body.role,
        display_name=body.display_name,
    )


@router.patch("/{user_id}", response_model=UserPublic, dependencies=[require_scope("write")])
def update_user(user_id: Id, body: UserUpdate, session: SessionDep, admin: AdminUser) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {user_id} not found")
    if user.id == admin.id and (body.role == Role.reader or body.is_active is False):
        raise HTTPException(status.HTTP_409_CONFLICT, "admins cannot demote or deactivate themselves")
    if body.password is not None:
        service.set_password(user, body.password)
    if body.role is not None:
        user.role = body.role
    if body.display_name is not None:
        user.display_name = body.display_name
    if body.is_active is not None and body.is_active != user.is_active:
        user.is_active = body.is_active
        user.token_version += 1
    session.flush()
    return user
