"""Errors raised while reading uploaded images.

Each error carries the HTTP status a web handler should answer with, and a ``detail`` that names the
problem without quoting any value read from the file (a DICOM tag value may be PHI).
"""

from __future__ import annotations


class ImagingError(ValueError):
    """Base class of every error raised by :mod:`server.imaging` for a bad upload.

    Attributes:
        detail: Human-readable description of the problem, safe to return to the client and to log.
        status_code: The HTTP status that fits the problem.
    """

    status_code = 422

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UnsupportedImageType(ImagingError):
    """The content is not PNG, JPEG or DICOM (HTTP 415). The message contains "unsupported"."""

    status_code = 415


class InvalidImage(ImagingError):
    """The file has a supported type but is truncated, corrupt or holds no usable image (HTTP 422)."""

    status_code = 422


class ImageTooLarge(InvalidImage):
    """The image has more pixels than allowed; raised before its pixels are decoded (HTTP 413).

    A subclass of :class:`InvalidImage` so that callers that only know ``InvalidImage`` still reject
    it; callers that answer 413 catch this class first.
    """

    status_code = 413
