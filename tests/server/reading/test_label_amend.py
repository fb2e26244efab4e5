"""PUT /api/sessions/{id}/label: the reader amends a finished session's diagnosis; history is kept."""

from __future__ import annotations

from tests.server.reading.conftest import Reading


def _finish(reading: Reading, label: str = "normal") -> int:
    sid = int(reading.open_session()["id"])
    r = reading.client.post(
        f"/api/sessions/{sid}/finish", json={"label": label, "confidence": 0.5}, headers=reading.auth("alice")
    )
    assert r.status_code == 200, r.text
    return sid


def test_amend_keeps_every_earlier_version_in_order(reading: Reading) -> None:
    sid = _finish(reading)
    alice = reading.auth("alice")
    first = reading.client.put(
        f"/api/sessions/{sid}/label", json={"label": "mass", "confidence": 0.9}, headers=alice
    )
    assert first.status_code == 200, first.text
    box = {"x0": 1, "y0": 2, "x1": 10, "y1": 12}
    second = reading.client.put(
        f"/api/sessions/{sid}/label", json={"label": "normal", "finding_box": box}, headers=alice
    )
    label = second.json()["label"]
    assert (label["label"], label["confidence"], label["finding_box"]) == (
        "normal",
        None,
        {"x0": 1.0, "y0": 2.0, "x1": 10.0, "y1": 12.0},
    )
    assert [(h["label"], h["confidence"]) for h in label["history"]] == [("normal", 0.5), ("mass", 0.9)]
    assert label["history"][1]["given_at"] == label["history"][0]["replaced_at"]
    assert reading.client.get(f"/api/sessions/{sid}", headers=alice).json()["label"] == label
    listed = reading.client.get("/api/worklist", headers=alice).json()
    assert next(i for i in listed if i["case"]["id"] == reading.case_id)["label"] == "normal"


def test_amend_refuses_others_open_sessions_and_bad_labels(reading: Reading) -> None:
    sid = _finish(reading)
    assert (
        reading.client.put(
            f"/api/sessions/{sid}/label", json={"label": "x"}, headers=reading.auth("alice")
        ).status_code
        == 422
    )
    # Another reader does not see the session; the admin sees it but is not its reader.
    assert (
        reading.client.put(
            f"/api/sessions/{sid}/label", json={"label": "mass"}, headers=reading.auth("bob")
        ).status_code
        == 404
    )
    assert (
        reading.client.put(
            f"/api/sessions/{sid}/label", json={"label": "mass"}, headers=reading.auth("admin")
        ).status_code
        == 403
    )
    still_open = reading.open_session()["id"]
    r = reading.client.put(
        f"/api/sessions/{still_open}/label", json={"label": "mass"}, headers=reading.auth("alice")
    )
    assert r.status_code == 409 and "finish it first" in r.json()["detail"]
