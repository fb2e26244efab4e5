"""Which instances an import takes from the PACS: QIDO-RS filters and the instance listing."""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dicomweb_client.api import DICOMwebClient
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from server.pacs.client import normalise_url

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
#: DICOM modality codes are upper-case letters and digits (PS3.3 C.7.3.1.1.1).
_MODALITY = re.compile(r"^[A-Z0-9_]{1,16}$")


class ImportQuery(BaseModel):
    """What to import (the parameters of a ``pacs-import`` job).

    Attributes:
        url: DICOMweb base URL; the configured ``MCGIP_PACS_URL`` when omitted.
        study_uids: Only these studies (each still has to match the other filters).
        modality: Only series of this modality (e.g. ``CT``, ``MR``, ``CR``).
        date_from, date_to: Study date range, inclusive.
        study_description: Pattern for StudyDescription (``*`` and ``?`` wildcards, any case). Matched
            here on the QIDO results rather than sent as a filter: servers differ in how they decode
            and match wildcards (Orthanc's DICOMweb 1.7 does not percent-decode query values).
    """

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, max_length=512, description="DICOMweb base URL (default MCGIP_PACS_URL)")
    study_uids: list[str] = Field(default_factory=list, max_length=1000)
    modality: str | None = Field(None, description="series modality, e.g. CT")
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    study_description: str | None = Field(None, min_length=1, max_length=64)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else normalise_url(value)

    @field_validator("study_uids")
    @classmethod
    def _uids(cls, value: list[str]) -> list[str]:
        for uid in value:
            if len(uid) > 64 or not _UID.match(uid):
                raise ValueError(f"{uid[:70]!r} is not a DICOM UID (digits and dots, at most 64 characters)")
        return list(dict.fromkeys(value))

    @field_validator("modality")
    @classmethod
    def _modality(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _MODALITY.match(value.upper()):
            raise ValueError(f"{value[:20]!r} is not a DICOM modality code")
        return value.upper()

    @model_validator(mode="after")
    def _dates(self) -> ImportQuery:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"date_from {self.date_from} is after date_to {self.date_to}")
        return self

    def matches_description(self, study: dict[str, Any]) -> bool:
        """Whether a QIDO study result matches ``study_description`` (always, when unset)."""
        if self.study_description is None:
            return True
        return fnmatch.fnmatchcase(_value(study, STUDY_DESCRIPTION).lower(), self.study_description.lower())

    def study_filters(self) -> dict[str, str]:
        """QIDO-RS study-level search filters."""
        filters: dict[str, str] = {}
        if self.date_from or self.date_to:
            start = self.date_from.strftime("%Y%m%d") if self.date_from else ""
            end = self.date_to.strftime("%Y%m%d") if self.date_to else ""
            filters["StudyDate"] = f"{start}-{end}"
        if self.modality:
            filters["ModalitiesInStudy"] = self.modality
        return filters


@dataclass(frozen=True)
class InstanceRef:
    """One instance listed by QIDO-RS (original UIDs; kept in memory, never logged)."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    modality: str
    series_number: str
    instance_number: str


def _value(item: dict[str, Any], tag: str) -> str:
    values = (item.get(tag) or {}).get("Value") or []
    return str(values[0]) if values else ""


# DICOM JSON tags (PS3.18 F.2) of the attributes read from QIDO results.
STUDY_UID, SERIES_UID, SOP_UID, SOP_CLASS = "0020000D", "0020000E", "00080018", "00080016"
MODALITY, SERIES_NUMBER, INSTANCE_NUMBER, STUDY_DATE = "00080060", "00200011", "00200013", "00080020"
STUDY_DESCRIPTION = "00081030"


#: Results asked for per QIDO request; the next page starts where this one ended.
PAGE_SIZE = 1000


def search_all(search: Callable[..., list[dict[str, Any]]], key: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every result of a QIDO search, page by page (``limit``/``offset``).

    Paging stops at a short page, or at a page that brings no new ``key`` values: some servers
    ignore ``offset`` for some queries and would otherwise answer the first page forever.
    """
    results: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        page = search(limit=PAGE_SIZE, offset=offset, **kwargs)
        new = {_value(item, key): item for item in page if _value(item, key) not in results}
        results.update(new)
        if len(page) < PAGE_SIZE or not new:
            return list(results.values())
        offset += len(page)


def find_studies(client: DICOMwebClient, query: ImportQuery) -> tuple[list[str], list[str]]:
    """Study UIDs matching ``query`` (sorted) and the requested study UIDs that matched nothing."""
    filters = query.study_filters()
    found: list[tuple[str, str]] = []
    missing: list[str] = []
    fields = ["StudyInstanceUID", "StudyDate", "StudyDescription"]
    if query.study_uids:
        for uid in query.study_uids:
            hits = client.search_for_studies(
                search_filters={**filters, "StudyInstanceUID": uid}, fields=fields
            )
            hits = [h for h in hits if _value(h, STUDY_UID) == uid and query.matches_description(h)]
            if hits:
                found.append((_value(hits[0], STUDY_DATE), uid))
            else:
                missing.append(uid)
    else:
        for hit in search_all(client.search_for_studies, STUDY_UID, search_filters=filters, fields=fields):
            if query.matches_description(hit):
                found.append((_value(hit, STUDY_DATE), _value(hit, STUDY_UID)))
    return [uid for _, uid in sorted(set(found)) if uid], missing


def _int_key(text: str) -> tuple[int, str]:
    return (int(text), text) if text.lstrip("-").isdigit() else (1 << 30, text)


def iter_instances(client: DICOMwebClient, study_uid: str, modality: str | None) -> Iterator[InstanceRef]:
    """Instances of one study (of series of ``modality`` only, when given), in series/instance order."""
    series_filters = {"Modality": modality} if modality else None
    series = search_all(
        client.search_for_series,
        SERIES_UID,
        study_instance_uid=study_uid,
        search_filters=series_filters,
        fields=["Modality", "SeriesNumber"],
    )
    series.sort(key=lambda s: (_int_key(_value(s, SERIES_NUMBER)), _value(s, SERIES_UID)))
    for item in series:
        series_uid = _value(item, SERIES_UID)
        instances = search_all(
            client.search_for_instances,
            SOP_UID,
            study_instance_uid=study_uid,
            series_instance_uid=series_uid,
            fields=["SOPClassUID", "InstanceNumber"],
        )
        instances.sort(key=lambda i: (_int_key(_value(i, INSTANCE_NUMBER)), _value(i, SOP_UID)))
        for inst in instances:
            yield InstanceRef(
                study_uid=study_uid,
                series_uid=series_uid,
                sop_uid=_value(inst, SOP_UID),
                sop_class_uid=_value(inst, SOP_CLASS),
                modality=_value(item, MODALITY),
                series_number=_value(item, SERIES_NUMBER),
                instance_number=_value(inst, INSTANCE_NUMBER),
            )
