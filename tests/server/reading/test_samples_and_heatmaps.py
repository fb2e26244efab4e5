"""Reading stored gaze back: samples as JSON and CSV, and heatmaps per session and per case."""

from __future__ import annotations

import csv
import io

import numpy as np

from server.reading.samples import COLUMNS
from tests.server.reading.conftest import IMAGE_H, IMAGE_W, Reading, make_samples
from tests.server.reading.streaming import stream


def test_samples_come_back_in_seq_order_as_json_and_csv(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    frames = {seq: make_samples(5, t0=seq * 50.0, seed=seq) for seq in (3, 0, 2, 1)}
    stream(reading, sid, frames)
    expected = [row for seq in sorted(frames) for row in frames[seq]]

    as_json = reading.client.get(f"/api/sessions/{sid}/samples", headers=reading.auth("alice"))
    assert as_json.status_code == 200
    assert as_json.json() == {"session_id": sid, "columns": list(COLUMNS), "samples": expected}

    as_csv = reading.client.get(f"/api/sessions/{sid}/samples?format=csv", headers=reading.auth("admin"))
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == list(COLUMNS)
    assert [[float(v) for v in row] for row in rows[1:]] == expected
    assert {row[COLUMNS.index("flags")] for row in rows[1:]} == {"15"}


def test_other_readers_cannot_read_samples(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    for path in (f"/api/sessions/{sid}/samples", f"/api/sessions/{sid}/heatmap"):
        assert reading.client.get(path, headers=reading.auth("bob")).status_code == 404
    assert (
        reading.client.get(
            f"/api/sessions/{sid}/samples?format=xml", headers=reading.auth("alice")
        ).status_code
        == 422
    )


# Centres of heatmap cells (row 4, col 12) and (row 12, col 4) of a 16 x 16 grid on the 80 x 60 image.
A = ((12 + 0.5) * IMAGE_W / 16, (4 + 0.5) * IMAGE_H / 16)
B = ((4 + 0.5) * IMAGE_W / 16, (12 + 0.5) * IMAGE_H / 16)


def dwell(x: float, y: float, t0: float, ms: float = 600.0) -> list[list[float]]:
    """Samples of one fixation at image (x, y), 120 Hz from ``t0``; a jump between two is a saccade."""
    return make_samples(int(ms * 120 / 1000), t0=t0, x0=x, y0=y, seed=int(t0))


def peak(values: list[list[float]]) -> tuple[int, int]:
    grid = np.asarray(values)
    row, col = np.unravel_index(int(np.argmax(grid)), grid.shape)
    return int(row), int(col)


def test_session_heatmap_peaks_where_the_reader_looked(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    # A long dwell at A and a short one at B; off-image and invalid samples are ignored.
    off_image = make_samples(30, t0=1210.0, x0=A[0], y0=A[1])
    for row in off_image:
        row[3], row[4], row[5] = -1.0, -1.0, 4
    stream(reading, sid, {0: dwell(A[0], A[1], 0.0, 900.0), 1: dwell(B[0], B[1], 900.0, 300.0), 2: off_image})
    response = reading.client.get(f"/api/sessions/{sid}/heatmap?size=16", headers=reading.auth("alice"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"], body["size"], body["sessions"]) == (IMAGE_W, IMAGE_H, 16, 1)
    assert body["samples"] == 108 + 36
    values = np.asarray(body["values"])
    assert values.shape == (16, 16) and values.max() == 1.0
    assert peak(body["values"]) == (4, 12)
    second = values[12, 4]
    assert 0.05 < second < 0.9


def test_case_heatmap_aggregates_the_sessions_the_caller_may_see(reading: Reading) -> None:
    mine = reading.open_session()["id"]
    admins = reading.open_session("admin")["id"]
    stream(reading, mine, {0: dwell(A[0], A[1], 0.0)})
    stream(reading, admins, {0: dwell(B[0], B[1], 0.0)}, username="admin")
    own = reading.client.get(
        f"/api/cases/{reading.case_id}/heatmap?size=16", headers=reading.auth("alice")
    ).json()
    assert own["sessions"] == 1 and peak(own["values"]) == (4, 12)
    both = reading.client.get(
        f"/api/cases/{reading.case_id}/heatmap?size=16", headers=reading.auth("admin")
    ).json()
    assert both["sessions"] == 2
    values = np.asarray(both["values"])
    assert values[4, 12] > 0.5 and values[12, 4] > 0.5
    # Not on bob's worklist: the case does not exist for him.
    assert (
        reading.client.get(f"/api/cases/{reading.case_id}/heatmap", headers=reading.auth("bob")).status_code
        == 404
    )


def test_heatmap_without_gaze_is_all_zero(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    body = reading.client.get(f"/api/sessions/{sid}/heatmap?size=8", headers=reading.auth("alice")).json()
    assert (
        body["samples"] == 0
        and np.asarray(body["values"]).shape == (8, 8)
        and not np.asarray(body["values"]).any()
    )
    case = reading.client.get(
        f"/api/cases/{reading.bob_case_id}/heatmap?size=8", headers=reading.auth("bob")
    ).json()
    assert case["sessions"] == 0 and not np.asarray(case["values"]).any()
