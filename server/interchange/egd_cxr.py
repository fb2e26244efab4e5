"""EGD-CXR (Eye Gaze Data for Chest X-rays, PhysioNet ``egd-cxr/1.0.0``), as published.

The data set folder holds ``fixations.csv`` and ``eye_gaze.csv`` (Gazepoint GP3 on a 1920x1080
screen: ``FPOGX``/``FPOGY`` are fractions of the screen, times in seconds in ``Time (in secs)`` and
``FPOGS``/``FPOGD``), ``master_sheet.csv`` (one row per image: margins ``image_top_pad``,
``image_bottom_pad``, ``image_left_pad``, ``image_right_pad`` in screen px around the drawn image,
the condition columns ``Normal``/``CHF``/``pneumonia``, finding columns and CheXpert columns
``*__chx``), ``bounding_boxes.csv`` (anatomy boxes ``x1, x2, y1, y2`` in original DICOM px) and
``audio_segmentation_transcripts/<dicom_id>/transcript.json`` (``time_stamped_text``: phrases with
``begin_time``/``end_time`` in seconds).

A screen point maps to the image as the data set's own scripts do, with separate x and y factors
(the image was stretched to fill the space between the margins):

    eye = (FPOGX * 1920, FPOGY * 1080)
    image_x = (eye_x - left) * W / (1920 - left - right)
    image_y = (eye_y - top)  * H / (1080 - top - bottom)

kept unrounded; points outside the image stay valid and are flagged off-image. Without a master
sheet the data set's mapped ``X_ORIGINAL``/``Y_ORIGINAL`` (original DICOM px; negative = off the
image) are rescaled to the stored image, which needs the original size.

One session per (``SESSION_ID``, ``DICOM_ID``); times keep the file's clock (Gazepoint's time,
which restarts with each image), so transcript phrases line up. Rows whose ``DICOM_ID`` is not in
the master sheet are the calibration screens shown between images and are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from server.interchange.cases import CaseImage, CaseLookup
from server.interchange.csv_stream import Columns, Number, read_columns, read_header
from server.interchange.geometry import Viewport, build_samples, expand_fixations
from server.interchange.records import (
    AnnotationRecord,
    CaseLabelRecord,
    DatasetImport,
    EventRecord,
    RowError,
    SessionRecord,
)
from server.interchange.table import read_table, require_columns

SOURCE = "egd-cxr"
SCREEN_W = 1920
SCREEN_H = 1080
TIME_COLUMNS = ("Time (in secs)", "TIME(in secs)", "TIME")
#: As published; the data set's preparation script wrote them without the ``_pad`` suffix.
MARGINS = ("image_top_pad", "image_bottom_pad", "image_left_pad", "image_right_pad")
LEGACY_MARGINS = ("image_top", "image_bottom", "image_left", "image_right")
CONDITIONS = ("Normal", "CHF", "pneumonia")
FINDINGS = (
    "consolidation",
    "enlarged_cardiac_silhouette",
    "linear__patchy_atelectasis",
    "lobar__segmental_collapse",
    "not_otherwise_specified_opacity___pleural__parenchymal_opacity__",
    "pleural_effusion_or_thickening",
    "pulmonary_edema__hazy_opacity",
    "normal_anatomically",
    "elevated_hemidiaphragm",
    "hyperaeration",
    "vascular_redistribution",
)
CHEXPERT_SUFFIX = "__chx"
#: The one radiologist who read EGD-CXR, under a pseudonym.
DEFAULT_READER = "egd-cxr-radiologist-1"


@dataclass(frozen=True)
class Margins:
    top: float
    bottom: float
    left: float
    right: float


@dataclass(frozen=True)
class SheetRow:
    margins: Margins
    condition: str | None
    attributes: dict[str, Any]
    line: int


def _flag(cell: str) -> int | None:
    """A 0/1/-1 label cell (empty = not stated)."""
    text = cell.strip()
    if text == "":
        return None
    return int(float(text))


def read_master_sheet(path: Path, errors: list[RowError]) -> dict[str, SheetRow]:
    """``dicom_id`` -> margins, condition and finding/CheXpert attributes."""
    table = read_table(path, errors)
    if table is None:
        return {}
    margins = MARGINS if table.has(*MARGINS) else LEGACY_MARGINS if table.has(*LEGACY_MARGINS) else None
    if margins is None:
        errors.append(
            RowError(path, 1, f"missing column(s) {', '.join(m for m in MARGINS if not table.has(m))}")
        )
        return {}
    if not require_columns(table, ["dicom_id"], errors):
        return {}
    conditions = [c for c in CONDITIONS if table.has(c)]
    findings = [c for c in FINDINGS if table.has(c)]
    chexpert = [c for c in table.header if c.endswith(CHEXPERT_SUFFIX)]
    ids = table.text("dicom_id")
    cols = {name: table.text(name) for name in (*margins, *conditions, *findings, *chexpert)}
    found: dict[str, SheetRow] = {}
    for i, dicom in enumerate(ids):
        line = table.lines[i]
        try:
            values = [float(cols[m][i]) for m in margins]
            flags = {c: _flag(cols[c][i]) for c in (*conditions, *findings, *chexpert)}
        except ValueError as exc:
            errors.append(RowError(path, line, f"not a number: {exc}"))
            continue
        if any(v < 0 for v in values):
            errors.append(RowError(path, line, "a margin is negative"))
            continue
        positive = [c for c in conditions if flags[c] == 1]
        if len(positive) > 1:
            errors.append(RowError(path, line, f"more than one condition is 1: {', '.join(positive)}"))
            continue
        attributes = {
            "condition": positive[0] if positive else None,
            "findings": {c: flags[c] for c in findings},
            "chexpert": {c.removesuffix(CHEXPERT_SUFFIX): flags[c] for c in chexpert},
        }
        found[dicom] = SheetRow(Margins(*values), positive[0] if positive else None, attributes, line)
    return found


def find_master_sheet(path: Path) -> Path | None:
    """``master_sheet.csv`` in the data set folder (beside the gaze file) or one folder up."""
    for folder in (path.parent, path.parent.parent):
        candidate = folder / "master_sheet.csv"
        if candidate.is_file():
            return candidate
    return None


def read_transcripts(root: Path, dicom_ids: set[str], errors: list[RowError]) -> dict[str, list[EventRecord]]:
    """Phrases of ``audio_segmentation_transcripts/<dicom_id>/transcript.json`` as transcript events."""
    folder = root / "audio_segmentation_transcripts"
    found: dict[str, list[EventRecord]] = {}
    if not folder.is_dir():
        return found
    for dicom in sorted(dicom_ids):
        path = folder / dicom / "transcript.json"
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            phrases = data["time_stamped_text"]
            found[dicom] = [
                EventRecord(
                    kind="transcript",
                    t_ms=float(p["begin_time"]) * 1000.0,
                    t_end_ms=float(p["end_time"]) * 1000.0,
                    text=str(p["phrase"]),
                    data={"source": SOURCE},
                )
                for p in phrases
            ]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            errors.append(RowError(path, None, f"not a transcript with time_stamped_text: {exc!r}"))
    return found


def read_bounding_boxes(path: Path, errors: list[RowError]) -> list[AnnotationRecord]:
    """Anatomy boxes of ``bounding_boxes.csv`` (original DICOM pixels)."""
    table = read_table(path, errors)
    if table is None or not require_columns(table, ["dicom_id", "bbox_name", "x1", "x2", "y1", "y2"], errors):
        return []
    cols = {c: table.text(c) for c in ("dicom_id", "bbox_name", "x1", "x2", "y1", "y2")}
    boxes = []
    for i, line in enumerate(table.lines):
        try:
            x1, x2, y1, y2 = (float(cols[c][i]) for c in ("x1", "x2", "y1", "y2"))
        except ValueError as exc:
            errors.append(RowError(path, line, f"not a number: {exc}"))
            continue
        name = cols["bbox_name"][i]
        boxes.append(
            AnnotationRecord(
                case_ref=cols["dicom_id"][i],
                shape="box",
                label=name,
                box=(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)),
                original=None,
                source=SOURCE,
                key=f"{SOURCE}:bbox:{name}",
                attributes={"file": path.name, "line": line},
            )
        )
    return boxes


def parse(
    path: Path,
    cases: CaseLookup,
    *,
    master_sheet: Path | None = None,
    fixation_hz: float = 60.0,
    raw_gaze: bool = False,
    label_map: dict[str, str] | None = None,
) -> DatasetImport:
    """Sessions and labels of an EGD-CXR folder or gaze file.

    Args:
        path: The data set folder (``fixations.csv``, or ``eye_gaze.csv`` with ``raw_gaze``), or
            one of those files (a name starting with "fixations" is read as fixations).
        cases: Case lookup by ``DICOM_ID``.
        master_sheet: ``master_sheet.csv`` (found beside the gaze file when omitted).
        fixation_hz: Rate at which fixations are stored as samples.
        raw_gaze: With a folder, import ``eye_gaze.csv`` instead of ``fixations.csv``.
        label_map: Condition column -> reference label (default: the column names).
    """
    errors: list[RowError] = []
    unknown = sorted(set(label_map or {}) - set(CONDITIONS))
    if unknown:
        errors.append(
            RowError(
                path,
                None,
                f"--label-map names {', '.join(unknown)}; the conditions are {', '.join(CONDITIONS)}",
            )
        )
        return DatasetImport(sessions=[], errors=errors)
    if path.is_dir():
        path = path / ("eye_gaze.csv" if raw_gaze else "fixations.csv")
    root = path.parent
    header = read_header(path, errors)
    if header is None:
        return DatasetImport(sessions=[], errors=errors)
    fixations = path.name.lower().startswith("fixations")
    time_col = next((c for c in TIME_COLUMNS if c in header), None)
    sheet_path = master_sheet or find_master_sheet(path)
    sheet = read_master_sheet(sheet_path, errors) if sheet_path is not None else None
    needed = ["SESSION_ID", "DICOM_ID", "FPOGX", "FPOGY", "FPOGV"]
    needed += ["FPOGS", "FPOGD"] if fixations else [time_col or TIME_COLUMNS[0]]
    if sheet is None:
        needed += ["X_ORIGINAL", "Y_ORIGINAL"]
    missing = [c for c in needed if c not in header]
    if missing:
        errors.append(RowError(path, 1, f"missing column(s) {', '.join(missing)}"))
    if errors:
        return DatasetImport(sessions=[], errors=errors)

    numbers = [
        Number("FPOGX", allow_empty=True),
        Number("FPOGY", allow_empty=True),
        Number("FPOGV"),
    ]
    numbers += (
        [Number("FPOGS", minimum=0), Number("FPOGD", minimum=0)]
        if fixations
        else [Number(needed[5], minimum=0)]
    )
    if sheet is None:
        numbers += [Number("X_ORIGINAL", allow_empty=True), Number("Y_ORIGINAL", allow_empty=True)]
    cols = read_columns(path, header, numbers=numbers, keys=["SESSION_ID", "DICOM_ID"], errors=errors)

    result = DatasetImport(sessions=[], errors=errors)
    labels = dict(zip(CONDITIONS, CONDITIONS, strict=True)) | (label_map or {})
    if sheet is not None:
        for dicom, row in sheet.items():
            reference = labels.get(row.condition) if row.condition is not None else None
            # The mapped label also goes into the attributes ("label"), the dataset-label source of
            # evaluation, which counts when the case's reference label says otherwise.
            attributes = row.attributes | ({"label": reference} if reference is not None else {})
            result.case_labels.append(
                CaseLabelRecord(dicom, reference, {SOURCE: attributes}, sheet_path or path, row.line)
            )
    boxes_path = root / "bounding_boxes.csv"
    if boxes_path.is_file():
        result.annotations = read_bounding_boxes(boxes_path, errors)
    transcripts = read_transcripts(root, set(cols.keys["DICOM_ID"]), errors)
    result.sessions = _sessions(cols, cases, sheet, fixations, fixation_hz, transcripts, result)
    return result


def _sessions(
    cols: Columns,
    cases: CaseLookup,
    sheet: dict[str, SheetRow] | None,
    fixations: bool,
    fixation_hz: float,
    transcripts: dict[str, list[EventRecord]],
    result: DatasetImport,
) -> Iterator[SessionRecord]:
    sessions, dicoms = cols.keys["SESSION_ID"], cols.keys["DICOM_ID"]
    key = cols.codes["SESSION_ID"].astype(np.int64) * max(len(dicoms), 1) + cols.codes["DICOM_ID"]
    # Groups in order of first appearance, rows in file order within each group.
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    groups = np.split(order, bounds) if order.size else []
    groups.sort(key=lambda g: int(g[0]))
    # Raw gaze mapped through the master sheet is built for many sessions at once (a full-size
    # file has ~1,000 sessions of ~1,400 rows: per-session numpy calls would dominate).
    batched = sheet is not None and not fixations
    pending: list[_Pending] = []
    pending_rows = 0
    for idx in groups:
        session_id = sessions[int(cols.codes["SESSION_ID"][idx[0]])]
        dicom_id = dicoms[int(cols.codes["DICOM_ID"][idx[0]])]
        first_line = int(cols.lines[idx[0]])
        row = None
        if sheet is not None:
            row = sheet.get(dicom_id)
            if row is None:
                result.ignored.setdefault(dicom_id, "not in master_sheet.csv (a calibration screen)")
                continue
        case = cases(dicom_id)
        if case is None:
            result.missing_cases.setdefault(dicom_id, f"{cols.path}:{first_line}")
            continue
        if batched:
            assert row is not None
            pending.append(_Pending(idx, case, row, session_id, dicom_id))
            pending_rows += int(idx.shape[0])
            if pending_rows >= BATCH_ROWS:
                yield from _with_events(_sheet_sessions(cols, pending), transcripts)
                pending, pending_rows = [], 0
            continue
        record = _session(cols, idx, case, row, fixations, fixation_hz, session_id, dicom_id, result.errors)
        if record is not None:
            record.events = list(transcripts.get(dicom_id, ()))
            yield record
    if pending:
        yield from _with_events(_sheet_sessions(cols, pending), transcripts)


#: Rows of raw gaze turned into samples together (~14 MB of samples).
BATCH_ROWS = 100_000


@dataclass(frozen=True)
class _Pending:
    idx: np.ndarray
    case: CaseImage
    sheet_row: SheetRow
    session_id: str
    dicom_id: str


def _with_events(
    records: list[SessionRecord], transcripts: dict[str, list[EventRecord]]
) -> list[SessionRecord]:
    for record in records:
        record.events = list(transcripts.get(record.case_ref, ()))
    return records


def _sheet_sessions(cols: Columns, pending: list[_Pending]) -> list[SessionRecord]:
    """Raw-gaze sessions placed through the master sheet, samples built in one pass.

    Every per-session quantity (margins, factors, window) is repeated over that session's rows,
    so each value is computed with exactly the operations ``_session`` applies to one session.
    """
    idx = np.concatenate([p.idx for p in pending])
    counts = np.array([p.idx.shape[0] for p in pending], dtype=np.int64)
    margins = [p.sheet_row.margins for p in pending]
    zoom_x = [(SCREEN_W - m.left - m.right) / p.case.width for m, p in zip(margins, pending, strict=True)]
    zoom_y = [(SCREEN_H - m.top - m.bottom) / p.case.height for m, p in zip(margins, pending, strict=True)]

    def per_row(values: list[float]) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=np.float64), counts)

    num = cols.numbers
    fx, fy, fv = num["FPOGX"][idx], num["FPOGY"][idx], num["FPOGV"][idx]
    valid = (fv == 1) & np.isfinite(fx) & np.isfinite(fy)
    ex, ey = fx * SCREEN_W, fy * SCREEN_H
    left, top = per_row([m.left for m in margins]), per_row([m.top for m in margins])
    zx, zy = per_row(zoom_x), per_row(zoom_y)
    xy = np.stack([(ex - left) / zx, (ey - top) / zy], axis=1)
    width = per_row([float(p.case.width) for p in pending])
    height = per_row([float(p.case.height) for p in pending])
    view = Viewport(
        zx,
        left,
        top,
        SCREEN_W,
        SCREEN_H,
        per_row([p.case.window_center for p in pending]),
        per_row([p.case.window_width for p in pending]),
        zy,
    )
    t_ms = num[next(c for c in TIME_COLUMNS if c in num)][idx] * 1000.0
    samples = build_samples(t_ms, xy, valid, (width, height), view)
    lines = cols.lines[idx]
    records = []
    bounds = np.concatenate([[0], np.cumsum(counts)])
    for k, p in enumerate(pending):
        a, b = int(bounds[k]), int(bounds[k + 1])
        m = margins[k]
        mapping = {"mapping": "master_sheet", "margins": m.__dict__, "zoom_y": zoom_y[k]}
        records.append(_record(cols, samples[a:b], lines[a:b], p.session_id, p.dicom_id, mapping, False, 0.0))
    return records


def _session(
    cols: Columns,
    idx: np.ndarray,
    case: CaseImage,
    sheet_row: SheetRow | None,
    fixations: bool,
    fixation_hz: float,
    session_id: str,
    dicom_id: str,
    errors: list[RowError],
) -> SessionRecord | None:
    num = cols.numbers
    fx, fy, fv = num["FPOGX"][idx], num["FPOGY"][idx], num["FPOGV"][idx]
    lines = cols.lines[idx]
    valid = (fv == 1) & np.isfinite(fx) & np.isfinite(fy)
    ex, ey = fx * SCREEN_W, fy * SCREEN_H
    mapping: dict[str, Any]
    shown = None
    if sheet_row is not None:
        m = sheet_row.margins
        zoom_x = (SCREEN_W - m.left - m.right) / case.width
        zoom_y = (SCREEN_H - m.top - m.bottom) / case.height
        xy = np.stack([(ex - m.left) / zoom_x, (ey - m.top) / zoom_y], axis=1)
        view = Viewport(
            zoom_x, m.left, m.top, SCREEN_W, SCREEN_H, case.window_center, case.window_width, zoom_y
        )
        mapping = {"mapping": "master_sheet", "margins": m.__dict__, "zoom_y": zoom_y}
    else:
        if case.original is None:
            errors.append(
                RowError(
                    cols.path,
                    int(lines[0]),
                    f"DICOM_ID {dicom_id!r}: the original image size is unknown, so X_ORIGINAL/Y_ORIGINAL "
                    "cannot be placed on the stored image; import with master_sheet.csv, give --images "
                    "with the DICOM files, or upload the case from its DICOM",
                )
            )
            return None
        sx, sy = case.width / case.original[0], case.height / case.original[1]
        ox, oy = num["X_ORIGINAL"][idx], num["Y_ORIGINAL"][idx]
        valid &= np.isfinite(ox) & np.isfinite(oy)
        # The data set writes -1 (or -2 after its integer rescaling) for gaze outside the image: the
        # eyes were tracked, the point was not on the image. Valid, flagged off-image.
        shown = (ox >= 0) & (oy >= 0)
        xy = np.stack([ox * sx, oy * sy], axis=1)
        view = Viewport(
            1.0, 0.0, 0.0, float(case.width), float(case.height), case.window_center, case.window_width
        )
        mapping = {"mapping": "X_ORIGINAL/Y_ORIGINAL", "image_scale": [sx, sy]}
    if fixations:
        t_ms, owner = expand_fixations(num["FPOGS"][idx] * 1000.0, num["FPOGD"][idx] * 1000.0, fixation_hz)
    else:
        t_ms = cols.numbers[next(c for c in TIME_COLUMNS if c in num)][idx] * 1000.0
        owner = np.arange(idx.shape[0])
    samples = build_samples(
        t_ms,
        xy[owner],
        valid[owner],
        (case.width, case.height),
        view,
        shown=None if shown is None else shown[owner],
    )
    if sheet_row is None:
        # Screen position straight from the tracker (the drawn image's place is unknown).
        samples[:, 1] = np.where(valid[owner], ex[owner], -1.0)
        samples[:, 2] = np.where(valid[owner], ey[owner], -1.0)
    return _record(cols, samples, lines[owner], session_id, dicom_id, mapping, fixations, fixation_hz)


def _record(
    cols: Columns,
    samples: np.ndarray,
    lines: np.ndarray,
    session_id: str,
    dicom_id: str,
    mapping: dict[str, Any],
    fixations: bool,
    fixation_hz: float,
) -> SessionRecord:
    kind = "fixations" if fixations else "samples"
    info: dict[str, Any] = {"format": SOURCE, "file": cols.path.name, "kind": kind, "session": session_id}
    info |= mapping | {"time": "file clock (s x 1000)"}
    if fixations:
        info["fixation_hz"] = fixation_hz
    return SessionRecord(
        case_ref=dicom_id,
        reader=DEFAULT_READER,
        pseudonymous_reader=True,
        source="import",
        source_info={"import": info, "device": "Gazepoint GP3"},
        display_info={"screen_w": SCREEN_W, "screen_h": SCREEN_H, "dpr": 1},
        samples=samples,
        lines=lines,
        path=cols.path,
        key=f"{SOURCE}:{cols.path.name}:{session_id}:{dicom_id}",
    )
