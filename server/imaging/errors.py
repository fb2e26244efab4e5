"""Errors raised while reading uploaded images.

Each error is a domain error (:mod:`server.exceptions`), so the one handler in :mod:`server.errors`
answers with its status; its ``detail`` names the problem without quoting any value read from the
file (a DICOM tag value may be PHI).
"""

from __future__ import annotations

from server.exceptions import Invalid, TooLarge, Unsupported


class ImagingError(Invalid, ValueError):
    """Base class of every error raised by :mod:`server.imaging` for a bad upload (HTTP 422).

    Attributes:
        detail: Human-readable description of the problem, safe to return to the client and to log.
    """

    detail: str

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class UnsupportedImageType(Unsupported, ImagingError):
    """The content is not PNG, JPEG or DICOM (HTTP 415). The message contains "unsupported"."""


class InvalidImage(ImagingError):
    """The file has a supported type but is truncated, corrupt or holds no usable image (HTTP 422)."""


class ImageTooLarge(TooLarge, InvalidImage):
    """The image has more pixels than allowed; raised before its pixels are decoded (HTTP 413).

    A subclass of :class:`InvalidImage` so that callers that only know ``InvalidImage`` still reject
    it; callers that answer 413 catch this class first.
    """
