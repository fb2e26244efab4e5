"""Keep tag values out of logs when pydicom reads or writes uploads.

pydicom reports invalid values (wrong length, bad characters, unparsable numbers) by logging and
warning with the value quoted, and those values may be PHI. This module, applied once on import of
the DICOM readers:

- switches pydicom's value validation off for reading and writing (uploads are accepted as sent;
  de-identification does not depend on values being well-formed), so those messages are not made;
- installs a filter on the ``pydicom`` logger that replaces quoted text in any remaining message
  with ``<redacted>``.
"""

from __future__ import annotations

import logging
import re

import pydicom.config

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
REDACTED = "<redacted>"


class RedactQuoted(logging.Filter):
    """Replace quoted substrings of a log record's formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _QUOTED.sub(REDACTED, message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def apply() -> None:
    """Configure pydicom as described in the module docstring (idempotent)."""
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE
    logger = logging.getLogger("pydicom")
    if not any(isinstance(f, RedactQuoted) for f in logger.filters):
        logger.addFilter(RedactQuoted())


apply()
