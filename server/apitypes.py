"""Value types shared by every API schema: bounded integers for ids, offsets and counts, and UTC times.

Python integers are unbounded, database integers are not: a value past 64 bits reaches SQLite as an
``OverflowError`` and one past 32 bits overflows a PostgreSQL ``INTEGER`` column. Every id, offset
and stored count a client can send uses these types, so such a value is a 422 naming the field,
never a 500. The bound is PostgreSQL's ``INTEGER``, the narrower of the two backends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field

#: Largest value every integer column holds on both backends (PostgreSQL ``INTEGER``).
MAX_DB_INT = 2**31 - 1

#: A row id (ids start at 1).
Id = Annotated[int, Field(ge=1, le=MAX_DB_INT)]
#: A paging offset.
Offset = Annotated[int, Field(ge=0, le=MAX_DB_INT)]
#: Any other non-negative integer that is stored or compared in the database.
DbInt = Annotated[int, Field(ge=0, le=MAX_DB_INT)]


def _as_utc(value: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive; every stored time is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


#: A point in time, always serialised with its UTC offset (RFC 3339 ``date-time``).
UtcDateTime = Annotated[datetime, AfterValidator(_as_utc)]
