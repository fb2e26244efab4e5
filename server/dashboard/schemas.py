"""Response shapes of the dashboard statistics API."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Histogram(BaseModel):
    """Counts of values in ``len(edges) - 1`` bins; bin i is [edges[i], edges[i+1]), the last one closed."""

    edges: list[float]
    counts: list[int]


class ReaderSessions(BaseModel):
    reader_id: int
    username: str
    sessions: int
    finished: int
    cases: int = Field(description="distinct cases the reader has a session on")
    samples: int


class CaseSessions(BaseModel):
    case_id: int
    title: str
    sessions: int
    finished: int
    readers: int


class CountBucket(BaseModel):
    """``items`` things have exactly ``value`` of something (e.g. 3 cases with 2 sessions)."""

    value: int
    items: int


class SourceSessions(BaseModel):
    source: str
    sessions: int
    calibrated: int = Field(description="sessions that recorded a validation error")
    median_error_px: float | None


class CalibrationStats(BaseModel):
    """Distribution of the validation error sessions record in ``source_info``."""

    key: str = Field(
        description="the top-level source_info key read (webcam sessions: calibration.validation.mean_px)"
    )
    sessions_with: int
    sessions_without: int
    mean: float | None
    median: float | None
    p90: float | None
    histogram: Histogram


class GazeTotals(BaseModel):
    sessions: int
    open: int
    finished: int
    aborted: int
    readers: int
    cases: int = Field(description="cases in scope (the dataset, or all datasets)")
    cases_read: int = Field(description="cases with at least one finished session")
    samples: int


class GazeStats(BaseModel):
    dataset_id: int | None
    totals: GazeTotals
    by_reader: list[ReaderSessions]
    by_case: list[CaseSessions] = Field(description="most-read cases first, at most `limit`")
    cases_by_sessions: list[CountBucket] = Field(description="value: sessions on a case; items: cases")
    sources: list[SourceSessions]
    calibration: CalibrationStats


class CasePositives(BaseModel):
    case_id: int
    title: str
    positives: int


class PairCoverage(BaseModel):
    cases: int
    cases_with_pair: int
    cases_with_positive: int
    cases_with_finished_session: int
    fraction_with_positive: float


class LabelPrecision(BaseModel):
    """How often positive pairs join cases of the same evaluation label, against chance."""

    n_pairs: int = Field(description="positive pairs whose two cases are both labelled")
    same_label: float | None = Field(description="share of those pairs with the same label")
    base_rate: float | None = Field(description="same-label share of two random labelled cases")
    positives_per_case: float = Field(description="positive pairs per case (pair density x 2)")


class PairStats(BaseModel):
    dataset_id: int
    metric: str
    metrics: list[str] = Field(description="metrics that have pairs in this dataset")
    threshold: float = Field(description="the dataset's positive threshold")
    pairs: int
    positives: int
    similarity: Histogram
    positive_similarity: Histogram = Field(description="same edges, positive pairs only")
    positives_per_case: list[CountBucket] = Field(description="value: positives of a case; items: cases")
    top_cases: list[CasePositives]
    readers_per_pair: list[CountBucket] = Field(description="value: readers behind a pair; items: pairs")
    coverage: PairCoverage
    label_precision: LabelPrecision | None = Field(
        None, description="pair precision against the cases' labels, where labels exist"
    )
