"""Signed bearer tokens for scripts and the hardware-tracker bridge."""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    token_version: int
    scopes: frozenset[str]


class TokenCodec:
    """Issues and checks time-limited tokens signed with the server secret."""

    def __init__(self, secret_key: str, ttl_s: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="mcgip-access-token")
        self.ttl_s = ttl_s

    def issue(self, user_id: int, token_version: int, scopes: frozenset[str]) -> str:
        return self._serializer.dumps({"u": user_id, "v": token_version, "s": sorted(scopes)})

    def decode(self, token: str) -> TokenClaims | None:
        """The claims of a valid, unexpired token, or None."""
        try:
            data = self._serializer.loads(token, max_age=self.ttl_s)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("u"), int):
            return None
        return TokenClaims(
            user_id=data["u"], token_version=int(data.get("v", 0)), scopes=frozenset(data.get("s", []))
        )
