"""PACS jobs: ``pacs-import`` (DICOMweb studies -> de-identified cases) and ``pacs-results``
(reader diagnoses -> DICOM SR sent back with STOW-RS)."""

from __future__ import annotations

from typing import Any

from server.jobs.kinds import PacsImportSpec, PacsResultsSpec
from server.pacs.client import InvalidPacsUrl, PacsError, connect, normalise_url
from server.pacs.importer import Importer
from server.pacs.results import PredictionsUnavailable, ResultsDisabled, send_results
from server.worker.context import JobContext, PermanentError


def pacs_url(ctx: JobContext, url: str | None) -> str:
    """The job's PACS URL, or the configured one; PermanentError when neither is usable."""
    chosen = url or ctx.settings.pacs_url
    if not chosen:
        raise PermanentError("no PACS URL: give one in the job or set MCGIP_PACS_URL")
    try:
        return normalise_url(chosen)
    except InvalidPacsUrl as exc:
        raise PermanentError(str(exc)) from None


def run_import(ctx: JobContext, spec: PacsImportSpec) -> dict[str, Any]:
    """Import the instances the job's query selects into its dataset (resumable: skips imported ones)."""
    if ctx.job.dataset_id is None:
        raise PermanentError("a pacs-import job needs dataset_id")
    url = pacs_url(ctx, spec.url)
    importer = Importer(
        ctx.db,
        ctx.settings,
        dataset_id=ctx.job.dataset_id,
        job_id=ctx.job.id,
        connect=lambda: connect(url, ctx.settings),
        url=url,
        check=ctx.check,
        progress=lambda fraction, info: ctx.report(fraction, **info),
    )
    try:
        report = importer.run(spec)  # the spec is the import query
    except PacsError as exc:
        # Whole instances stored so far stay (and are skipped by the next run); nothing half-stored.
        raise PermanentError(f"import stopped: {exc}") from None
    return report.as_result()


def run_results(ctx: JobContext, _spec: PacsResultsSpec) -> dict[str, Any]:
    """Send new reader diagnoses of the dataset's PACS-imported cases back as DICOM SR."""
    if ctx.job.dataset_id is None:
        raise PermanentError("a pacs-results job needs dataset_id")
    try:
        report = send_results(
            ctx.db,
            ctx.blobs,
            dataset_id=ctx.job.dataset_id,
            job_id=ctx.job.id,
            connect=lambda url: connect(url, ctx.settings),
            check=ctx.check,
            progress=lambda fraction, info: ctx.report(fraction, **info),
            max_pixels=ctx.settings.max_image_pixels,
        )
    except (ResultsDisabled, PredictionsUnavailable) as exc:
        raise PermanentError(str(exc)) from None
    except PacsError as exc:
        raise PermanentError(f"sending results stopped: {exc}") from None
    return report.as_result()
