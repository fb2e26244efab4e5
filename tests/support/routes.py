"""Enumerate the application's routes (FastAPI keeps included routers as wrappers in ``app.routes``)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """``(method, path)`` for every HTTP route, ``("WS", path)`` for every WebSocket route."""
    found: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        route = context.route
        if isinstance(route, APIRoute):
            for method in (context.methods or set()) - {"HEAD", "OPTIONS"}:
                found.add((method, context.path))
        elif isinstance(route, APIWebSocketRoute):
            found.add(("WS", context.path))
    return found
