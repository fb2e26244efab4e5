"""EGD-CXR import: the data set's screen-to-image mapping, sessions, fixations, broken files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.data
import pytest
from sqlalchemy import func, select

from server.interchange.importer import ImportReport
from server.interchange.records import ImportFailed
from server.interchange.service import ImportFormat, ImportOptions, import_gaze
from server.models import Case, ReadingSession, SessionEvent, SessionStatus, User
from server.reading.samples import COLUMN, FLAG_EYE, FLAG_ON_IMAGE, FLAG_VALID
from server.reading.service import session_samples
from tests.server.interchange.conftest import World
from tests.server.interchange.files import (
    BBOX_COLUMNS,
    EGD_COLUMNS,
    egd_row,
    master_sheet,
    transcript,
    write_csv,
)

# dcm-a is 200 x 100 px; drawn 1200 x 600 (zoom 6) inside margins of 240 (top/bottom), 360 (left/right).
MARGINS = {"dcm-a": {"margins": (240, 240, 360, 360)}, "dcm-b": {"margins": (0, 0, 720, 720)}}


def screen_fraction(
    ix: float, iy: float, top: int = 240, left: int = 360, zoom: float = 6.0
) -> tuple[float, float]:
    """FPOGX/FPOGY of image point (ix, iy) of dcm-a, by the data set's own geometry."""
    return (left + ix * zoom) / 1920, (top + iy * zoom) / 1080


def sessions_of(world: World) -> list[ReadingSession]:
    with world.db.session() as session:
        return list(session.scalars(select(ReadingSession).order_by(ReadingSession.id)))


def run(world: World, path: Path, **options: Any) -> ImportReport:
    with world.db.session() as session:
        fmt = ImportFormat.egd_cxr
        return import_gaze(
            session, fmt, path, dataset=world.dataset, reader="alice", options=ImportOptions(**options)
        )


def test_eye_gaze_maps_screen_fractions_to_image_pixels(world: World, tmp_path: Path) -> None:
    master_sheet(tmp_path / "master_sheet.csv", MARGINS)
    points = [(50.0, 25.0), (199.5, 0.25), (10.0, 90.0)]
    rows = [egd_row("S1", "dcm-a", 100.0 + i / 30, *screen_fraction(x, y)) for i, (x, y) in enumerate(points)]
    rows.append(egd_row("S1", "dcm-a", 100.2, 0.05, 0.5))  # left of the image: kept, flagged off-image
    rows.append(egd_row("S1", "dcm-a", 100.3, 0.0, 0.0, valid=0))  # tracker lost the eyes
    rows.append(egd_row("S1", "dcm-b", 200.0, 0.5, 0.5))  # a second image in the same recording
    report = run(world, write_csv(tmp_path / "eye_gaze.csv", EGD_COLUMNS, rows))

    assert len(report.created) == 2 and report.samples == 6
    first, second = sessions_of(world)
    assert first.case_id == world.case_ids["dcm-a"] and second.case_id == world.case_ids["dcm-b"]
    assert first.status == SessionStatus.finished and first.reader_id == world.users.reader.id
    assert first.source == "import" and first.source_info["import"]["format"] == "egd-cxr"
    with world.db.session() as session:
        a = session_samples(session, first.id)
        b = session_samples(session, second.id)
    np.testing.assert_allclose(a[:3, COLUMN["image_x"]], [p[0] for p in points], atol=1e-9)
    np.testing.assert_allclose(a[:3, COLUMN["image_y"]], [p[1] for p in points], atol=1e-9)
    # Times keep the file's clock (Gazepoint time, seconds) so transcripts stay aligned.
    np.testing.assert_allclose(
        a[:, COLUMN["t_ms"]], [100000, 100000 + 1000 / 30, 100000 + 2000 / 30, 100200, 100300], atol=1e-6
    )
    flags = a[:, COLUMN["flags"]].astype(int)
    assert all(
        f & (FLAG_VALID | FLAG_ON_IMAGE | FLAG_EYE) == FLAG_VALID | FLAG_ON_IMAGE | FLAG_EYE
        for f in flags[:3]
    )
    assert flags[3] & FLAG_VALID and not flags[3] & FLAG_ON_IMAGE
    assert a[3, COLUMN["image_x"]] == pytest.approx((0.05 * 1920 - 360) / 6)
    assert not flags[4] & FLAG_VALID and a[4, COLUMN["image_x"]] == -1 and a[4, COLUMN["screen_x"]] == -1
    # The viewer columns describe the data set's display: screen point = image rect origin + image px x zoom.
    assert a[0, COLUMN["zoom"]] == pytest.approx(6.0) and a[0, COLUMN["img_left"]] == 360
    assert a[0, COLUMN["screen_x"]] == pytest.approx(360 + 50 * 6) and a[0, COLUMN["screen_w"]] == 1920
    # dcm-b (120 x 160) fills 480 x 1080 between 720 px margins: the screen centre is its centre.
    np.testing.assert_allclose(b[0, [COLUMN["image_x"], COLUMN["image_y"]]], [60, 80], atol=1e-9)


def test_fixations_cover_their_duration(world: World, tmp_path: Path) -> None:
    master_sheet(tmp_path / "master_sheet.csv", MARGINS)
    rows = [
        egd_row("S1", "dcm-a", 5.0, *screen_fraction(20, 20), start=5.0, duration=0.25),
        egd_row("S1", "dcm-a", 5.3, *screen_fraction(150, 60), start=5.3, duration=0.1),
    ]
    run(world, write_csv(tmp_path / "fixations.csv", EGD_COLUMNS, rows), fixation_hz=100.0)
    (reading,) = sessions_of(world)
    with world.db.session() as session:
        s = session_samples(session, reading.id)
    t = s[:, COLUMN["t_ms"]]
    first = np.isclose(s[:, COLUMN["image_x"]], 20)
    # 0, 10, ..., 250 ms for the first fixation; 300 ... 400 ms for the second.
    np.testing.assert_allclose(t[first], np.arange(5000, 5251, 10), atol=1e-6)
    np.testing.assert_allclose(t[~first], np.arange(5300, 5401, 10), atol=1e-6)
    assert reading.source_info["import"]["kind"] == "fixations"


def test_without_master_sheet_uses_the_mapped_columns(world: World, tmp_path: Path) -> None:
    rows = [
        egd_row("S9", "dcm-c", 1.0, 0.5, 0.5, original=(24, 68)),
        egd_row("S9", "dcm-c", 1.1, 0.9, 0.9, original=(-1, -1)),
        egd_row("S9", "dcm-c", 1.2, 0.0, 0.0, valid=0, original=(-2, -2)),
    ]
    path = write_csv(tmp_path / "eye_gaze.csv", EGD_COLUMNS, rows)
    # The stored PNG's original size is unknown: a clear error, not off-image gaze.
    with pytest.raises(ImportFailed, match="original image size is unknown"):
        run(world, path)
    # The data set's DICOM (128 x 128) gives it: X_ORIGINAL/Y_ORIGINAL are halved onto the 64 x 64 image.
    images = tmp_path / "files"
    images.mkdir()
    dicom = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    dicom.save_as(images / "dcm-c.dcm")
    run(world, path, images=images)
    (reading,) = sessions_of(world)
    with world.db.session() as session:
        s = session_samples(session, reading.id)
    assert s[0, COLUMN["image_x"]] == 12 and s[0, COLUMN["image_y"]] == 34
    flags = s[:, COLUMN["flags"]].astype(int)
    # -1: gaze tracked but off the image (valid, not on-image); FPOGV 0: tracker loss.
    assert flags[0] & FLAG_ON_IMAGE and flags[1] & FLAG_VALID and not flags[1] & FLAG_ON_IMAGE
    assert not flags[2] & FLAG_VALID
    assert s[1, COLUMN["screen_x"]] == pytest.approx(0.9 * 1920)


def test_reimport_is_skipped(world: World, tmp_path: Path) -> None:
    master_sheet(tmp_path / "master_sheet.csv", MARGINS)
    path = write_csv(tmp_path / "eye_gaze.csv", EGD_COLUMNS, [egd_row("S1", "dcm-a", 1.0, 0.5, 0.5)])
    assert len(run(world, path).created) == 1
    again = run(world, path)
    assert again.created == [] and len(again.skipped) == 1
    assert len(sessions_of(world)) == 1


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        (egd_row("S1", "dcm-a", 2.0, "left", 0.5), "FPOGX: 'left' is not a number"),
        (egd_row("S1", "dcm-a", 1.5, 0.5, 0.5), "time goes backwards"),
        (egd_row("S1", "dcm-a", 2.0, 0.5, "nan"), "FPOGY: 'nan' is not a finite number"),
    ],
)
def test_broken_rows_are_reported_by_line_and_nothing_is_imported(
    world: World, tmp_path: Path, bad_row: list[object], message: str
) -> None:
    master_sheet(tmp_path / "master_sheet.csv", MARGINS)
    good = [
        egd_row("S0", "dcm-b", 0.5, 0.5, 0.5),
        egd_row("S1", "dcm-a", 1.0, 0.5, 0.5),
        egd_row("S1", "dcm-a", 1.7, 0.5, 0.5),
    ]
    path = write_csv(
        tmp_path / "eye_gaze.csv", EGD_COLUMNS, [*good, bad_row, egd_row("S1", "dcm-a", 3.0, 0.5, 0.5)]
    )
    with pytest.raises(ImportFailed) as failed:
        run(world, path)
    # Header = line 1, so the fourth data row is line 5.
    assert any(e.line == 5 and message in e.message for e in failed.value.errors), failed.value.errors
    with world.db.session() as session:
        assert session.scalar(select(func.count()).select_from(ReadingSession)) == 0


def test_missing_columns_and_unknown_reader(world: World, tmp_path: Path) -> None:
    master_sheet(tmp_path / "master_sheet.csv", MARGINS)
    path = write_csv(
        tmp_path / "eye_gaze.csv",
        ["SESSION_ID", "DICOM_ID", "Time (in secs)", "FPOGX"],
        [["S", "dcm-a", 1, 0.5]],
    )
    with pytest.raises(ImportFailed, match="missing column"):
        run(world, path)
    good = write_csv(tmp_path / "eye_gaze.csv", EGD_COLUMNS, [egd_row("S1", "dcm-a", 1.0, 0.5, 0.5)])
    with world.db.session() as session, pytest.raises(ImportFailed, match="no user 'zed'"):
        import_gaze(session, ImportFormat.egd_cxr, good, dataset=world.dataset, reader="zed")


def test_published_folder_with_labels_boxes_transcripts_and_missing_images(
    world: World, tmp_path: Path
) -> None:
    master_sheet(
        tmp_path / "master_sheet.csv",
        {
            "dcm-a": {"margins": (240, 240, 360, 360), "condition": "CHF",
                      "labels": {"enlarged_cardiac_silhouette": 1, "cardiomegaly__chx": -1}},
            "dcm-b": {"margins": (0, 0, 720, 720), "condition": "Normal"},
            "dcm-gone": {"margins": (0, 0, 0, 0), "condition": "pneumonia"},
        },
    )  # fmt: skip
    rows = [
        egd_row("1", "dcm-a", 0.7, *screen_fraction(20, 20), start=0.1, duration=0.6),
        egd_row("1", "dcm-a", 1.2, *screen_fraction(150, 60), start=1.0, duration=0.2),
        egd_row("1", "calib-0001", 1.5, 0.5, 0.5, start=1.4, duration=0.1),  # calibration screen
        egd_row("1", "dcm-gone", 2.5, 0.5, 0.5, start=2.0, duration=0.5),  # image without a case
        egd_row("2", "dcm-b", 0.5, 0.5, 0.5, start=0.2, duration=0.3),
    ]
    write_csv(tmp_path / "fixations.csv", EGD_COLUMNS, rows)
    write_csv(
        tmp_path / "bounding_boxes.csv",
        BBOX_COLUMNS,
        [["dcm-a", "cardiac silhouette", 10.0, 30.0, 5.0, 15.0]],
    )
    transcript(tmp_path, "dcm-a", [("Heart is enlarged.", 0.5, 1.6)])
    label_map = {"Normal": "normal", "CHF": "abnormal", "pneumonia": "abnormal"}
    with world.db.session() as session:
        report = import_gaze(
            session, ImportFormat.egd_cxr, tmp_path, dataset=world.dataset, reader=None,
            options=ImportOptions(label_map=label_map),
        )  # fmt: skip
    assert len(report.created) == 2 and report.readers_created == ["egd-cxr-radiologist-1"]
    assert list(report.missing_cases) == ["dcm-gone"] and list(report.ignored) == ["calib-0001"]
    assert report.events == 1
    # The box needs the original size, which a PNG upload does not tell: skipped and listed.
    assert report.annotations == 0 and len(report.annotations_skipped) == 1
    with world.db.session() as session:
        a = session.get(Case, world.case_ids["dcm-a"])
        b = session.get(Case, world.case_ids["dcm-b"])
        assert a is not None and b is not None
        assert (a.reference_label, b.reference_label) == ("abnormal", "normal")
        assert (
            a.attributes["egd-cxr"]["condition"] == "CHF" and a.attributes["egd-cxr"]["label"] == "abnormal"
        )
        assert a.attributes["egd-cxr"]["findings"]["enlarged_cardiac_silhouette"] == 1
        assert a.attributes["egd-cxr"]["chexpert"]["cardiomegaly"] == -1
        reading = session.scalars(select(ReadingSession).where(ReadingSession.case_id == a.id)).one()
        reader = session.get(User, reading.reader_id)
        assert reader is not None and reader.username == "egd-cxr-radiologist-1"
        (event,) = session.scalars(select(SessionEvent).where(SessionEvent.session_id == reading.id)).all()
        samples = session_samples(session, reading.id)
    # The phrase (0.5-1.6 s) lies on the samples' clock: fixations from 100 ms to 1,200 ms.
    assert (event.t_ms, event.t_end_ms, event.text) == (500.0, 1600.0, "Heart is enlarged.")
    assert samples[0, COLUMN["t_ms"]] == pytest.approx(100) and samples[-1, COLUMN["t_ms"]] == pytest.approx(
        1200
    )
    with (
        world.db.session() as session,
        pytest.raises(ImportFailed, match="no case with external id 'dcm-gone'"),
    ):
        import_gaze(
            session, ImportFormat.egd_cxr, tmp_path, dataset=world.dataset, reader=None,
            options=ImportOptions(label_map=label_map, strict_cases=True),
        )  # fmt: skip


def test_separate_x_and_y_factors(world: World, tmp_path: Path) -> None:
    # dcm-b (120 x 160) between margins top 40, bottom 0, left 600, right 600: 720 / 120 = 6 across,
    # 1040 / 160 = 6.5 down.
    master_sheet(tmp_path / "master_sheet.csv", {"dcm-b": {"margins": (40, 0, 600, 600)}})
    point = ((600 + 60 * 6) / 1920, (40 + 80 * 6.5) / 1080)
    run(world, write_csv(tmp_path / "eye_gaze.csv", EGD_COLUMNS, [egd_row("S", "dcm-b", 1.0, *point)]))
    (reading,) = sessions_of(world)
    with world.db.session() as session:
        s = session_samples(session, reading.id)[0]
    assert (s[COLUMN["image_x"]], s[COLUMN["image_y"]]) == pytest.approx((60, 80))
    assert s[COLUMN["zoom"]] == pytest.approx(6) and s[COLUMN["img_height"]] == pytest.approx(1040)
    assert s[COLUMN["screen_y"]] == pytest.approx(40 + 80 * 6.5)


def test_files_have_crlf_line_ends(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", EGD_COLUMNS, [egd_row("1", "d", 1.0, 0.5, 0.5)])
    assert path.read_bytes().count(b"\r\n") == 2
