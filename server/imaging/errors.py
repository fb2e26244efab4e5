"""Exceptions raised while ingesting an image; the web layer maps each to one HTTP status."""

from __future__ import annotations


class ImagingError(Exception):
    """Base class of every error raised by :mod:`server.imaging`."""


class UnsupportedImageType(ImagingError):
    """The content is not a supported image type (HTTP 415). The message contains "unsupported"."""


class ImageTooLarge(ImagingError):
    """The image has more pixels than allowed; raised before its pixels are decoded (HTTP 413)."""


class InvalidImage(ImagingError):
    """The file has a supported type but is truncated, corrupt or holds no usable image (HTTP 422)."""
