"""Admin console: pages under /admin (users, datasets, assignments) and the APIs only they need."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server import audit
from server.apitypes import Id
from server.auth.routes import ensure_csrf
from server.auth.scopes import page_scope, require_scope
from server.cases import bulk
from server.cases.assignments import bulk_assign
from server.cases.schemas import BulkAssign, BulkAssignResult, BulkFilePublic, BulkUploadPublic
from server.datasets import service as datasets
from server.datasets.settings import DatasetSettings
from server.deps import AdminUser, ContextDep, SessionDep
from server.exceptions import TooLarge
from server.pages.routes import page_user
from server.pages.templating import templates
from server.storage import BlobStore

router = APIRouter()


@router.post(
    "/api/assignments/bulk",
    response_model=BulkAssignResult,
    status_code=status.HTTP_201_CREATED,
    dependencies=[require_scope("write")],
    tags=["cases"],
)
def post_bulk_assignments(body: BulkAssign, session: SessionDep, _admin: AdminUser) -> BulkAssignResult:
    """Put a dataset's cases (filtered) on readers' worklists: to all of them or round-robin."""
    return bulk_assign(session, body)


@router.post(
    "/api/cases/bulk",
    response_model=BulkUploadPublic,
    dependencies=[require_scope("write")],
    tags=["cases"],
    responses={
        413: {"description": "more files or bytes than the bulk limits allow (the detail names the limit)"},
        422: {"description": "a missing dataset or field, or a file that starts like a zip but is not one"},
    },
)
def post_bulk_upload(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    admin: AdminUser,
    files: Annotated[
        list[UploadFile],
        File(
            description="images (PNG, JPEG, DICOM) and/or zip archives of them; a file's name may be a"
            " relative path (a browser folder upload). At most 1,000 files per request; more in a zip."
        ),
    ],
    dataset_id: Annotated[Id, Form()],
) -> BulkUploadPublic:
    """Many images into cases of a dataset at once, one result per file (stored, duplicate, refused).

    Each file takes the single upload's path (de-identification, burned-in annotation refusal) and
    is refused when the dataset already holds the same image. Each stored file is committed before
    the next is read. Zip entries with unsafe paths are refused unread.
    """
    settings = ctx.settings
    limits = bulk.BulkLimits(
        max_files=settings.bulk_max_files,
        max_total_bytes=settings.bulk_max_total_bytes,
        max_file_bytes=settings.max_upload_bytes,
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_total_bytes + 1024**2:
        raise TooLarge(f"the upload exceeds the {limits.max_total_bytes}-byte limit per upload")
    dataset = datasets.get_dataset(session, dataset_id)
    uploads = [bulk.Upload(f.filename or f"file-{i + 1}", f.file) for i, f in enumerate(files)]
    planned = bulk.plan(uploads, limits)
    try:
        results = bulk.ingest(
            session,
            BlobStore(settings.blob_dir),
            planned,
            dataset=dataset,
            limits=limits,
            max_pixels=settings.max_image_pixels,
            uid_salt=settings.uid_salt,
            uploaded_by=admin,
            on_stored=lambda case: audit.record(
                session,
                "case_upload",
                user_id=admin.id,
                request=request,
                target_type="case",
                target_id=case.id,
            ),
        )
    finally:
        planned.close()
    out = [BulkFilePublic(**asdict(r)) for r in results]
    return BulkUploadPublic(
        dataset_id=dataset_id,
        stored=sum(r.outcome == "stored" for r in out),
        duplicates=sum(r.outcome == "duplicate" for r in out),
        refused=sum(r.outcome == "refused" for r in out),
        files=out,
    )


@router.get("/api/datasets-settings-schema", dependencies=[require_scope("read")], tags=["cases"])
def dataset_settings_schema(_admin: AdminUser) -> dict[str, Any]:
    """JSON schema of the typed dataset settings (the admin console builds its form from it)."""
    return DatasetSettings.model_json_schema()


@router.get("/admin", include_in_schema=False, dependencies=[page_scope("read")])
def admin_home() -> Response:
    return RedirectResponse("/admin/users", status_code=status.HTTP_303_SEE_OTHER)


def _admin_page(section: str, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Admins get the console section; readers a 403 page; anonymous visitors the login page."""
    user = page_user(request, ctx, session)
    if user is None:
        return RedirectResponse(f"/login?next=/admin/{section}", status_code=status.HTTP_303_SEE_OTHER)
    template, code = (f"admin/{section}.html", 200) if user.is_admin else ("dashboard/forbidden.html", 403)
    context = {"user": user, "csrf_token": ensure_csrf(request), "section": section}
    return templates.TemplateResponse(request, template, context, status_code=code)


@router.get(
    "/admin/users", response_class=HTMLResponse, include_in_schema=False, dependencies=[page_scope("read")]
)
def admin_users_page(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Users: create, change role, deactivate, reset password."""
    return _admin_page("users", request, ctx, session)


@router.get(
    "/admin/datasets", response_class=HTMLResponse, include_in_schema=False, dependencies=[page_scope("read")]
)
def admin_datasets_page(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Datasets: list and create (settings form generated from the typed settings)."""
    return _admin_page("datasets", request, ctx, session)


@router.get(
    "/admin/assignments",
    response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[page_scope("read")],
)
def admin_assignments_page(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Assignments: a dataset's cases onto readers' worklists, round-robin or to every reader."""
    return _admin_page("assignments", request, ctx, session)


@router.get(
    "/admin/upload", response_class=HTMLResponse, include_in_schema=False, dependencies=[page_scope("read")]
)
def admin_upload_page(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Bulk upload: a folder or zip of images into a dataset, with a result per file."""
    return _admin_page("upload", request, ctx, session)
