"""What every gaze importer produces before anything touches the database.

Parsers turn a file into ``SessionRecord`` objects (samples already in the 18-column layout of
``server.reading.samples``) or collect ``RowError`` entries naming the offending line. The importer
writes records only when no parser reported an error, so a file is imported whole or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from server.reading.frames import MAX_T_MS
from server.reading.samples import COLUMN, MAX_FLAGS, N_COLUMNS
from trainer.arrays import FloatArray


@dataclass(frozen=True)
class RowError:
    """One problem found in an input file.

    Attributes:
        path: The file.
        line: 1-based line number in that file (the header is line 1), or None for file-level problems.
        message: What is wrong, naming the column and value where possible.
    """

    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.message}"


class ImportFailed(Exception):
    """The input had errors; nothing was imported.

    Attributes:
        errors: Every problem found (parsers keep going after the first bad row).
    """

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        shown = "\n".join(str(e) for e in errors[:50])
        more = f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{len(errors)} problem(s); nothing was imported:\n{shown}{more}")


@dataclass
class LabelRecord:
    """A reader's diagnosis (``attributes``: the labels as the source published them)."""

    label: str
    confidence: float | None = None
    finding_box: dict[str, Any] | None = None
    attributes: dict[str, Any] | None = None


@dataclass
class EventRecord:
    """Something said or done during a session (``t_ms`` on the session's sample clock)."""

    kind: str
    t_ms: float
    t_end_ms: float | None
    text: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class AnnotationRecord:
    """A region on a case's image, in *original* image pixels (``original`` = that image's size).

    Attributes:
        case_ref: External id of the case.
        shape: "box" or "ellipse" (inscribed in the box).
        label: What it marks.
        box: (x0, y0, x1, y1) in original image pixels.
        original: (width, height) of the image ``box`` refers to, or None when the source does not
            say (the case's original size is then needed).
        source: Data set name.
        key: Unique per case within the source (re-imports skip it).
        session_key: Key of the session it belongs to (a reading's own ellipses), or None.
        attributes: Source details.
    """

    case_ref: str
    shape: str
    label: str
    box: tuple[float, float, float, float]
    original: tuple[int, int] | None
    source: str
    key: str
    session_key: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class CaseLabelRecord:
    """Labels of a case from a data set: the reference label and further attributes."""

    case_ref: str
    reference_label: str | None
    attributes: dict[str, Any]
    path: Path
    line: int | None


@dataclass
class SessionRecord:
    """One reading session to create.

    Attributes:
        case_ref: External id of the case in the target dataset (e.g. a DICOM_ID).
        reader: Username of the reader, or None to take the one given on the command line.
        source: Session source ("import" for public datasets; the original source for bundles).
        source_info: Stored as the session's source_info (includes an ``import`` provenance entry).
        display_info: Stored as the session's display_info.
        samples: ``(n, 18)`` float64 samples in column order.
        lines: ``(n,)`` input line of each sample, for error messages.
        path: The file the samples came from.
        key: Identifies the session in its source data; a second import of the same key is skipped.
        label: The reader's diagnosis, if the source has one.
        events: Transcript phrases or words on the samples' clock.
        started_at, finished_at: The session's times when the source has them (bundles).
    """

    case_ref: str
    reader: str | None
    source: str
    source_info: dict[str, Any]
    display_info: dict[str, Any]
    samples: FloatArray
    lines: NDArray[np.int64]
    path: Path
    key: str
    label: LabelRecord | None = None
    events: list[EventRecord] = field(default_factory=list)
    #: ``reader`` is a pseudonym for a data set's radiologist: create the account if it is missing.
    pseudonymous_reader: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass
class DatasetImport:
    """What a public data set parser found: sessions (produced lazily, one at a time) and labels.

    Attributes:
        sessions: Sessions in input order; building them may append to ``errors``.
        case_labels: Per-case labels (reference label + attributes).
        annotations: Regions marked on the images.
        errors: Problems found so far (file-level problems before ``sessions`` is consumed).
        missing_cases: External ids referenced by the data but absent from the target dataset
            (-> where they were first referenced).
        ignored: Ids the data set itself marks as not images to import (-> why).
    """

    sessions: Iterable[SessionRecord]
    case_labels: list[CaseLabelRecord] = field(default_factory=list)
    annotations: list[AnnotationRecord] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    missing_cases: dict[str, str] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)


def check_samples(record: SessionRecord) -> list[RowError]:
    """The problems of ``record.samples`` the gaze stream would also refuse, by input line.

    Checks: shape, finite values, 0 <= t_ms <= 7 days, t_ms non-decreasing, integer flags in 0..255.
    """
    samples = record.samples
    errors: list[RowError] = []
    if samples.ndim != 2 or samples.shape[1] != N_COLUMNS:
        return [RowError(record.path, None, f"samples have shape {samples.shape}, expected (n, {N_COLUMNS})")]
    if samples.shape[0] == 0:
        return [RowError(record.path, None, f"session {record.key!r} has no samples")]

    t = samples[:, COLUMN["t_ms"]]
    flags = samples[:, COLUMN["flags"]]
    # Nearly every record is fine: a few whole-array tests decide that before any per-row work.
    if (
        np.isfinite(samples).all()
        and t[0] >= 0
        and t.max() <= MAX_T_MS
        and (t.shape[0] < 2 or bool((t[1:] >= t[:-1]).all()))
        and flags.min() >= 0
        and flags.max() <= MAX_FLAGS
        and bool((flags == np.round(flags)).all())
    ):
        return errors

    def at(i: int) -> int:
        return int(record.lines[i])

    bad = ~np.isfinite(samples).all(axis=1)
    errors += [RowError(record.path, at(i), "value is not a finite number") for i in np.flatnonzero(bad)[:20]]
    out = np.isfinite(t) & ((t < 0) | (t > MAX_T_MS))
    errors += [
        RowError(record.path, at(i), f"time {t[i]:.3f} ms lies outside 0..{MAX_T_MS:.0f} ms")
        for i in np.flatnonzero(out)[:20]
    ]
    back = np.flatnonzero(np.diff(t) < 0) + 1
    errors += [
        RowError(record.path, at(i), f"time goes backwards ({t[i - 1]:.3f} -> {t[i]:.3f} ms)")
        for i in back[:20]
    ]
    bad_flags = np.isfinite(flags) & ((flags != np.round(flags)) | (flags < 0) | (flags > MAX_FLAGS))
    errors += [
        RowError(record.path, at(i), f"flags {flags[i]!r} is not an integer in 0..{MAX_FLAGS}")
        for i in np.flatnonzero(bad_flags)[:20]
    ]
    return errors
