"""Bulk upload: many files (a browser folder) or zip archives into cases, one result per file.

Each file goes through :func:`server.cases.service.create_case`, the one ingest path (decoding,
de-identification, the burned-in annotation refusal, duplicate detection), and is committed in its
own transaction before the next starts: a file reported ``stored`` is in the database even if a
later one fails. Nothing of a request is ever held in memory whole: uploads are spooled to disk by
the web framework, zip entries are read one at a time with a bounded read.

Zip archives are never extracted to disk, so an entry named ``../../etc/passwd`` cannot write
anywhere; it is refused all the same (it is not a file of the upload). Against zip bombs the total
declared uncompressed size and the entry count are checked before any entry is read, and every read
is capped, since declared sizes can lie.
"""

from __future__ import annotations

import logging
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO, Literal

from sqlalchemy.orm import Session

from server.cases.service import DuplicateImage, create_case
from server.exceptions import DomainError, Invalid, TooLarge
from server.models import Case, Dataset, User
from server.storage import BlobStore

logger = logging.getLogger(__name__)

Outcome = Literal["stored", "duplicate", "refused"]
ZIP_MAGIC = b"PK\x03\x04"
#: Files a zip made on macOS carries beside the real ones (resource forks); not part of the upload.
_IGNORED_PREFIXES = ("__MACOSX/",)


@dataclass(frozen=True)
class BulkLimits:
    """How much one bulk upload may hold.

    Attributes:
        max_files: files at most (every zip entry counts as one).
        max_total_bytes: bytes of all files together, zip entries counted uncompressed.
        max_file_bytes: bytes of one file (the single-upload limit).
    """

    max_files: int
    max_total_bytes: int
    max_file_bytes: int


@dataclass(frozen=True)
class FileResult:
    """What became of one file: ``case_id`` when stored, ``duplicate_of`` when a duplicate, else why."""

    name: str
    outcome: Outcome
    case_id: int | None = None
    duplicate_of: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Upload:
    """One uploaded file as the route hands it over: its name (a relative path) and a binary stream."""

    name: str
    stream: BinaryIO


#: One file to ingest: its name and either a function that reads its bytes or why it is refused.
_Item = tuple[str, Callable[[], bytes] | str]


def is_zip(stream: BinaryIO) -> bool:
    """Whether the stream starts like a zip archive (the position is kept)."""
    position = stream.tell()
    head = stream.read(len(ZIP_MAGIC))
    stream.seek(position)
    return head == ZIP_MAGIC


def safe_name(name: str) -> str | None:
    """``name`` as a relative POSIX path, or None when it is absolute or climbs out (``..``)."""
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    if not posix or path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        return None
    return str(path)


def _read_capped(read: Callable[[int], bytes], limit: int, name: str) -> bytes:
    data = read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"{name}: file exceeds the {limit}-byte limit per file")
    return data


def _archive_items(upload: Upload, archive: zipfile.ZipFile, limits: BulkLimits) -> list[_Item]:
    items: list[_Item] = []
    for info in archive.infolist():
        if info.is_dir() or info.filename.startswith(_IGNORED_PREFIXES):
            continue
        shown = f"{upload.name}/{info.filename}"
        name = safe_name(info.filename)
        if name is None:
            items.append((shown, "unsafe path in the archive (absolute or with '..'); entry not read"))
        elif stat.S_ISLNK(info.external_attr >> 16):
            items.append((shown, "the archive entry is a symbolic link; entry not read"))
        elif info.flag_bits & 0x1:
            items.append((shown, "the archive entry is encrypted"))
        else:
            items.append((shown, _entry_reader(archive, info, limits.max_file_bytes, shown)))
    return items


def _entry_reader(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, shown: str
) -> Callable[[], bytes]:
    def read() -> bytes:
        with archive.open(info) as entry:
            return _read_capped(entry.read, limit, shown)

    return read


def _check_totals(count: int, declared: int, limits: BulkLimits) -> None:
    if count > limits.max_files:
        raise TooLarge(f"the upload holds {count} files; the limit is {limits.max_files} files per upload")
    if declared > limits.max_total_bytes:
        raise TooLarge(
            f"the upload holds {declared} bytes (zip entries uncompressed); the limit is"
            f" {limits.max_total_bytes} bytes per upload"
        )


@dataclass
class _Plan:
    items: list[_Item]
    archives: list[zipfile.ZipFile]

    def close(self) -> None:
        for archive in self.archives:
            archive.close()


def plan(uploads: list[Upload], limits: BulkLimits) -> _Plan:
    """The files of an upload (zip archives opened, not read), after the count and size checks.

    Raises:
        TooLarge: more files, or more (declared, uncompressed) bytes, than ``limits`` allow.
        Invalid: a file that starts like a zip but is not a readable archive.
    """
    items: list[_Item] = []
    archives: list[zipfile.ZipFile] = []
    declared = 0
    try:
        for upload in uploads:
            if is_zip(upload.stream):
                try:
                    archive = zipfile.ZipFile(upload.stream)
                except zipfile.BadZipFile as exc:
                    raise Invalid(f"{upload.name}: not a readable zip archive ({exc})") from None
                archives.append(archive)
                declared += sum(i.file_size for i in archive.infolist() if not i.is_dir())
                items += _archive_items(upload, archive, limits)
            else:
                upload.stream.seek(0, 2)
                declared += upload.stream.tell()
                upload.stream.seek(0)
                name = safe_name(upload.name) or PurePosixPath(upload.name.replace("\\", "/")).name
                items.append((name, _stream_reader(upload.stream, limits.max_file_bytes, name)))
            _check_totals(len(items), declared, limits)
    except BaseException:
        for archive in archives:
            archive.close()
        raise
    return _Plan(items, archives)


def _stream_reader(stream: BinaryIO, limit: int, name: str) -> Callable[[], bytes]:
    return lambda: _read_capped(stream.read, limit, name)


def ingest(
    session: Session,
    blobs: BlobStore,
    files: _Plan,
    *,
    dataset: Dataset,
    limits: BulkLimits,
    max_pixels: int,
    uid_salt: bytes,
    uploaded_by: User,
    on_stored: Callable[[Case], None] = lambda _case: None,
) -> list[FileResult]:
    """Create a case from every file of ``files``, committing each stored one before the next.

    ``on_stored`` runs inside each stored file's transaction (the route records its audit event).
    A failed file is rolled back alone and reported ``refused`` with the reason, or ``duplicate``.
    """
    results: list[FileResult] = []
    total = 0
    for name, source in files.items:
        if isinstance(source, str):
            results.append(FileResult(name, "refused", reason=source))
            continue
        try:
            data = source()
            total += len(data)
            if total > limits.max_total_bytes:
                raise TooLarge(
                    f"the upload passed its limit of {limits.max_total_bytes} bytes (uncompressed)"
                )
            if not data:
                results.append(FileResult(name, "refused", reason="the file is empty"))
                continue
            case = create_case(
                session,
                blobs,
                dataset=dataset,
                data=data,
                max_pixels=max_pixels,
                uid_salt=uid_salt,
                uploaded_by=uploaded_by,
                title=name[-256:],
                refuse_duplicates=True,
            )
            on_stored(case)
            session.commit()
        except DuplicateImage as exc:
            session.rollback()
            results.append(
                FileResult(name, "duplicate", duplicate_of=exc.duplicate_of, reason=str(exc.detail))
            )
            continue
        except DomainError as exc:
            session.rollback()
            results.append(FileResult(name, "refused", reason=str(exc.detail)))
            continue
        except (zipfile.BadZipFile, OSError, EOFError) as exc:  # a damaged entry: CRC, truncation
            session.rollback()
            results.append(FileResult(name, "refused", reason=f"the archive entry cannot be read ({exc})"))
            continue
        results.append(FileResult(name, "stored", case_id=case.id))
    counts = {o: sum(r.outcome == o for r in results) for o in ("stored", "duplicate", "refused")}
    logger.info("bulk upload into dataset %s: %s", dataset.id, counts)
    return results
