"""REFLACX (PhysioNet ``reflacx-xray-localization/1.0.0``), as published.

Layout: the data set root holds ``main_data/`` and (a separate download) ``gaze_data/``.
``main_data/metadata_phase_<n>.csv`` lists the readings: ``id``, ``split``,
``eye_tracking_data_discarded``, ``image``, ``dicom_id``, ``subject_id``, ``image_size_x``,
``image_size_y`` (the original image), then one column per label: a certainty 0-5 (0 absent,
1 Unlikely, 2 Less likely, 3 Possibly, 4 Suspicious for/Probably, 5 Consistent with), booleans for
``Support devices`` and ``Quality issue``, free text ``Other``. Each reading ``main_data/<id>/``
has ``fixations.csv`` (``timestamp_start_fixation``/``timestamp_end_fixation`` in seconds from the
start of the dictation audio, ``x_position``/``y_position`` in original image px, and the display
state: ``xmin/ymin/xmax/ymax_shown_from_image``, ``xmin/.../ymax_in_screen_coordinates`` on a
3840x2160 screen, ``window_level``/``window_width`` on a [0, 1] scale),
``anomaly_location_ellipses.csv`` (``xmin, ymin, xmax, ymax, certainty`` and one boolean column per
label), ``chest_bounding_box.csv`` (``xmin, ymin, xmax, ymax``) and
``timestamps_transcription.csv`` (``word, timestamp_start_word, timestamp_end_word``).
``gaze_data/<id>/gaze.csv`` holds the 1,000 Hz samples (``timestamp_sample`` and the same position
and display columns). All files use CRLF line ends.

Per fixation/sample the viewer columns are derived: zoom = shown screen width / shown image width,
the full image rectangle on the screen, screen position = rectangle origin + position x zoom, and
the window in modality units (level and width x ``intensity_scale``; by default 2^bits of the
stored image: 4096 for the 12-bit MIMIC-CXR DICOMs, 256 for 8-bit JPEG/PNG copies). Positions
are rescaled when the stored image has another size than the original. Times keep the data
set's clock; if it starts before 0, all times of the reading (gaze and words) are shifted by the
same amount, recorded as ``source_info.import.t_offset_ms``.
"""

from __future__ import annotations

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
    DatasetImport,
    EventRecord,
    LabelRecord,
    RowError,
    SessionRecord,
)
from server.interchange.table import Table, read_table, require_columns

SOURCE = "reflacx"
SCREEN_W = 3840
SCREEN_H = 2160
SHOWN = ("xmin_shown_from_image", "ymin_shown_from_image", "xmax_shown_from_image", "ymax_shown_from_image")
ON_SCREEN = (
    "xmin_in_screen_coordinates",
    "ymin_in_screen_coordinates",
    "xmax_in_screen_coordinates",
    "ymax_in_screen_coordinates",
)
META_COLUMNS = (
    "id",
    "split",
    "eye_tracking_data_discarded",
    "image",
    "dicom_id",
    "subject_id",
    "image_size_x",
    "image_size_y",
)
BOOLEAN_LABELS = ("Support devices", "Quality issue")
TEXT_LABELS = ("Other",)
#: Certainty at or above which an abnormality counts as present: "Possibly" (3), as the data set's
#: authors count it in their own inter-rater analysis.
DEFAULT_THRESHOLD = 3.0


@dataclass(frozen=True)
class DiagnosisRule:
    """How a reading's certainty labels become one diagnosis.

    Attributes:
        threshold: A certainty label >= threshold is a present abnormality.
        positive: Diagnosis when any abnormality is present.
        negative: Diagnosis otherwise.
    """

    threshold: float = DEFAULT_THRESHOLD
    positive: str = "abnormal"
    negative: str = "normal"


@dataclass(frozen=True)
class Reading:
    rid: str
    dicom: str
    original: tuple[int, int] | None
    line: int
    phase: str
    labels: dict[str, Any]


def _truth(cell: str) -> bool:
    return cell.strip().lower() in ("true", "1", "1.0")


def _metadata(folder: Path, errors: list[RowError]) -> tuple[dict[str, Reading], Path | None]:
    """reading id -> reading, from every ``metadata_phase_*.csv`` (discarded readings left out)."""
    found: dict[str, Reading] = {}
    last = None
    for path in sorted(folder.glob("metadata_phase_*.csv")):
        last = path
        table = read_table(path, errors)
        if table is None or not require_columns(table, ["id", "dicom_id"], errors):
            continue
        found |= _phase(table, path.stem.removeprefix("metadata_phase_"), errors)
    return found, last


def _phase(table: Table, phase: str, errors: list[RowError]) -> dict[str, Reading]:
    label_cols = [c for c in table.header if c not in META_COLUMNS]
    text = {c: table.text(c) for c in table.header}
    found = {}
    for i, line in enumerate(table.lines):
        if "eye_tracking_data_discarded" in text and _truth(text["eye_tracking_data_discarded"][i]):
            continue
        size = None
        if table.has("image_size_x", "image_size_y"):
            try:
                size = (int(float(text["image_size_x"][i])), int(float(text["image_size_y"][i])))
            except ValueError:
                errors.append(RowError(table.path, line, "image_size_x/image_size_y is not a number"))
                continue
        labels: dict[str, Any] = {"certainty": {}, "phase": phase}
        if "split" in text:
            labels["split"] = text["split"][i]
        for col in label_cols:
            cell = text[col][i]
            if col in BOOLEAN_LABELS:
                labels[col.lower().replace(" ", "_")] = _truth(cell)
            elif col in TEXT_LABELS:
                labels[col.lower()] = cell
            elif cell.strip() != "":
                try:
                    labels["certainty"][col] = float(cell)
                except ValueError:
                    errors.append(
                        RowError(table.path, line, f"column {col}: {cell!r} is not a certainty (0-5)")
                    )
        rid = text["id"][i]
        found[rid] = Reading(rid, text["dicom_id"][i], size, line, phase, labels)
    return found


def _layout(path: Path) -> tuple[Path, Path, list[str] | None]:
    """(data set root, main_data folder, reading ids or None for all) for a root, main_data or reading."""
    if (path / "main_data").is_dir():
        return path, path / "main_data", None
    if (path / "fixations.csv").is_file() and not list(path.glob("metadata_phase_*.csv")):
        return path.parent.parent, path.parent, [path.name]
    return path.parent, path, None


def parse(
    path: Path,
    cases: CaseLookup,
    *,
    fixation_hz: float = 60.0,
    intensity_scale: float | None = None,
    raw_gaze: bool = False,
    rule: DiagnosisRule | None = None,
) -> DatasetImport:
    """Sessions, diagnoses and annotations of a REFLACX root, ``main_data`` or one reading folder.

    Args:
        path: The data set root (with ``main_data/``), ``main_data`` itself, or ``main_data/<id>``.
        cases: Case lookup by ``dicom_id``.
        fixation_hz: Rate at which fixations are stored as samples.
        intensity_scale: Modality units per unit of the data set's window level/width (default:
            2^bits of each case's stored image).
        raw_gaze: Import ``gaze_data/<id>/gaze.csv`` (1,000 Hz samples) instead of fixations.
        rule: Certainty labels -> diagnosis.
    """
    errors: list[RowError] = []
    rule = rule or DiagnosisRule()
    root, main, ids = _layout(path)
    meta, _ = _metadata(main, errors)
    result = DatasetImport(sessions=[], errors=errors)
    if not meta and not errors:
        errors.append(RowError(main, None, "no metadata_phase_*.csv with readings (id, dicom_id) found"))
    if ids is None:
        ids = sorted(rid for rid in meta if (main / rid / "fixations.csv").is_file())
        if meta and not ids:
            errors.append(RowError(main, None, "none of the listed readings has a <id>/fixations.csv"))
    for rid in ids:
        if rid not in meta:
            errors.append(RowError(main / rid, None, f"reading {rid!r} is not in any metadata_phase_*.csv"))
    if raw_gaze and not (root / "gaze_data").is_dir():
        errors.append(
            RowError(root, None, "no gaze_data/ folder beside main_data/ (download it for raw gaze)")
        )
    if errors:
        return result
    readings = [meta[rid] for rid in ids]
    for reading in readings:
        result.annotations += _annotations(main / reading.rid, reading, raw_gaze, errors)
    result.sessions = _sessions(
        readings, main, root, cases, fixation_hz, intensity_scale, raw_gaze, rule, result
    )
    return result


def _session_key(rid: str, raw_gaze: bool) -> str:
    return f"{SOURCE}:{rid}" + (":gaze" if raw_gaze else "")


def _annotations(
    folder: Path, reading: Reading, raw_gaze: bool, errors: list[RowError]
) -> list[AnnotationRecord]:
    found: list[AnnotationRecord] = []
    session_key = _session_key(reading.rid, raw_gaze)
    chest = folder / "chest_bounding_box.csv"
    if chest.is_file():
        table = read_table(chest, errors)
        if table is not None and require_columns(table, ["xmin", "ymin", "xmax", "ymax"], errors):
            for i, line in enumerate(table.lines):
                try:
                    box = tuple(float(table.text(c)[i]) for c in ("xmin", "ymin", "xmax", "ymax"))
                except ValueError as exc:
                    errors.append(RowError(chest, line, f"not a number: {exc}"))
                    continue
                found.append(
                    AnnotationRecord(
                        reading.dicom, "box", "chest", box, reading.original, SOURCE,  # type: ignore[arg-type]
                        f"{SOURCE}:{reading.rid}:chest:{i}", session_key, {"reading": reading.rid},
                    )
                )  # fmt: skip
    ellipses = folder / "anomaly_location_ellipses.csv"
    if ellipses.is_file():
        table = read_table(ellipses, errors)
        if table is not None and require_columns(
            table, ["xmin", "ymin", "xmax", "ymax", "certainty"], errors
        ):
            label_cols = [c for c in table.header if c not in ("xmin", "ymin", "xmax", "ymax", "certainty")]
            for i, line in enumerate(table.lines):
                try:
                    box = tuple(float(table.text(c)[i]) for c in ("xmin", "ymin", "xmax", "ymax"))
                    certainty = float(table.text("certainty")[i])
                except ValueError as exc:
                    errors.append(RowError(ellipses, line, f"not a number: {exc}"))
                    continue
                names = [c for c in label_cols if _truth(table.text(c)[i])]
                found.append(
                    AnnotationRecord(
                        reading.dicom, "ellipse", ", ".join(names) or "abnormality", box,  # type: ignore[arg-type]
                        reading.original, SOURCE, f"{SOURCE}:{reading.rid}:ellipse:{i}", session_key,
                        {"reading": reading.rid, "certainty": certainty, "labels": names},
                    )
                )  # fmt: skip
    return found


def _words(path: Path, errors: list[RowError]) -> list[EventRecord]:
    if not path.is_file():
        return []
    table = read_table(path, errors)
    cols = ["word", "timestamp_start_word", "timestamp_end_word"]
    if table is None or not require_columns(table, cols, errors):
        return []
    words = []
    for i, line in enumerate(table.lines):
        try:
            start, end = float(table.text(cols[1])[i]), float(table.text(cols[2])[i])
        except ValueError as exc:
            errors.append(RowError(path, line, f"not a number: {exc}"))
            continue
        words.append(
            EventRecord("transcript", start * 1000.0, end * 1000.0, table.text("word")[i], {"source": SOURCE})
        )
    return words


def _diagnosis(reading: Reading, rule: DiagnosisRule) -> LabelRecord:
    certainty: dict[str, float] = reading.labels["certainty"]
    top = max(certainty.values(), default=0.0)
    present = top >= rule.threshold
    return LabelRecord(
        label=rule.positive if present else rule.negative,
        # The most certain abnormality's certainty on a 0..1 scale (its complement for "normal").
        confidence=top / 5.0 if present else 1.0 - top / 5.0,
        attributes={SOURCE: reading.labels | {"threshold": rule.threshold}},
    )


def _sessions(
    readings: list[Reading],
    main: Path,
    root: Path,
    cases: CaseLookup,
    fixation_hz: float,
    intensity_scale: float | None,
    raw_gaze: bool,
    rule: DiagnosisRule,
    result: DatasetImport,
) -> Iterator[SessionRecord]:
    for reading in readings:
        case = cases(reading.dicom)
        if case is None:
            result.missing_cases.setdefault(
                reading.dicom, f"{main}/metadata_phase_{reading.phase}.csv:{reading.line}"
            )
            continue
        path = (
            root / "gaze_data" / reading.rid / "gaze.csv"
            if raw_gaze
            else main / reading.rid / "fixations.csv"
        )
        scale = intensity_scale if intensity_scale is not None else float(2**case.bits_stored)
        record = _reading(path, reading, case, fixation_hz, scale, raw_gaze, result.errors)
        if record is None:
            continue
        record.label = _diagnosis(reading, rule)
        record.events = _words(main / reading.rid / "timestamps_transcription.csv", result.errors)
        shift = -min(0.0, float(record.samples[0, 0]), *(e.t_ms for e in record.events))
        if shift > 0:
            # Keep every time of the reading on one clock, moved so that none is negative.
            record.samples[:, 0] += shift
            for event in record.events:
                event.t_ms += shift
                event.t_end_ms = None if event.t_end_ms is None else event.t_end_ms + shift
        record.source_info["import"]["t_offset_ms"] = shift
        yield record


def _reading(
    path: Path,
    reading: Reading,
    case: CaseImage,
    fixation_hz: float,
    intensity_scale: float,
    raw_gaze: bool,
    errors: list[RowError],
) -> SessionRecord | None:
    before = len(errors)
    header = read_header(path, errors)
    if header is None:
        return None
    x_col = next((c for c in ("x_position", "average_x_position") if c in header), "x_position")
    y_col = next((c for c in ("y_position", "average_y_position") if c in header), "y_position")
    times = ["timestamp_sample"] if raw_gaze else ["timestamp_start_fixation", "timestamp_end_fixation"]
    missing = [c for c in (*times, x_col, y_col) if c not in header]
    if missing:
        errors.append(RowError(path, 1, f"missing column(s) {', '.join(missing)}"))
        return None
    display = all(c in header for c in (*SHOWN, *ON_SCREEN))
    windowed = "window_level" in header and "window_width" in header
    numbers = [Number(t) for t in times] + [Number(x_col, allow_empty=True), Number(y_col, allow_empty=True)]
    numbers += [Number(c) for c in (*SHOWN, *ON_SCREEN)] if display else []
    numbers += [Number("window_level"), Number("window_width", minimum=0)] if windowed else []
    cols = read_columns(path, header, numbers=numbers, errors=errors)
    n = len(cols)
    num = cols.numbers
    if not raw_gaze:
        start, end = num[times[0]], num[times[1]]
        for i in np.flatnonzero(np.isfinite(start) & np.isfinite(end) & (end < start)):
            errors.append(
                RowError(
                    path, int(cols.lines[i]), "timestamp_end_fixation is before timestamp_start_fixation"
                )
            )
    if len(errors) > before:
        return None
    if n == 0:
        errors.append(RowError(path, None, "no fixations" if not raw_gaze else "no samples"))
        return None
    return _record(
        path, cols, reading, case, fixation_hz, intensity_scale, raw_gaze, display, windowed, (x_col, y_col)
    )


def _record(
    path: Path,
    cols: Columns,
    reading: Reading,
    case: CaseImage,
    fixation_hz: float,
    intensity_scale: float,
    raw_gaze: bool,
    display: bool,
    windowed: bool,
    xy_cols: tuple[str, str],
) -> SessionRecord:
    num, n = cols.numbers, len(cols)
    x, y = num[xy_cols[0]], num[xy_cols[1]]
    w0, h0 = reading.original or (case.width, case.height)
    # Original image pixels -> stored image pixels (the stored copy may be resized).
    sx, sy = case.width / w0, case.height / h0
    if raw_gaze:
        t_ms, owner = num["timestamp_sample"] * 1000.0, np.arange(n)
    else:
        start, end = num["timestamp_start_fixation"], num["timestamp_end_fixation"]
        t_ms, owner = expand_fixations(start * 1000.0, (end - start) * 1000.0, fixation_hz)
    valid = np.isfinite(x) & np.isfinite(y)
    xy = np.stack([x * sx, y * sy], axis=1)
    if display:
        shown = [num[c] for c in SHOWN]
        screen = [num[c] for c in ON_SCREEN]
        zoom = (screen[2] - screen[0]) / np.maximum((shown[2] - shown[0]) * sx, 1e-9)
        left = screen[0] - shown[0] * sx * zoom
        top = screen[1] - shown[1] * sy * zoom
        inside = (x >= shown[0]) & (x <= shown[2]) & (y >= shown[1]) & (y <= shown[3])
        placement: tuple[Any, ...] = (zoom[owner], left[owner], top[owner], float(SCREEN_W), float(SCREEN_H))
    else:
        inside = np.ones(n, dtype=bool)
        placement = (1.0, 0.0, 0.0, float(case.width), float(case.height))
    wl_c = num["window_level"] * intensity_scale if windowed else np.full(n, case.window_center)
    wl_w = num["window_width"] * intensity_scale if windowed else np.full(n, case.window_width)
    zoom_o, left_o, top_o, screen_w, screen_h = placement
    view = Viewport(zoom_o, left_o, top_o, screen_w, screen_h, wl_c[owner], wl_w[owner])
    samples = build_samples(
        t_ms, xy[owner], valid[owner], (case.width, case.height), view, shown=inside[owner]
    )
    kind = "samples" if raw_gaze else "fixations"
    info: dict[str, Any] = {
        "format": SOURCE,
        "reading": reading.rid,
        "file": str(Path(path.parent.name) / path.name),
        "kind": kind,
        "intensity_scale": intensity_scale,
        "image_scale": [sx, sy],
    }
    if not raw_gaze:
        info["fixation_hz"] = fixation_hz
    return SessionRecord(
        case_ref=reading.dicom,
        reader=f"{SOURCE}-{reading.rid}",
        pseudonymous_reader=True,
        source="import",
        source_info={"import": info, "device": "EyeLink 1000"},
        display_info={
            "screen_w": SCREEN_W if display else case.width,
            "screen_h": SCREEN_H if display else case.height,
            "dpr": 1,
        },
        samples=samples,
        lines=cols.lines[owner],
        path=path,
        key=_session_key(reading.rid, raw_gaze),
    )
