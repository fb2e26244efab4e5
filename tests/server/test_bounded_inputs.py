"""Integers a client sends are bounded (server/apitypes.py): too big is a 422 naming the field, not a 500."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.apitypes import MAX_DB_INT
from tests.conftest import Users

HUGE = 36893488147419103232  # 2**65


def _integer_nodes(
    node: Any, schemas: dict[str, Any], where: str, seen: set[str]
) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                yield from _integer_nodes(schemas[name], schemas, f"{where}->{name}", seen | {name})
            return
        if node.get("type") == "integer":
            yield where, node
        for key, value in node.items():
            yield from _integer_nodes(value, schemas, f"{where}.{key}", seen)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _integer_nodes(value, schemas, f"{where}[{i}]", seen)


def test_every_integer_input_in_the_openapi_document_is_bounded(app_client: TestClient) -> None:
    doc = app_client.get("/openapi.json").json()
    schemas = doc.get("components", {}).get("schemas", {})
    unbounded = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            inputs = {"parameters": operation.get("parameters", []), "body": operation.get("requestBody", {})}
            for where, node in _integer_nodes(inputs, schemas, f"{method.upper()} {path}", set()):
                if not isinstance(node.get("maximum"), int | float) or node["maximum"] > MAX_DB_INT:
                    unbounded.append(where)
    assert not unbounded, "integer inputs without a bound (use server.apitypes):\n" + "\n".join(unbounded)


@pytest.mark.parametrize(
    "call",
    [
        lambda c, h: c.get(f"/api/models?dataset_id={HUGE}", headers=h),
        lambda c, h: c.get(f"/api/cases/{HUGE}", headers=h),
        lambda c, h: c.get(f"/api/cases?offset={HUGE}", headers=h),
        lambda c, h: c.post("/api/jobs", json={"kind": "pairs", "dataset_id": HUGE}, headers=h),
        lambda c, h: c.post("/api/cases/1/assignments", json={"reader_ids": [HUGE]}, headers=h),
    ],
)
def test_huge_integers_are_a_422_naming_the_field(
    call: Callable[[TestClient, dict[str, str]], Any],
    app_client: TestClient,
    users: Users,
    auth: Callable[[str], dict[str, str]],
) -> None:
    response = call(app_client, auth("admin"))
    assert response.status_code == 422, response.text
    assert "less than or equal to 2147483647" in response.text
