"""Application factory: wires settings, database, middleware, routes and static files."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from server.admin.routes import router as admin_router
from server.auth.routes import router as auth_router
from server.cases.routes import router as cases_router
from server.context import AppContext
from server.dashboard.routes import router as dashboard_router
from server.errors import install_error_handlers
from server.health import router as health_router
from server.jobs.routes import router as jobs_router
from server.observability.logs import install_record_factory, request_id_middleware
from server.observability.metrics import router as metrics_router
from server.openapi import describe_error_bodies
from server.pages.calibration import router as calibration_page_router
from server.pages.dashboard import router as dashboard_page_router
from server.pages.routes import router as pages_router
from server.pages.templating import NODE_MODULES_DIR, STATIC_DIR, VENDOR_PACKAGES
from server.reading.routes import router as reading_router
from server.registry.predict_routes import router as predict_router
from server.registry.routes import router as registry_router
from server.registry.second_read_routes import router as second_read_router
from server.settings import Settings, get_settings
from server.tracker_bridge.relay import router as tracker_relay_router
from server.users.routes import router as users_router

logger = logging.getLogger(__name__)

SESSION_COOKIE = "mcgip_session"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the web application.

    Args:
        settings: Configuration; read from the environment when omitted.
    """
    settings = settings or get_settings()
    settings.blob_dir.mkdir(parents=True, exist_ok=True)
    ctx = AppContext.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        ctx.predict_pool.shutdown(wait=True)
        ctx.db.dispose()

    app = FastAPI(title="McGIP", version="0.1.0", docs_url="/api/docs", redoc_url=None, lifespan=lifespan)
    app.state.ctx = ctx
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_cookie_ttl_s,
        same_site="lax",
        https_only=settings.mode == "production",
    )
    install_error_handlers(app)
    describe_error_bodies(app)
    install_record_factory()
    app.middleware("http")(request_id_middleware)
    routers = (
        health_router,
        admin_router,
        auth_router,
        users_router,
        cases_router,
        pages_router,
        jobs_router,
        reading_router,
        registry_router,
        predict_router,
        second_read_router,
        metrics_router,
        dashboard_router,
        dashboard_page_router,
        calibration_page_router,
        tracker_relay_router,
    )
    for router in routers:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for name, subdir in VENDOR_PACKAGES.items():
        directory = NODE_MODULES_DIR / subdir
        if directory.is_dir():
            app.mount(f"/vendor/{name}", StaticFiles(directory=directory), name=f"vendor-{name}")
        else:
            logger.warning("browser library %s missing (run `make run` to install it with npm)", name)

    return app
