"""De-identification on ingest: PHI gone from every output, UIDs remapped consistently."""

from __future__ import annotations

import io
import json
import logging
import warnings

import pydicom
import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from server.imaging import IngestedImage, deid_rules, ingest_image, remap_uid
from tests.server.imaging.helpers import SALT, bundled_dataset, dicom_bytes

# Values planted in the PHI-laden test file; none may appear in anything ingest produces.
PHI = {
    "PatientName": "Zzyzx^Quentin",
    "PatientID": "MRN7734921",
    "PatientBirthDate": "19450317",
    "PatientAddress": "42 Wallaby Way Sydney",
    "PatientTelephoneNumbers": "555-0199-334",
    "OtherPatientIDs": "ALT99120",
    "PatientMotherBirthName": "Abernathy^Mavis",
    "ReferringPhysicianName": "Hibbert^Julius",
    "PerformingPhysicianName": "Riviera^Nick",
    "NameOfPhysiciansReadingStudy": "Quinn^Michaela",
    "OperatorsName": "Scully^Dana",
    "InstitutionName": "Springfield General Hospital",
    "InstitutionAddress": "1 Hospital Rd Springfield",
    "InstitutionalDepartmentName": "Radiology West Wing",
    "StationName": "CTSCAN7Q",
    "AccessionNumber": "ACC5558812",
    "StudyDate": "20230415",
    "SeriesDate": "20230416",
    "AcquisitionDate": "20230417",
    "ContentDate": "20230418",
    "StudyTime": "101112.125",
    "AcquisitionDateTime": "20230417101530",
    "DeviceSerialNumber": "SNHX774411",
    "StudyID": "STUDY88123",
    "StudyDescription": "CT head for Zzyzx",
    "ImageComments": "patient fell at Gorseway farm",
    "RequestingPhysician": "Nick^Doctor",
    "StationAETitle": "SPRINGCTAE",
    "RetrieveAETitle": "PACSRETRAE",
    "RetrieveURL": "https://pacs.springfield.example/wado",
}
# CT_small.dcm's own identifying values: other patient IDs in a sequence, private creator, study UID.
ORIGINAL_PHI = ["ABCD1234", "1234ABCD", "GEMS_IDEN_01", "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"]
PRIVATE_VALUE = "PRIVATE-PHI-31337"
NESTED_NAME = "Nested^Personname"
OVERLAY_TEXT = "overlay says Gorseway"


def phi_dataset() -> Dataset:
    ds = bundled_dataset("CT_small.dcm")
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    block = ds.private_block(0x0043, "ACME PHI STORE", create=True)
    block.add_new(0x01, "LO", PRIVATE_VALUE)
    inner = Dataset()
    inner.PatientName = "Private^Sequence^Name"
    block.add_new(0x02, "SQ", Sequence([inner]))
    reference = Dataset()
    reference.ReferencedSOPClassUID = ds.SOPClassUID
    reference.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7.8.9"
    reference.PersonName = NESTED_NAME
    reference.InstanceCreationDate = "20230419"
    ds.ReferencedImageSequence = Sequence([reference])
    ds.add_new(0x60004000, "LT", OVERLAY_TEXT)  # Overlay Comments
    ds.add_new(0x50000022, "LO", "curve of Zzyzx")  # Curve Description (retired curve group)
    return ds


def planted_strings() -> list[str]:
    return [
        *PHI.values(),
        *ORIGINAL_PHI,
        PRIVATE_VALUE,
        NESTED_NAME,
        OVERLAY_TEXT,
        "Private^Sequence^Name",
        "20230419",
        "curve of Zzyzx",
    ]


def ingest(data: bytes, salt: bytes = SALT) -> IngestedImage:
    return ingest_image(data, max_pixels=1_000_000, uid_salt=salt)


def test_no_planted_value_survives_anywhere(caplog: pytest.LogCaptureFixture) -> None:
    source = phi_dataset()
    data = dicom_bytes(source)
    for value in planted_strings():
        assert value.encode() in data, f"test set-up did not plant {value!r}"
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = ingest(data)
    assert image.deidentified_dicom is not None
    outputs = {
        "deidentified_dicom": image.deidentified_dicom,
        "display_png": image.display_png,
        "thumbnail_png": image.thumbnail_png,
        "pixels_png16": image.pixels_png16,
        "metadata": json.dumps(image.metadata).encode(),
        "fields": repr(
            {k: v for k, v in vars(image).items() if not isinstance(v, bytes | type(image.pixels))}
        ).encode(),
        "logs": "\n".join(r.getMessage() for r in caplog.records).encode(),
        "warnings": "\n".join(str(w.message) for w in caught).encode(),
    }
    for value in planted_strings():
        for where, blob in outputs.items():
            assert value.encode() not in blob, f"{value!r} found in {where}"


def test_deidentified_file_is_valid_and_marked() -> None:
    source = phi_dataset()
    image = ingest(dicom_bytes(source))
    assert image.deidentified_dicom is not None
    out = pydicom.dcmread(io.BytesIO(image.deidentified_dicom))
    assert image.deidentified_dicom[128:132] == b"DICM"
    assert out.PatientIdentityRemoved == "YES"
    assert out.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert out.DeidentificationMethodCodeSequence[0].CodingSchemeDesignator == "DCM"
    assert out.LongitudinalTemporalInformationModified == "REMOVED"
    assert "Basic" in out.DeidentificationMethod
    # Type 2 attributes stay present but empty.
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "AccessionNumber",
    ):
        assert keyword in out and not out[keyword].value
    for keyword in ("PatientAddress", "OtherPatientIDsSequence", "StationAETitle", "RetrieveURL"):
        assert keyword not in out
    # X/Z/D and X/D attributes the source had stay (the IOD may require them) with dummy values.
    for keyword in ("InstitutionName", "OperatorsName", "SeriesDate", "DeviceSerialNumber"):
        assert out[keyword].value and out[keyword].value != PHI[keyword], keyword
    assert not any(elem.tag.is_private for elem in out.iterall())
    assert not any(0x6000 <= elem.tag.group <= 0x60FF or 0x5000 <= elem.tag.group <= 0x50FF for elem in out)
    # Non-identifying content is kept.
    assert out.Modality == "CT" and out.SOPClassUID == source.SOPClassUID
    assert out.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
    assert out.pixel_array.tobytes() == source.pixel_array.tobytes()
    assert float(out.RescaleIntercept) == float(source.RescaleIntercept)


def test_uids_are_remapped_with_the_keyed_hash() -> None:
    source = phi_dataset()
    image = ingest(dicom_bytes(source))
    assert image.deidentified_dicom is not None
    out = pydicom.dcmread(io.BytesIO(image.deidentified_dicom))
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
        old, new = str(source[keyword].value), str(out[keyword].value)
        assert new != old and new == remap_uid(old, SALT)
        assert old.encode() not in image.deidentified_dicom
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    item = out.ReferencedImageSequence[0]
    assert item.ReferencedSOPInstanceUID == remap_uid("1.2.3.4.5.6.7.8.9", SALT)
    assert item.ReferencedSOPClassUID == source.SOPClassUID  # class UIDs are not instance data
    assert item.get("PersonName", "") != NESTED_NAME and item.get("InstanceCreationDate", "") != "20230419"


def test_same_input_same_output_and_salt_matters() -> None:
    data = dicom_bytes(phi_dataset())
    first, second = ingest(data), ingest(data)
    assert first.deidentified_dicom == second.deidentified_dicom
    other = ingest(data, salt=b"another-key-of-some-length")
    assert first.deidentified_dicom is not None and other.deidentified_dicom is not None
    a = pydicom.dcmread(io.BytesIO(first.deidentified_dicom))
    b = pydicom.dcmread(io.BytesIO(other.deidentified_dicom))
    assert a.StudyInstanceUID != b.StudyInstanceUID and a.SOPInstanceUID != b.SOPInstanceUID


def test_images_of_one_study_stay_grouped_and_references_stay_valid() -> None:
    first = phi_dataset()
    second = phi_dataset()
    second.SOPInstanceUID = first.SOPInstanceUID + ".2"
    second.ReferencedImageSequence[0].ReferencedSOPInstanceUID = first.SOPInstanceUID
    out1 = pydicom.dcmread(io.BytesIO(ingest(dicom_bytes(first)).deidentified_dicom or b""))
    out2 = pydicom.dcmread(io.BytesIO(ingest(dicom_bytes(second)).deidentified_dicom or b""))
    assert out1.StudyInstanceUID == out2.StudyInstanceUID
    assert out1.SeriesInstanceUID == out2.SeriesInstanceUID
    assert out1.SOPInstanceUID != out2.SOPInstanceUID
    assert out2.ReferencedImageSequence[0].ReferencedSOPInstanceUID == out1.SOPInstanceUID


def test_remapped_uid_is_valid() -> None:
    new = remap_uid("1.3.6.1.4.1.5962.1.2.1.20040119072730.12322", SALT)
    assert new.startswith("2.25.") and len(new) <= 64 and UID(new).is_valid
    assert remap_uid("1.2.3\x00", SALT) == remap_uid("1.2.3", SALT)  # padding is not part of the UID
    assert remap_uid("1.2.3", SALT) != remap_uid("1.2.4", SALT)


def test_empty_salt_is_refused() -> None:
    with pytest.raises(ValueError, match="uid_salt"):
        ingest_image(dicom_bytes(phi_dataset()), max_pixels=1_000_000, uid_salt=b"")


@pytest.mark.parametrize("table", ["TYPE2_ADDED", "PATIENT_GROUP_KEEP", "CLASS_UID_KEYWORDS"])
def test_rule_keywords_exist_in_the_dictionary(table: str) -> None:
    unknown = sorted(k for k in getattr(deid_rules, table) if tag_for_keyword(k) is None)
    assert unknown == []


def test_invalid_values_are_not_quoted_in_logs_or_warnings(caplog: pytest.LogCaptureFixture) -> None:
    ds = bundled_dataset("MR_small.dcm")
    ds.PatientBirthDate = "JOHNDOE1"  # not a date: pydicom would normally warn quoting it
    ds.PatientAge = "Z" * 30  # too long for AS
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ingest(dicom_bytes(ds))
    text = "\n".join(r.getMessage() for r in caplog.records) + "\n".join(str(w.message) for w in caught)
    assert "JOHNDOE1" not in text and "Z" * 30 not in text


def test_pydicom_log_messages_have_quoted_text_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    logging.getLogger("pydicom").warning("Invalid value for VR DA: '%s'", "Zzyzx^Quentin")
    assert "Zzyzx" not in caplog.text and "<redacted>" in caplog.text
