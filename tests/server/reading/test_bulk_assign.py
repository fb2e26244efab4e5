"""POST /api/assignments/bulk: a dataset's (filtered) cases to all readers or round-robin."""

from __future__ import annotations

from tests.server.reading.conftest import Reading, png_bytes


def _cases(reading: Reading, n: int, prefix: str) -> list[int]:
    ids = []
    for i in range(n):
        r = reading.client.post(
            "/api/cases",
            files={"file": (f"{prefix}{i}.png", png_bytes(), "image/png")},
            data={
                "dataset_id": str(reading.dataset_id),
                "external_id": f"{prefix}{i}",
                "title": f"{prefix} {i}",
            },
            headers=reading.auth("admin"),
        )
        assert r.status_code == 201, r.text
        ids.append(int(r.json()["id"]))
    return ids


def test_round_robin_all_and_filters(reading: Reading) -> None:
    _cases(reading, 4, "rr")
    alice, bob = reading.users.reader.id, reading.users.reader2.id
    url, admin = "/api/assignments/bulk", reading.auth("admin")
    body = {
        "dataset_id": reading.dataset_id,
        "reader_ids": [alice, bob],
        "search": "RR",
        "mode": "round_robin",
    }
    out = reading.client.post(url, json=body, headers=admin)
    assert out.status_code == 201, out.text
    assert out.json() == {"cases": 4, "assignments": 4, "per_reader": {str(alice): 2, str(bob): 2}}
    # Again with "all": only the missing halves are new.
    again = reading.client.post(url, json={**body, "mode": "all"}, headers=admin).json()
    assert again == {"cases": 4, "assignments": 4, "per_reader": {str(alice): 2, str(bob): 2}}
    # The fixture's two cases were assigned already; only_unassigned finds none left.
    none_left = reading.client.post(
        url, json={**body, "search": None, "only_unassigned": True}, headers=admin
    )
    assert none_left.json()["cases"] == 0


def test_bad_readers_are_all_named(reading: Reading) -> None:
    admin_id = reading.users.admin.id
    body = {"dataset_id": reading.dataset_id, "reader_ids": [admin_id, 99999]}
    r = reading.client.post("/api/assignments/bulk", json=body, headers=reading.auth("admin"))
    assert r.status_code == 422 and r.json()["detail"] == f"not active readers: [{admin_id}, 99999]"
    missing = {"dataset_id": 99999, "reader_ids": [reading.users.reader.id]}
    assert (
        reading.client.post("/api/assignments/bulk", json=missing, headers=reading.auth("admin")).status_code
        == 404
    )
