"""The OpenAPI document describes the error bodies the API really sends."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def describe_error_bodies(app: FastAPI) -> None:
    """Document 422 ``detail`` as either the list of field errors or one sentence.

    FastAPI documents only its own validation errors (a list); a handler's own check ("send exactly
    one of 'file' or 'case_id'") answers 422 with a sentence, as every other error does.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        error = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
        if error is not None and "anyOf" not in error["properties"]["detail"]:
            listed = {k: v for k, v in error["properties"]["detail"].items() if k != "title"}
            error["properties"]["detail"] = {"anyOf": [listed, {"type": "string"}], "title": "Detail"}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
