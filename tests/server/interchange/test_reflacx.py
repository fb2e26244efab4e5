"""REFLACX import: per-fixation display state, image rescaling, metadata, broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from server.interchange.importer import ImportReport
from server.interchange.records import ImportFailed
from server.interchange.service import ImportFormat, ImportOptions, import_gaze
from server.models import Annotation, DiagnosisLabel, ReadingSession, SessionEvent, User
from server.reading.samples import COLUMN, FLAG_ON_IMAGE, FLAG_VALID
from server.reading.service import session_samples
from tests.server.interchange.conftest import World
from tests.server.interchange.files import (
    REFLACX_COLUMNS,
    REFLACX_GAZE_COLUMNS,
    REFLACX_LABELS,
    REFLACX_META_COLUMNS,
    reflacx_meta_row,
    reflacx_row,
    write_csv,
)

META = [*REFLACX_META_COLUMNS, *REFLACX_LABELS]


def make_main_data(
    root: Path, fixations: dict[str, list[list[object]]], discarded: tuple[str, ...] = ()
) -> Path:
    """main_data/ with metadata_phase_3.csv (P1 -> dcm-a drawn from a 400 x 200 original, P2 -> dcm-c)."""
    meta = [
        reflacx_meta_row("P1", "dcm-a", (400, 200), discarded="P1" in discarded),
        reflacx_meta_row("P2", "dcm-c", (64, 64), discarded="P2" in discarded),
    ]
    write_csv(root / "metadata_phase_3.csv", META, meta)
    for rid, rows in fixations.items():
        write_csv(root / rid / "fixations.csv", REFLACX_COLUMNS, rows)
    return root


def run(world: World, path: Path) -> ImportReport:
    with world.db.session() as session:
        return import_gaze(session, ImportFormat.reflacx, path, dataset=world.dataset, reader="bob")


def test_display_state_becomes_viewport_columns(world: World, tmp_path: Path) -> None:
    # Zoomed in: original image px 100..300 x 50..150 shown on screen 660..3060 x 0..1200 (12 screen px per
    # original px), then the whole 400 px wide image fit to 2160 screen px (10.8 per stored px).
    zoomed = ((100, 50, 300, 150), (660, 0, 3060, 1200))
    fit = ((0, 0, 400, 200), (1080, 0, 3240, 1080))
    rows = [
        reflacx_row(1.0, 1.2, 200, 100, *zoomed, level=0.25, width=0.5),
        reflacx_row(1.3, 1.4, 20, 180, *zoomed),  # outside the shown part: not on the image as displayed
        reflacx_row(2.0, 2.5, 390, 10, *fit),
        reflacx_row(2.6, 2.7, "", "", *fit),  # eyes not found
    ]
    make_main_data(tmp_path, {"P1": rows})
    report = run(world, tmp_path)
    assert len(report.created) == 1
    with world.db.session() as session:
        reading = session.scalars(select(ReadingSession)).one()
        s = session_samples(session, reading.id)
    assert reading.case_id == world.case_ids["dcm-a"] and reading.reader_id == world.users.reader2.id
    assert reading.source_info["import"]["reading"] == "P1"
    first = s[0]
    # The stored image is 200 x 100: half the original, so positions halve and zoom doubles.
    assert (first[COLUMN["image_x"]], first[COLUMN["image_y"]]) == (100, 50)
    assert first[COLUMN["zoom"]] == pytest.approx(24.0)
    assert first[COLUMN["img_left"]] == pytest.approx(660 - 50 * 24) and first[
        COLUMN["img_top"]
    ] == pytest.approx(-25 * 24)
    # Screen position by the data set's own rule: screen origin of the shown part + offset x scale.
    assert first[COLUMN["screen_x"]] == pytest.approx(660 + (200 - 100) * 12)
    assert first[COLUMN["screen_y"]] == pytest.approx(0 + (100 - 50) * 12)
    assert first[COLUMN["wl_center"]] == pytest.approx(1024) and first[COLUMN["wl_width"]] == pytest.approx(
        2048
    )
    assert first[COLUMN["screen_w"]] == 3840 and first[COLUMN["screen_h"]] == 2160
    flags = s[:, COLUMN["flags"]].astype(int)
    t = s[:, COLUMN["t_ms"]]
    second = (t > 1299) & (t < 1401)
    assert all(f & FLAG_VALID and not f & FLAG_ON_IMAGE for f in flags[second])
    last = s[t >= 2600]
    assert (last[:, COLUMN["image_x"]] == -1).all() and not (
        last[:, COLUMN["flags"]].astype(int) & FLAG_VALID
    ).any()
    # The data set's clock (seconds from the dictation's start) is kept.
    assert t[0] == 1000 and t[-1] == pytest.approx(2700)
    fit_rows = s[(t >= 2000) & (t <= 2500)]
    assert fit_rows[0, COLUMN["zoom"]] == pytest.approx(10.8) and fit_rows[0, COLUMN["image_x"]] == 195


def test_discarded_readings_are_skipped(world: World, tmp_path: Path) -> None:
    row = reflacx_row(0.0, 0.1, 10, 10, (0, 0, 64, 64), (0, 0, 2160, 2160))
    make_main_data(tmp_path, {"P1": [row], "P2": [row]}, discarded=("P1",))
    run(world, tmp_path)
    with world.db.session() as session:
        (only,) = session.scalars(select(ReadingSession)).all()
    assert only.case_id == world.case_ids["dcm-c"]


def test_one_reading_folder(world: World, tmp_path: Path) -> None:
    make_main_data(tmp_path, {"P2": [reflacx_row(0.0, 0.1, 10, 10, (0, 0, 64, 64), (0, 0, 2160, 2160))]})
    run(world, tmp_path / "P2")
    with world.db.session() as session:
        assert session.scalar(select(func.count()).select_from(ReadingSession)) == 1


def test_broken_reading_fails_the_whole_import(world: World, tmp_path: Path) -> None:
    ok = reflacx_row(0.0, 0.1, 10, 10, (0, 0, 64, 64), (0, 0, 2160, 2160))
    bad_end = reflacx_row(0.5, 0.4, 10, 10, (0, 0, 64, 64), (0, 0, 2160, 2160))
    bad_shown = [0.6, 0.7, 10, 10, 1.0, 90, 90, 1, 0.5, "x", 0, 64, 64, 0, 0, 2160, 2160]
    make_main_data(tmp_path, {"P1": [reflacx_row(0.0, 0.2, 1, 1, (0, 0, 400, 200), (0, 0, 3840, 1920))],
                              "P2": [ok, bad_end, bad_shown]})  # fmt: skip
    with pytest.raises(ImportFailed) as failed:
        run(world, tmp_path)
    found = {(e.path.parent.name, e.line, e.message.split(":")[0]) for e in failed.value.errors}
    assert ("P2", 3, "timestamp_end_fixation is before timestamp_start_fixation") in found
    assert ("P2", 4, "column xmin_shown_from_image") in found
    with world.db.session() as session:
        assert session.scalar(select(func.count()).select_from(ReadingSession)) == 0


def test_unknown_dicom_and_missing_metadata(world: World, tmp_path: Path) -> None:
    write_csv(tmp_path / "metadata_phase_1.csv", META, [reflacx_meta_row("P7", "dcm-nope", (10, 10))])
    write_csv(
        tmp_path / "P7" / "fixations.csv",
        REFLACX_COLUMNS,
        [reflacx_row(0, 1, 1, 1, (0, 0, 9, 9), (0, 0, 9, 9))],
    )
    # An image without a case is skipped and listed; nothing else to import fails.
    with pytest.raises(ImportFailed, match="no sessions found"):
        run(world, tmp_path)
    with world.db.session() as session, pytest.raises(ImportFailed) as failed:
        import_gaze(session, ImportFormat.reflacx, tmp_path, dataset=world.dataset, reader="bob",
                    options=ImportOptions(strict_cases=True))  # fmt: skip
    assert ["dcm-nope" in e.message for e in failed.value.errors] == [True]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImportFailed, match="no metadata_phase"):
        run(world, empty)


def test_dataset_root_with_raw_gaze_labels_ellipses_and_words(world: World, tmp_path: Path) -> None:
    main = tmp_path / "main_data"
    meta = [
        reflacx_meta_row("P300R1", "dcm-a", (400, 200), {"Consolidation": 4, "Atelectasis": 2}),
        reflacx_meta_row("P300R2", "dcm-a", (400, 200), {"Atelectasis": 2}, devices=True),
    ]
    write_csv(main / "metadata_phase_3.csv", META, meta)
    fit = ((0, 0, 400, 200), (1080, 0, 3240, 1080))
    for rid in ("P300R1", "P300R2"):
        # Eye tracking started 0.5 s before the dictation: negative times on the data set's clock.
        write_csv(main / rid / "fixations.csv", REFLACX_COLUMNS, [reflacx_row(-0.5, 0.2, 100, 50, *fit)])
        write_csv(
            main / rid / "chest_bounding_box.csv", ["xmin", "ymin", "xmax", "ymax"], [[40, 20, 360, 180]]
        )
        words = ["word", "timestamp_start_word", "timestamp_end_word"]
        write_csv(main / rid / "timestamps_transcription.csv", words, [["consolidation", 0.1, 0.6]])
        gaze = [[-0.5 + k / 1000, 100 + k, 50, 1.0, 90, 90, 1.0, 0.5, *fit[0], *fit[1]] for k in range(5)]
        gaze.append([-0.495, "", "", "", 90, 90, 1.0, 0.5, *fit[0], *fit[1]])
        write_csv(tmp_path / "gaze_data" / rid / "gaze.csv", REFLACX_GAZE_COLUMNS, gaze)
    ellipse_header = ["xmin", "ymin", "xmax", "ymax", "certainty", *REFLACX_LABELS[:-1]]
    ellipse = [200, 100, 300, 150, 4, *(name == "Consolidation" for name in REFLACX_LABELS[:-1])]
    write_csv(main / "P300R1" / "anomaly_location_ellipses.csv", ellipse_header, [ellipse])

    with world.db.session() as session:
        report = import_gaze(session, ImportFormat.reflacx, tmp_path, dataset=world.dataset, reader=None,
                             options=ImportOptions(raw_gaze=True))  # fmt: skip
    assert len(report.created) == 2 and sorted(report.readers_created) == ["reflacx-P300R1", "reflacx-P300R2"]
    assert report.annotations == 3 and report.events == 2
    with world.db.session() as session:
        readings = session.scalars(select(ReadingSession).order_by(ReadingSession.id)).all()
        readers = {session.get(User, r.reader_id).username for r in readings}  # type: ignore[union-attr]
        assert readers == {"reflacx-P300R1", "reflacx-P300R2"}  # two radiologists, two readers
        first = readings[0]
        s = session_samples(session, first.id)
        labels = {d.session_id: d for d in session.scalars(select(DiagnosisLabel))}
        (word,) = session.scalars(select(SessionEvent).where(SessionEvent.session_id == first.id)).all()
        boxes = session.scalars(select(Annotation).where(Annotation.session_id == first.id)).all()
    assert first.source_info["import"]["kind"] == "samples"
    assert first.source_info["import"]["t_offset_ms"] == pytest.approx(500)
    np.testing.assert_allclose(s[:, COLUMN["t_ms"]], [0, 1, 2, 3, 4, 5], atol=1e-6)
    assert s[1, COLUMN["image_x"]] == pytest.approx(50.5) and not int(s[5, COLUMN["flags"]]) & FLAG_VALID
    # The word (0.1-0.6 s after the dictation's start) sits on the same shifted clock.
    assert (word.t_ms, word.t_end_ms, word.text) == (pytest.approx(600), pytest.approx(1100), "consolidation")
    # Certainty 4 (Suspicious for) >= 3 -> abnormal; 2 (Less likely) only -> normal.
    one, two = labels[readings[0].id], labels[readings[1].id]
    assert (one.label, one.confidence) == ("abnormal", pytest.approx(0.8))
    assert (two.label, two.confidence) == ("normal", pytest.approx(0.6))
    assert one.attributes["reflacx"]["certainty"]["Consolidation"] == 4
    assert two.attributes["reflacx"]["support_devices"] is True
    # 8-bit? No: these PNG cases store 12 bits, so the [0, 1] window is scaled by 4096.
    assert s[0, COLUMN["wl_center"]] == pytest.approx(2048)
    by_label = {b.label: b for b in boxes}
    assert by_label["chest"].shape == "box" and (by_label["chest"].x0, by_label["chest"].y1) == (20, 90)
    assert (
        by_label["Consolidation"].shape == "ellipse"
        and by_label["Consolidation"].attributes["certainty"] == 4
    )
    # Importing again adds nothing.
    with world.db.session() as session:
        again = import_gaze(session, ImportFormat.reflacx, tmp_path, dataset=world.dataset, reader=None,
                            options=ImportOptions(raw_gaze=True))  # fmt: skip
    assert again.created == [] and again.annotations == 0
