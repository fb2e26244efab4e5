"""HTTP routes for datasets, cases, their images and worklists."""

from __future__ import annotations

import io
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import Response
from PIL import Image
from sqlalchemy import select

from server import audit
from server.apitypes import Id, Offset
from server.auth.scopes import require_scope
from server.cases import service
from server.cases.schemas import (
    AnnotationPublic,
    AssignmentCreate,
    CasePage,
    CasePublic,
    DatasetCreate,
    DatasetPublic,
    DatasetUpdate,
    ImagePublic,
    WorklistItem,
    WorklistSkip,
)
from server.cases.worklist import WorklistStatus, set_skipped, worklist_entries
from server.datasets import service as datasets
from server.deps import AdminUser, ContextDep, CurrentUser, SessionDep
from server.imaging import render_window
from server.models import Annotation, Assignment, Case, Dataset, Role, User
from server.storage import BlobStore

router = APIRouter(prefix="/api", tags=["cases"])


def case_public(case: Case, *, admin: bool, readers: list[int] | None = None) -> CasePublic:
    return CasePublic(
        id=case.id,
        dataset_id=case.dataset_id,
        dataset_name=case.dataset.name,
        external_id=case.external_id,
        title=case.title,
        created_at=case.created_at,
        image=ImagePublic.model_validate(case.image) if case.image else None,
        reference_label=case.reference_label if admin else None,
        assigned_reader_ids=readers if admin else None,
        flags=["burned_in_annotation"]
        if case.image and service.burned_in_annotation(case.image.meta)
        else [],
    )


# ---- datasets -------------------------------------------------------------------------------------


@router.get("/datasets", response_model=list[DatasetPublic], dependencies=[require_scope("read")])
def list_datasets(session: SessionDep, _user: CurrentUser) -> list[Dataset]:
    return list(session.scalars(select(Dataset).order_by(Dataset.id)))


@router.post(
    "/datasets",
    response_model=DatasetPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[require_scope("write")],
)
def create_dataset(body: DatasetCreate, session: SessionDep, _admin: AdminUser) -> Dataset:
    return datasets.create_dataset(
        session,
        name=body.name,
        description=body.description,
        label_set=body.label_set,
        image_kind=body.image_kind,
        settings=body.settings,
    )


@router.get("/datasets/{dataset_id}", response_model=DatasetPublic, dependencies=[require_scope("read")])
def get_dataset(dataset_id: Id, session: SessionDep, _user: CurrentUser) -> Dataset:
    return datasets.get_dataset(session, dataset_id)


@router.patch("/datasets/{dataset_id}", response_model=DatasetPublic, dependencies=[require_scope("write")])
def update_dataset(dataset_id: Id, body: DatasetUpdate, session: SessionDep, _admin: AdminUser) -> Dataset:
    """Change the description and/or settings; ``settings`` is a merge patch (RFC 7396)."""
    return datasets.update_dataset(
        session, dataset_id, description=body.description, settings_patch=body.settings
    )


# ---- cases ----------------------------------------------------------------------------------------


def _read_upload(request: Request, upload: UploadFile, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"upload exceeds the {limit}-byte limit")
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"upload exceeds the {limit}-byte limit")
    if not data:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "uploaded file is empty")
    return data


@router.post(
    "/cases",
    response_model=CasePublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[require_scope("write")],
)
def upload_case(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    admin: AdminUser,
    file: Annotated[UploadFile, File(description="PNG, JPEG, 16-bit PNG or DICOM; type read from content")],
    dataset_id: Annotated[Id, Form()],
    title: Annotated[str, Form(max_length=256)] = "",
    external_id: Annotated[str | None, Form(max_length=128)] = None,
    reference_label: Annotated[str | None, Form(max_length=64)] = None,
) -> CasePublic:
    dataset = datasets.get_dataset(session, dataset_id)
    data = _read_upload(request, file, ctx.settings.max_upload_bytes)
    case = service.create_case(
        session,
        BlobStore(ctx.settings.blob_dir),
        dataset=dataset,
        data=data,
        max_pixels=ctx.settings.max_image_pixels,
        uid_salt=ctx.settings.uid_salt,
        uploaded_by=admin,
        external_id=external_id or None,
        title=title,
        reference_label=reference_label or None,
    )
    audit.record(
        session, "case_upload", user_id=admin.id, request=request, target_type="case", target_id=case.id
    )
    return case_public(case, admin=True, readers=[])


@router.get("/cases", response_model=CasePage, dependencies=[require_scope("read")])
def list_cases(
    session: SessionDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
    dataset_id: Id | None = None,
    reader_id: Id | None = None,
    reference_label: str | None = None,
    q: Annotated[str | None, Query(max_length=128)] = None,
) -> CasePage:
    filters = service.CaseFilters(
        dataset_id=dataset_id, reader_id=reader_id, reference_label=reference_label, search=q
    )
    cases, total = service.list_cases(session, user, filters, limit=limit, offset=offset)
    readers = service.assigned_reader_ids(session, [c.id for c in cases]) if user.is_admin else {}
    items = [case_public(c, admin=user.is_admin, readers=readers.get(c.id)) for c in cases]
    return CasePage(items=items, total=total, limit=limit, offset=offset)


@router.get("/cases/{case_id}", response_model=CasePublic, dependencies=[require_scope("read")])
def get_case(case_id: Id, request: Request, session: SessionDep, user: CurrentUser) -> CasePublic:
    case = service.visible_case(session, user, case_id)
    audit.record(
        session, "case_view", user_id=user.id, request=request, target_type="case", target_id=case.id
    )
    readers = service.assigned_reader_ids(session, [case.id]) if user.is_admin else {}
    return case_public(case, admin=user.is_admin, readers=readers.get(case.id))


@router.delete(
    "/cases/{case_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[require_scope("write")]
)
def delete_case(
    case_id: Id, request: Request, ctx: ContextDep, session: SessionDep, admin: AdminUser
) -> Response:
    case = service.visible_case(session, admin, case_id)
    storage_dir = case.image.storage_dir if case.image else None
    session.delete(case)
    audit.record(
        session, "case_delete", user_id=admin.id, request=request, target_type="case", target_id=case_id
    )
    session.flush()
    if storage_dir:
        BlobStore(ctx.settings.blob_dir).remove_tree(storage_dir)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _image_of(session: SessionDep, user: User, case_id: Id) -> tuple[Case, str]:
    case = service.visible_case(session, user, case_id)
    if case.image is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"case {case_id} has no stored image")
    return case, case.image.storage_dir


def _png(data: bytes) -> Response:
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/cases/{case_id}/image", response_class=Response, dependencies=[require_scope("read")])
def get_case_image(
    case_id: Id,
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    user: CurrentUser,
    center: float | None = None,
    width: Annotated[float | None, Query(gt=0)] = None,
) -> Response:
    """The display image (8-bit PNG), optionally re-windowed at ``center``/``width`` (modality units)."""
    case, storage_dir = _image_of(session, user, case_id)
    blobs = BlobStore(ctx.settings.blob_dir)
    audit.record(
        session, "image_download", user_id=user.id, request=request, target_type="case", target_id=case_id
    )
    if center is None and width is None:
        return _png(blobs.read(f"{storage_dir}/{service.DISPLAY_FILE}"))
    image = case.image
    assert image is not None
    pixels = np.asarray(Image.open(io.BytesIO(blobs.read(f"{storage_dir}/{service.PIXELS_FILE}"))))
    rendered = render_window(
        pixels,
        image.value_offset,
        image.value_scale,
        image.window_center if center is None else center,
        image.window_width if width is None else width,
        invert=image.invert,
    )
    buf = io.BytesIO()
    Image.fromarray(rendered).save(buf, format="PNG")
    return _png(buf.getvalue())


@router.get(
    "/cases/{case_id}/annotations",
    response_model=list[AnnotationPublic],
    dependencies=[require_scope("read")],
)
def list_annotations(case_id: Id, session: SessionDep, _admin: AdminUser) -> list[Annotation]:
    """Regions marked on the case's image (imported anatomy boxes, abnormality ellipses, chest box).

    Admins only: they are reference data, and showing them to readers would steer their gaze.
    """
    if session.get(Case, case_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"case {case_id} not found")
    return list(
        session.scalars(select(Annotation).where(Annotation.case_id == case_id).order_by(Annotation.id))
    )


@router.get("/cases/{case_id}/thumbnail", response_class=Response, dependencies=[require_scope("read")])
def get_case_thumbnail(case_id: Id, ctx: ContextDep, session: SessionDep, user: CurrentUser) -> Response:
    _case, storage_dir = _image_of(session, user, case_id)
    return _png(BlobStore(ctx.settings.blob_dir).read(f"{storage_dir}/{service.THUMBNAIL_FILE}"))


@router.get("/cases/{case_id}/pixels", response_class=Response, dependencies=[require_scope("read")])
def get_case_pixels(
    case_id: Id, request: Request, ctx: ContextDep, session: SessionDep, user: CurrentUser
) -> Response:
    """Stored pixel values as little-endian uint16, row-major, for window/level in the browser.

    Headers give ``X-Image-Width``, ``X-Image-Height``, ``X-Value-Offset`` and ``X-Value-Scale``
    (modality value = stored * scale + offset).
    """
    case, storage_dir = _image_of(session, user, case_id)
    image = case.image
    assert image is not None
    pixels = np.asarray(
        Image.open(io.BytesIO(BlobStore(ctx.settings.blob_dir).read(f"{storage_dir}/{service.PIXELS_FILE}")))
    )
    audit.record(
        session,
        "image_download",
        user_id=user.id,
        request=request,
        target_type="case",
        target_id=case_id,
        detail={"kind": "pixels"},
    )
    return Response(
        pixels.astype("<u2").tobytes(),
        media_type="application/octet-stream",
        headers={
            "X-Image-Width": str(image.width),
            "X-Image-Height": str(image.height),
            "X-Value-Offset": repr(image.value_offset),
            "X-Value-Scale": repr(image.value_scale),
            "Cache-Control": "private, max-age=3600",
        },
    )


@router.get("/cases/{case_id}/dicom", response_class=Response, dependencies=[require_scope("read")])
def get_case_dicom(
    case_id: Id, request: Request, ctx: ContextDep, session: SessionDep, admin: AdminUser
) -> Response:
    """The de-identified DICOM file kept for a DICOM upload (admins only)."""
    case, storage_dir = _image_of(session, admin, case_id)
    if not case.image or not case.image.has_dicom:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"case {case_id} was not uploaded as DICOM")
    audit.record(
        session,
        "image_download",
        user_id=admin.id,
        request=request,
        target_type="case",
        target_id=case_id,
        detail={"kind": "dicom"},
    )
    data = BlobStore(ctx.settings.blob_dir).read(f"{storage_dir}/{service.DICOM_FILE}")
    return Response(
        data,
        media_type="application/dicom",
        headers={"Content-Disposition": f'attachment; filename="case-{case_id}.dcm"'},
    )


# ---- worklists ------------------------------------------------------------------------------------


@router.post(
    "/cases/{case_id}/assignments", status_code=status.HTTP_201_CREATED, dependencies=[require_scope("write")]
)
def assign_case(
    case_id: Id, body: AssignmentCreate, session: SessionDep, admin: AdminUser
) -> dict[str, list[int]]:
    case = service.visible_case(session, admin, case_id)
    readers = []
    for reader_id in body.reader_ids:
        reader = session.get(User, reader_id)
        if reader is None or reader.role != Role.reader:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"user {reader_id} is not a reader")
        readers.append(reader)
    service.assign(session, case, readers, body.priority)
    return {"reader_ids": service.assigned_reader_ids(session, [case.id])[case.id]}


@router.delete(
    "/cases/{case_id}/assignments/{reader_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[require_scope("write")],
)
def unassign_case(case_id: Id, reader_id: Id, session: SessionDep, admin: AdminUser) -> Response:

    assignment = session.scalar(
        select(Assignment).where(Assignment.case_id == case_id, Assignment.reader_id == reader_id)
    )
    if assignment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"case {case_id} is not assigned to user {reader_id}")
    session.delete(assignment)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/worklist", response_model=list[WorklistItem], dependencies=[require_scope("read")])
def get_worklist(
    session: SessionDep,
    user: CurrentUser,
    reader_id: Id | None = None,
    status_filter: Annotated[list[WorklistStatus] | None, Query(alias="status")] = None,
) -> list[WorklistItem]:
    """The caller's worklist in order, each case with the reader's ``status`` on it (``?status=unread``
    may repeat to filter); admins may look at any reader's with ``reader_id``."""
    target = user
    if reader_id is not None and reader_id != user.id:
        if not user.is_admin:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "readers can only see their own worklist")
        found = session.get(User, reader_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {reader_id} not found")
        target = found
    wanted = set(status_filter or WorklistStatus)
    return [
        WorklistItem(
            case=case_public(e.case, admin=user.is_admin),
            priority=e.assignment.priority,
            sessions=e.sessions,
            finished=e.status == WorklistStatus.read,
            status=e.status.value,
            label=e.label,
            last_read_at=e.last_read_at,
        )
        for e in worklist_entries(session, target)
        if e.status in wanted
    ]


@router.put("/worklist/{case_id}/skip", response_model=WorklistSkip, dependencies=[require_scope("write")])
def skip_case(case_id: Id, session: SessionDep, user: CurrentUser) -> WorklistSkip:
    """Set a case of the caller's worklist aside: it shows as ``skipped`` until read or un-skipped."""
    set_skipped(session, user, case_id, True)
    return _skip_state(session, user, case_id)


@router.delete("/worklist/{case_id}/skip", response_model=WorklistSkip, dependencies=[require_scope("write")])
def unskip_case(case_id: Id, session: SessionDep, user: CurrentUser) -> WorklistSkip:
    """Bring a skipped case back onto the caller's worklist."""
    set_skipped(session, user, case_id, False)
    return _skip_state(session, user, case_id)


def _skip_state(session: SessionDep, user: User, case_id: Id) -> WorklistSkip:
    entry = next(e for e in worklist_entries(session, user) if e.case.id == case_id)
    return WorklistSkip(case_id=case_id, status=entry.status.value)
