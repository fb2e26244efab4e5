"""Reader diagnoses as a DICOM Comprehensive SR (highdicom) that references the ORIGINAL image.

The SR joins the original study in the PACS: its patient and study attributes are copied from the
original instance's metadata (fetched from the PACS with WADO-RS when the report is built, held in
memory only), and its content references the original SOP instance:

```
CONTAINER  Diagnostic Imaging Report (LN 18748-4)
 ├ CONTAINS  IMAGE  Source of Measurement (DCM 121112) -> original SOP class + instance UID
 └ CONTAINS  CODE   Finding (DCM 121071) = <label> (99MCGIP)          one per reader diagnosis
     ├ HAS OBS CONTEXT  PNAME  Person Observer Name (DCM 121008) = reader's username
     └ HAS PROPERTIES   NUM    Reader confidence (99MCGIP CONF) = 0..1    when the reader gave one
 └ CONTAINS  CODE   Finding (DCM 121071) = <predicted label>          when predictions are enabled
     ├ HAS OBS CONTEXT  TEXT   Algorithm Name (DCM 111001) = "McGIP model <id> v<version>"
     └ HAS PROPERTIES   NUM    Model probability (99MCGIP PROB) = probability of that label
```
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import highdicom as hd
from pydicom.dataset import Dataset as DicomDataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

#: Private coding scheme of McGIP's labels (PS3.16 8.2: 99-prefixed designators are local).
SCHEME = "99MCGIP"
CONFIDENCE = Code("CONF", SCHEME, "Reader confidence")
PROBABILITY = Code("PROB", SCHEME, "Model probability")
NO_UNITS = Code("1", "UCUM", "no units")
#: Series number of the SR series McGIP adds to a study.
SR_SERIES_NUMBER = 9901
MANUFACTURER = "McGIP"

# Patient/study attributes highdicom copies from the evidence; type 2, so present even if empty.
_TYPE2 = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID")


@dataclass(frozen=True)
class Diagnosis:
    """One reader's diagnosis of a case."""

    reader: str
    label: str
    confidence: float | None


@dataclass(frozen=True)
class Prediction:
    """The active model's prediction for a case."""

    model: str
    label: str
    probability: float


@dataclass(frozen=True)
class OriginalImage:
    """The PACS's UIDs of a case's image (from ``pacs_uid_links``)."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str


def content_digest(
    image: OriginalImage, diagnoses: Sequence[Diagnosis], prediction: Prediction | None = None
) -> str:
    """SHA-256 of what a report says; the same content is not sent twice."""
    body = {
        "sop": image.sop_uid,
        "diagnoses": sorted((asdict(d) for d in diagnoses), key=json.dumps),
        "prediction": asdict(prediction) if prediction else None,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


#: DICOM JSON tags kept from the original's metadata: patient, study and instance identity only.
_EVIDENCE_TAGS = frozenset(
    {
        "00080005",  # SpecificCharacterSet
        "00080016",  # SOPClassUID
        "00080018",  # SOPInstanceUID
        "00080020",  # StudyDate
        "00080030",  # StudyTime
        "00080050",  # AccessionNumber
        "00080090",  # ReferringPhysicianName
        "00100010",  # PatientName
        "00100020",  # PatientID
        "00100030",  # PatientBirthDate
        "00100040",  # PatientSex
        "0020000D",  # StudyInstanceUID
        "0020000E",  # SeriesInstanceUID
        "00200010",  # StudyID
    }
)


def evidence_from_metadata(metadata: dict[str, Any]) -> DicomDataset:
    """The original instance's identity (DICOM JSON from WADO-RS metadata) as a data set for highdicom.

    Only patient, study and instance identity are kept (no pixel data or bulk data references).
    """
    ds = DicomDataset.from_json(
        {tag: value for tag, value in metadata.items() if tag.upper() in _EVIDENCE_TAGS}
    )
    for keyword in _TYPE2:
        if keyword not in ds:
            setattr(ds, keyword, "")
    for keyword in ("StudyDate", "StudyTime"):
        if keyword not in ds:
            setattr(ds, keyword, None)
    return ds


def _finding(diagnosis: Diagnosis) -> hd.sr.CodeContentItem:
    item = hd.sr.CodeContentItem(
        name=codes.DCM.Finding,
        value=Code(diagnosis.label[:16], SCHEME, diagnosis.label),
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )
    children: list[hd.sr.ContentItem] = [
        hd.sr.PnameContentItem(
            name=codes.DCM.PersonObserverName,
            # A trailing caret marks a single-component person name (PS3.5 6.2.1.2).
            value=f"{diagnosis.reader}^",
            relationship_type=hd.sr.RelationshipTypeValues.HAS_OBS_CONTEXT,
        )
    ]
    if diagnosis.confidence is not None:
        children.append(
            hd.sr.NumContentItem(
                name=CONFIDENCE,
                value=float(diagnosis.confidence),
                unit=NO_UNITS,
                relationship_type=hd.sr.RelationshipTypeValues.HAS_PROPERTIES,
            )
        )
    item.ContentSequence = hd.sr.ContentSequence(children)
    return item


def _predicted(prediction: Prediction) -> hd.sr.CodeContentItem:
    item = hd.sr.CodeContentItem(
        name=codes.DCM.Finding,
        value=Code(prediction.label[:16], SCHEME, prediction.label),
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )
    item.ContentSequence = hd.sr.ContentSequence(
        [
            hd.sr.TextContentItem(
                name=codes.DCM.AlgorithmName,
                value=prediction.model,
                relationship_type=hd.sr.RelationshipTypeValues.HAS_OBS_CONTEXT,
            ),
            hd.sr.NumContentItem(
                name=PROBABILITY,
                value=float(prediction.probability),
                unit=NO_UNITS,
                relationship_type=hd.sr.RelationshipTypeValues.HAS_PROPERTIES,
            ),
        ]
    )
    return item


def build_report(
    *,
    evidence: DicomDataset,
    image: OriginalImage,
    diagnoses: Sequence[Diagnosis],
    prediction: Prediction | None = None,
    instance_number: int = 1,
) -> hd.sr.ComprehensiveSR:
    """A Comprehensive SR of ``diagnoses`` in the original study, referencing the original image.

    Args:
        evidence: The original instance's attributes (patient, study, UIDs), see
            :func:`evidence_from_metadata`.
        image: The original UIDs (must match ``evidence``).
        diagnoses: The readers' diagnoses.
        prediction: The model's prediction, if any (diagnoses or prediction: at least one).
        instance_number: Instance number of the SR in its (new) series.

    Raises:
        ValueError: nothing to report, or evidence of another instance.
    """
    if not diagnoses and prediction is None:
        raise ValueError("a report needs a diagnosis or a prediction")
    if str(evidence.get("SOPInstanceUID", "")) != image.sop_uid:
        raise ValueError("the evidence is not the referenced instance")
    root = hd.sr.ContainerContentItem(name=codes.LN.DiagnosticImagingReport)
    items: list[hd.sr.ContentItem] = [
        hd.sr.ImageContentItem(
            name=codes.DCM.SourceOfMeasurement,
            referenced_sop_class_uid=image.sop_class_uid,
            referenced_sop_instance_uid=image.sop_uid,
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )
    ]
    items += [_finding(d) for d in diagnoses]
    if prediction is not None:
        items.append(_predicted(prediction))
    root.ContentSequence = hd.sr.ContentSequence(items)
    return hd.sr.ComprehensiveSR(
        evidence=[evidence],
        content=root,
        series_instance_uid=hd.UID(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        is_complete=True,
        series_description="McGIP reader diagnoses",
    )
