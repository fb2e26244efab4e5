"""Writers of small files in the public data sets' published layouts, for the import tests.

Headers, units and line ends follow the data sets as published:
- EGD-CXR: PhysioNet "Eye Gaze Data for Chest X-rays" 1.0.0 (egd-cxr), files ``fixations.csv``,
  ``eye_gaze.csv``, ``master_sheet.csv``, ``bounding_boxes.csv`` and
  ``audio_segmentation_transcripts/<dicom_id>/transcript.json``; column meanings from the data
  set's paper (Karargyris et al., Sci Data 2021, Table 2) and its processing scripts
  (github.com/cxr-eye-gaze/eye-gaze-dataset, DataProcessing/).
- REFLACX: PhysioNet "REFLACX" 1.0.0, ``main_data/metadata_phase_<n>.csv``, ``main_data/<id>/*.csv``
  and ``gaze_data/<id>/gaze.csv``, written by the data set's ``create_main_table.py``
  (github.com/ricbl/eyetracking) with CRLF line ends.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# fixations.csv and eye_gaze.csv share this Gazepoint layout (times in seconds, FPOG* fractions of
# the 1920x1080 screen, X_ORIGINAL/Y_ORIGINAL in original DICOM pixels).
EGD_COLUMNS = [
    "SESSION_ID", "MEDIA_ID", "DICOM_ID", "CNT", "Time (in secs)", "TIMETICK(f=10000000)",
    "FPOGX", "FPOGY", "FPOGS", "FPOGD", "FPOGID", "FPOGV", "BPOGX", "BPOGY", "BPOGV",
    "LPCX", "LPCY", "LPD", "LPS", "LPV", "RPCX", "RPCY", "RPD", "RPS", "RPV",
    "BKID", "BKDUR", "BKPMIN", "LPMM", "LPMMV", "RPMM", "RPMMV", "SACCADE_MAG", "SACCADE_DIR",
    "VID_FRAME", "X_ORIGINAL", "Y_ORIGINAL",
]  # fmt: skip
MASTER_SHEET_COLUMNS = [
    "dicom_id", "path", "study_id", "patient_id", "stay_id", "gender", "anchor_age",
    "image_top_pad", "image_bottom_pad", "image_left_pad", "image_right_pad",
    "dx1", "dx1_icd", "dx2", "dx2_icd", "dx3", "dx3_icd", "dx4", "dx4_icd", "dx5", "dx5_icd",
    "dx6", "dx6_icd", "dx7", "dx7_icd", "dx8", "dx8_icd", "dx9", "dx9_icd", "normal_reports",
    "Normal", "CHF", "pneumonia", "consolidation", "enlarged_cardiac_silhouette",
    "linear__patchy_atelectasis", "lobar__segmental_collapse",
    "not_otherwise_specified_opacity___pleural__parenchymal_opacity__",
    "pleural_effusion_or_thickening", "pulmonary_edema__hazy_opacity", "normal_anatomically",
    "elevated_hemidiaphragm", "hyperaeration", "vascular_redistribution", "atelectasis__chx",
    "cardiomegaly__chx", "consolidation__chx", "edema__chx", "enlarged_cardiomediastinum__chx",
    "fracture__chx", "lung_lesion__chx", "lung_opacity__chx", "no_finding__chx",
    "pleural_effusion__chx", "pleural_other__chx", "pneumonia__chx", "pneumothorax__chx",
    "support_devices__chx", "cxr_exam_indication",
]  # fmt: skip
BBOX_COLUMNS = ["dicom_id", "bbox_name", "x1", "x2", "y1", "y2"]
REFLACX_COLUMNS = [
    "timestamp_start_fixation", "timestamp_end_fixation", "x_position", "y_position",
    "pupil_area_normalized",
    "angular_resolution_x_pixels_per_degree", "angular_resolution_y_pixels_per_degree",
    "window_width", "window_level",
    "xmin_shown_from_image", "ymin_shown_from_image", "xmax_shown_from_image", "ymax_shown_from_image",
    "xmin_in_screen_coordinates", "ymin_in_screen_coordinates", "xmax_in_screen_coordinates",
    "ymax_in_screen_coordinates",
]  # fmt: skip
REFLACX_GAZE_COLUMNS = ["timestamp_sample", *REFLACX_COLUMNS[2:]]
REFLACX_META_COLUMNS = [
    "id", "split", "eye_tracking_data_discarded", "image", "dicom_id", "subject_id",
    "image_size_x", "image_size_y",
]  # fmt: skip
# Phase 3 labels (certainty 0-5, Support devices/Quality issue booleans, Other text), sorted as written.
REFLACX_LABELS = [
    "Abnormal mediastinal contour", "Acute fracture", "Atelectasis", "Consolidation",
    "Enlarged cardiac silhouette", "Enlarged hilum", "Groundglass opacity", "Hiatal hernia",
    "High lung volume / emphysema", "Interstitial lung disease", "Lung nodule or mass",
    "Pleural abnormality", "Pneumothorax", "Pulmonary edema", "Support devices", "Other",
]  # fmt: skip


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    """A CSV with CRLF line ends, as both data sets publish them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def egd_row(session: str, dicom: str, t: float, fx: float | str, fy: float | str, valid: int = 1,
            start: float | None = None, duration: float = 0.0,
            original: tuple[float, float] = (-1, -1)) -> list[Any]:  # fmt: skip
    """One EGD-CXR row: ``t`` = ``Time (in secs)``; fixations start at ``start`` (FPOGS)."""
    s = t if start is None else start
    eyes = [0.38, 0.59, 18.3, 1.05, 1, 0.64, 0.6, 18.2, 1.06, 1, 0, 0.0, 20, 3.5, 1, 3.56, 1, 0.0, 0.0, 0.0]
    return [
        session,
        0,
        dicom,
        1,
        t,
        int(t * 1e7),
        fx,
        fy,
        s,
        duration,
        1,
        valid,
        fx,
        fy,
        valid,
        *eyes,
        *original,
    ]


def master_sheet(path: Path, rows: dict[str, dict[str, Any]]) -> Path:
    """``master_sheet.csv``: per dicom id a dict with ``margins`` (top, bottom, left, right) and
    optional ``condition`` ("Normal" | "CHF" | "pneumonia") and label columns."""
    lines = []
    for dicom, spec in rows.items():
        top, bottom, left, right = spec["margins"]
        values: dict[str, Any] = {c: "" for c in MASTER_SHEET_COLUMNS}
        values |= {"dicom_id": dicom, "path": f"files/p10/p10000001/s50000001/{dicom}.dcm", "gender": "F",
                   "anchor_age": "20 - 30", "image_top_pad": top, "image_bottom_pad": bottom,
                   "image_left_pad": left, "image_right_pad": right, "normal_reports": 0,
                   "cxr_exam_indication": "___F with dyspnea,\nr/o pneumonia"}  # fmt: skip
        for condition in ("Normal", "CHF", "pneumonia"):
            values[condition] = int(spec.get("condition") == condition)
        values |= spec.get("labels", {})
        lines.append([values[c] for c in MASTER_SHEET_COLUMNS])
    return write_csv(path, MASTER_SHEET_COLUMNS, lines)


def transcript(root: Path, dicom: str, phrases: list[tuple[str, float, float]]) -> Path:
    """``audio_segmentation_transcripts/<dicom>/transcript.json``."""
    path = root / "audio_segmentation_transcripts" / dicom / "transcript.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "full_text": " ".join(p for p, _, _ in phrases),
        "time_stamped_text": [{"phrase": p, "begin_time": b, "end_time": e} for p, b, e in phrases],
    }
    path.write_text(json.dumps(data, indent=4), encoding="utf-8")
    return path


Rect = tuple[int, int, int, int]


def reflacx_row(start: float, end: float, x: float | str, y: float | str, shown: Rect, screen: Rect,
                level: float = 0.5, width: float = 1.0) -> list[Any]:  # fmt: skip
    return [start, end, x, y, 1.0, 90, 90, width, level, *shown, *screen]


def reflacx_meta_row(rid: str, dicom: str, size: tuple[int, int], certainty: dict[str, float] | None = None,
                     discarded: bool = False, devices: bool = False) -> list[Any]:  # fmt: skip
    labels: dict[str, Any] = {name: "" if name == "Other" else 0 for name in REFLACX_LABELS}
    labels["Support devices"] = devices
    labels |= certainty or {}
    return [rid, "train", discarded, f"physionet.org/files/mimic-cxr/2.0.0/files/p1/p1/s1/{dicom}.dcm",
            dicom, "10000001", *size, *(labels[n] for n in REFLACX_LABELS)]  # fmt: skip
