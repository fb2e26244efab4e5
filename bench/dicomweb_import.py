"""``mcgip bench dicomweb-import``: instances/s through the PACS import job against bare retrieval.

A private Orthanc (Debian's ``orthanc`` + ``orthanc-dicomweb``, started on a free loopback port
as the tests do) is filled with N CT instances made from pydicom's ``CT_small.dcm`` (new UIDs each).
Then, in the same run and against the same Orthanc:

- reference: a bare dicomweb-client loop, ``retrieve_instance`` for every instance (QIDO listing
  not timed), the fastest of two passes (one before and one after the import, so Orthanc's caches
  favour the reference rather than the import);
- import: the ``pacs-import`` job (QIDO listing, WADO-RS retrieval of each series in one streamed
  request, de-identification, PNG rendering, files and database rows, SQLite in a temporary folder)
  timed from submit to success.

Prints both rates and their ratio; target: import >= 0.5x the reference.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.5


def make_instances(n: int, per_series: int = 50) -> list[bytes]:
    """``n`` CT instances (``per_series`` per series, one study per series) from CT_small.dcm."""
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    template = pydicom.dcmread(path)
    out = []
    study = series = ""
    for i in range(n):
        if i % per_series == 0:
            study, series = generate_uid(), generate_uid()
        ds = template.copy()
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i % per_series + 1
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out.append(buf.getvalue())
    return out


def _reference(url: str, settings: object, refs: Sequence[object]) -> float:
    """Instances/s of a plain sequential ``retrieve_instance`` loop."""
    from server.pacs.client import connect

    client = connect(url, settings)  # type: ignore[arg-type]
    start = time.perf_counter()
    for ref in refs:
        client.retrieve_instance(ref.study_uid, ref.series_uid, ref.sop_uid)  # type: ignore[attr-defined]
    return len(refs) / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcgip bench dicomweb-import", description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=300, help="instances in the PACS (default 300)")
    parser.add_argument("--quick", action="store_true", help="20 instances (smoke run)")
    args = parser.parse_args(argv)
    n = 20 if args.quick else args.instances

    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    try:
        from tests.support.orthanc import start_orthanc
    except ImportError:
        print("needs a source checkout (tests/support/orthanc.py starts the private Orthanc)")
        return 2

    from server.db import Database
    from server.jobs import queue
    from server.jobs.kinds import PacsImportSpec
    from server.models import Base, Dataset, Job, JobState
    from server.pacs.client import connect
    from server.pacs.query import ImportQuery, find_studies, iter_instances
    from server.settings import Settings
    from server.worker.runner import Worker

    orthanc = start_orthanc()
    if orthanc is None:
        print("Orthanc with its DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb)")
        return 2
    work = Path(tempfile.mkdtemp(prefix="mcgip-bench-dicomweb-"))
    try:
        for data in make_instances(n):
            orthanc.upload(data)
        settings = Settings(
            data_dir=work,
            secret_key="bench-secret-key-that-is-long-enough-0123456789",
            pacs_url=orthanc.dicomweb_url,
            pacs_username=orthanc.username,
            pacs_password=orthanc.password,
        )
        db = Database(settings.resolved_database_url)
        Base.metadata.create_all(db.engine)
        with db.session() as session:
            dataset = Dataset(name="bench", label_set=["a", "b"])
            session.add(dataset)
            session.flush()
            dataset_id = dataset.id

        client = connect(orthanc.dicomweb_url, settings)
        studies, _ = find_studies(client, ImportQuery())
        refs = [ref for uid in studies for ref in iter_instances(client, uid, None)]
        assert len(refs) == n, (len(refs), n)

        reference_before = _reference(orthanc.dicomweb_url, settings, refs)
        job = queue.submit(db, PacsImportSpec(), dataset_id=dataset_id)
        start = time.perf_counter()
        Worker(settings, db=db).run_job(job.id)
        elapsed = time.perf_counter() - start
        reference_after = _reference(orthanc.dicomweb_url, settings, refs)
        with db.session() as session:
            final = session.get(Job, job.id)
            assert final is not None
            if final.state != JobState.succeeded or (final.result or {}).get("imported") != n:
                print(f"import job {final.state.value}: {final.error} {final.result}")
                return 1
        db.dispose()
        reference = max(reference_before, reference_after)
        rate = n / elapsed
        ratio = rate / reference
        print(f"instances: {n} (CT 128x128, 16-bit, {len(studies)} studies), Orthanc on loopback")
        print(
            f"reference dicomweb-client retrieve_instance: {reference:.1f} instances/s "
            f"(passes: {reference_before:.1f}, {reference_after:.1f})"
        )
        print(f"pacs-import job: {rate:.1f} instances/s ({elapsed:.2f} s)")
        verdict = "met" if ratio >= TARGET else "NOT met"
        print(f"ratio import/reference: {ratio:.2f}x (target >= {TARGET}x: {verdict})")
        return 0
    finally:
        orthanc.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
