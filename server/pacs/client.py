"""A DICOMweb client for the configured PACS, with credentials from the settings and safe errors.

Credentials (``MCGIP_PACS_USERNAME``/``MCGIP_PACS_PASSWORD`` for basic auth, or ``MCGIP_PACS_TOKEN``
for a bearer token) are attached only to URLs under ``MCGIP_PACS_URL`` when that is set, so an admin
typing another URL does not hand them to another server. Error messages name the PACS by its URL
(never with credentials) and the HTTP status; they never quote a response body or a request path,
which holds UIDs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import requests
from dicomweb_client.api import DICOMwebClient

from server.settings import Settings

logger = logging.getLogger(__name__)

# dicomweb-client logs every UID it retrieves at INFO level; UIDs identify studies.
logging.getLogger("dicomweb_client").setLevel(logging.WARNING)

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


class PacsError(Exception):
    """The PACS cannot be used: unreachable, refusing the credentials, or answering errors.

    The message is safe to show to admins and to log (no credentials, no UIDs).
    """


class InvalidPacsUrl(ValueError):
    """The URL given for a PACS is not a usable DICOMweb base URL."""


def normalise_url(url: str) -> str:
    """``url`` without a trailing slash, after checking it is a plain http(s) URL.

    Raises:
        InvalidPacsUrl: another scheme, no host, credentials in the URL, a query or a fragment.
    """
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise InvalidPacsUrl(f"PACS URL is malformed: {exc}") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidPacsUrl("PACS URL must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidPacsUrl("PACS URL must not contain credentials; set them in MCGIP_PACS_* instead")
    if parts.query or parts.fragment:
        raise InvalidPacsUrl("PACS URL must not have a query or fragment")
    return url.strip().rstrip("/")


def _under(url: str, base: str) -> bool:
    return url == base or url.startswith(base + "/")


def credentials_apply(url: str, settings: Settings) -> bool:
    """Whether the configured credentials may be sent to ``url``."""
    if settings.pacs_url is None:
        return True
    return _under(normalise_url(url), normalise_url(settings.pacs_url))


def http_session(url: str, settings: Settings) -> requests.Session:
    """A requests session authenticated for ``url`` as the settings say."""
    session = requests.Session()
    if not credentials_apply(url, settings):
        logger.warning("PACS URL is not under MCGIP_PACS_URL: connecting without credentials")
        return session
    if settings.pacs_token is not None:
        session.headers["Authorization"] = f"Bearer {settings.pacs_token.get_secret_value()}"
    elif settings.pacs_username is not None and settings.pacs_password is not None:
        session.auth = (settings.pacs_username, settings.pacs_password.get_secret_value())
    return session


def connect(url: str, settings: Settings) -> DICOMwebClient:
    """A DICOMweb client of the PACS at ``url`` (QIDO, WADO and STOW under the same base URL)."""
    base = normalise_url(url)
    client = DICOMwebClient(url=base, session=http_session(base, settings), timeout=settings.pacs_timeout_s)
    # Retry 429/503/504 twice with a short back-off instead of the library's five slow attempts.
    client.set_http_retry_params(max_attempts=3, wait_exponential_multiplier=200)
    return client


def describe(exc: BaseException, url: str) -> str:
    """A message for a failed PACS request that names the PACS and the problem, nothing more."""
    where = f"PACS at {url}"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        if code in (401, 403):
            return f"{where} refused the credentials (HTTP {code}); check the MCGIP_PACS_* settings"
        return f"{where} answered HTTP {code} {exc.response.reason or ''}".rstrip()
    if isinstance(exc, requests.ConnectionError):
        return f"{where} is unreachable (connection failed)"
    if isinstance(exc, requests.Timeout):
        return f"{where} did not answer in time"
    if isinstance(exc, requests.RequestException):
        return f"{where}: request failed ({type(exc).__name__})"
    return f"{where}: {type(exc).__name__}"


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a failed request, if it got an answer."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return int(exc.response.status_code)
    return None


#: WADO-RS Accept for one instance as it is stored (no transcoding by the server).
_INSTANCE_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def retrieve_instance_bytes(client: DICOMwebClient, study_uid: str, series_uid: str, sop_uid: str) -> bytes:
    """WADO-RS retrieve one instance as the raw bytes of its ``application/dicom`` part.

    ``DICOMwebClient.retrieve_instance`` parses the part into a data set, which the upload path would
    have to write back to bytes and parse again; this goes through the same client (its session,
    credentials, timeout and retry policy) and returns the part as received. The UIDs come from the
    PACS's own QIDO answers and are checked to be UIDs before they become a URL path.

    Raises:
        requests.RequestException: the request failed (``HTTPError`` with the status).
        ValueError: a UID is malformed, or the answer is neither multipart nor a single DICOM object.
    """
    for uid in (study_uid, series_uid, sop_uid):
        if not _UID.match(uid) or len(uid) > 64:
            raise ValueError("the PACS listed a malformed UID")
    url = f"{client.base_url}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
    # _http_get and _decode_multipart_message are the client's own request (with its retries and
    # status check) and multipart decoding, as used by retrieve_instance (dicomweb-client 0.61 pinned).
    response = client._http_get(url, headers={"Accept": _INSTANCE_ACCEPT})
    if response.headers.get("Content-Type", "").startswith("application/dicom"):
        return bytes(response.content)  # a server sending the part without the multipart envelope
    parts = [part for part in client._decode_multipart_message(response, stream=False) if part]
    if len(parts) != 1:
        raise ValueError(f"expected one DICOM object, the PACS answered {len(parts)}")
    return bytes(parts[0])


def iter_series_parts(client: DICOMwebClient, study_uid: str, series_uid: str) -> Iterator[bytes]:
    """WADO-RS retrieve a whole series in one request; yields each ``application/dicom`` part as it
    arrives (the answer is streamed, so memory holds about one instance, not the series).

    One request per series instead of one per instance saves most of the per-request cost on both
    sides (for small instances the requests cost more than the data). Parts come in the server's
    order; which instance a part is must be read from the part.

    Raises:
        requests.RequestException: the request failed (``HTTPError`` with the status), also midway.
        ValueError: a UID is malformed, or the answer is neither multipart nor a single DICOM object.
    """
    for uid in (study_uid, series_uid):
        if not _UID.match(uid) or len(uid) > 64:
            raise ValueError("the PACS listed a malformed UID")
    url = f"{client.base_url}/studies/{study_uid}/series/{series_uid}"
    # The client's own request (retries, status check) and streaming multipart decoding, as its
    # iter_series uses them (dicomweb-client 0.61 pinned); iter_series itself parses every part.
    response = client._http_get(url, headers={"Accept": _INSTANCE_ACCEPT}, stream=True)
    if response.headers.get("Content-Type", "").startswith("application/dicom"):
        yield bytes(response.content)
        return
    for part in client._decode_multipart_message(response, stream=True):
        if part:
            yield bytes(part)
