"""Persona REST API client: create, resume, retrieve and redact inquiries; page the event log.

Speaks only HTTP to `https://api.withpersona.com/api/v1` with the API version pinned; the contract is
shared/persona/openapi.yaml (2025-12-08) and shared/reference/persona.md sections 5 and 6. Personal
data (prefilled `fields`) goes only into request bodies: log lines and SinkError reasons name
inquiry ids, operations and HTTP statuses, never field values, Persona's error details or the API key.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from bridge.sinks.errors import SinkError

log = logging.getLogger(__name__)

PERSONA_VERSION = "2025-12-08"  # pinned Persona-Version header: the response shapes this module reads
DEFAULT_BASE_URL = "https://api.withpersona.com/api/v1"

_KEY_SETTING = "PERSONA_API_KEY"
_BASE_URL_HINT = f"check PERSONA_API_BASE ({DEFAULT_BASE_URL})"
_MAX_WAIT_SECONDS = 30.0  # cap on one pause between attempts, whatever Retry-After asks for
# Persona ids are a prefix and a base58-like tail; anything else must not reach the URL path.
_INQUIRY_ID = re.compile(r"inq_[A-Za-z0-9]{1,64}")
# Template id prefix → the create attribute that takes it (OAS paths/inquiries.yaml, post).
# itmplv_ first: prefixes are matched in order.
_TEMPLATE_ATTRIBUTES = (
    ("itmplv_", "inquiry-template-version-id"),
    ("itmpl_", "inquiry-template-id"),
    ("tmpl_", "template-id"),
)
# Error titles are generic ("Record invalid", "Conflict"); only quote one that looks like that.
_SAFE_TITLE = re.compile(r"[A-Za-z][A-Za-z ,.'()-]{0,59}")


@dataclass(frozen=True)
class InquiryHandle:
    inquiry_id: str  # inq_…
    status: str | None  # Persona's status string as returned
    session_token: str | None  # meta.session-token when Persona returned one
    reference_id: str | None


@dataclass(frozen=True)
class EventPage:
    events: tuple[dict[str, Any], ...]  # Persona event objects (`type: event`) as listed, newest first
    next_cursor: str | None  # `page[after]` of the next, older page; None on the last page


@dataclass(frozen=True)
class _Op:
    """What a request is for: names it in reasons and decides whether it may be repeated."""

    label: str
    idempotent: bool
    not_found: str = "inquiry not found"  # what a Persona-shaped 404 means for this call


class _Secret:
    """Holds the Authorization value so that no repr, traceback local or vars() dump shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


class PersonaClient:
    """The inquiries of one Persona environment, through its API key. Keep one per process.

    Retries (bounded by `max_retries`) happen inside each call, pausing through `sleep`."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff_seconds: float = 0.5,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # Checked here so that requests never builds an error message that quotes the header. A key
        # holds no whitespace: a trailing newline from a secrets file is dropped, not sent.
        api_key = api_key.strip() if isinstance(api_key, str) else api_key
        if not isinstance(api_key, str) or not re.fullmatch(r"[\x21-\x7e]+", api_key):
            raise ValueError(f"{_KEY_SETTING} must be a non-empty API key of printable ASCII without spaces")
        if not re.match(r"^https?://", base_url or ""):
            raise ValueError("Persona base_url must start with http:// or https://")
        if timeout <= 0 or max_retries < 0 or backoff_seconds < 0:
            raise ValueError("timeout must be > 0, max_retries and backoff_seconds >= 0")
        self._authorization = _Secret(f"Bearer {api_key}")
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._session = session if session is not None else requests.Session()
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"PersonaClient(base_url={self._base_url!r}, persona_version={PERSONA_VERSION!r})"

    # ------------------------------------------------------------------ public

    def create_inquiry(
        self,
        *,
        template_id: str,
        reference_id: str,
        fields: Mapping[str, str] | None = None,
        redirect_uri: str | None = None,
        idempotency_key: str | None = None,
    ) -> InquiryHandle:
        """Create an inquiry on the account with `reference_id` (created if new) and a session token
        for the hosted or embedded flow. `reference_id` in the handle falls back to the one sent
        when Persona's answer does not carry it."""
        if not isinstance(reference_id, str) or not reference_id.strip():
            raise ValueError("reference_id must be a non-empty string")
        if idempotency_key is not None and not re.fullmatch(r"[\x21-\x7e]{1,255}", idempotency_key):
            raise ValueError("idempotency_key must be 1-255 printable ASCII characters without spaces")
        attributes: dict[str, Any] = {_template_attribute(template_id): template_id}
        if fields:
            attributes["fields"] = dict(fields)  # keys as the template names them: never inflected
        if redirect_uri:
            attributes["redirect-uri"] = redirect_uri
        body = {
            "data": {"attributes": attributes},
            # The reference-id attribute is deprecated: the account's reference id links the person
            # (and needs auto-create-account, which defaults to true; sent to not depend on it).
            "meta": {
                "auto-create-account": True,
                "auto-create-account-reference-id": reference_id,
                "auto-create-inquiry-session": True,
            },
        }
        # A create is not idempotent: after a 5xx or a timeout the inquiry may exist already, and a
        # blind repeat would make a second one. Only an Idempotency-Key lets Persona deduplicate.
        op = _Op("the inquiry creation", idempotent=idempotency_key is not None,
                 not_found="no such template in this Persona environment: check the template id and "
                           f"that {_KEY_SETTING} belongs to the template's environment")
        answer = self._call("POST", "/inquiries", op, json=body, idempotency_key=idempotency_key)
        handle = _handle(answer, op)
        if handle.reference_id is None:
            handle = InquiryHandle(handle.inquiry_id, handle.status, handle.session_token, reference_id)
        log.info("Persona inquiry %s created (status %s)", handle.inquiry_id, handle.status)
        return handle

    def resume_inquiry(self, inquiry_id: str) -> InquiryHandle:
        """A session token for an existing inquiry; an expired inquiry goes back to pending."""
        # Persona reuses an unused session or makes a new one: repeating costs at most a token.
        op = _Op(f"the resume of inquiry {_checked_id(inquiry_id)}", idempotent=True)
        return _handle(self._call("POST", f"/inquiries/{inquiry_id}/resume", op), op)

    def retrieve_inquiry(self, inquiry_id: str) -> InquiryHandle:
        op = _Op(f"the retrieval of inquiry {_checked_id(inquiry_id)}", idempotent=True)
        return _handle(self._call("GET", f"/inquiries/{inquiry_id}", op), op)

    def redact_inquiry(self, inquiry_id: str) -> None:
        """Delete the inquiry's personal data at Persona (irreversible). Already redacted is done."""
        op = _Op(f"the redaction of inquiry {_checked_id(inquiry_id)}", idempotent=True)
        response = self._exchange("DELETE", f"/inquiries/{inquiry_id}", op)
        # A repeat (ours after a lost answer, or an erasure request run twice) finds it redacted:
        # the spec's 409 example for that is "Inquiry already redacted".
        if response.status_code == 409 and _mentions_redaction(_json(response)):
            log.info("Persona inquiry %s was already redacted", inquiry_id)
            return
        _ok(response, op)
        log.info("Persona inquiry %s redacted", inquiry_id)

    def list_events(self, *, names: Sequence[str] = (), after: str | None = None, page_size: int = 100) -> EventPage:
        """One page of the event log, newest first (GET /events); `after` is the cursor of the
        previous page's `next_cursor`. 429 and 5xx are repeated as for every other call."""
        if not 1 <= page_size <= 100:
            raise ValueError("page_size must be 1 to 100")
        params = {"page[size]": str(page_size)}
        if names:
            params["filter[name]"] = ",".join(names)
        if after is not None:
            params["page[after]"] = after
        op = _Op("the event list", idempotent=True, not_found=f"no event list at this address: {_BASE_URL_HINT}")
        body = self._call("GET", "/events", op, params=params)
        data, links = body.get("data"), body.get("links")
        if not isinstance(data, list) or not all(isinstance(e, dict) and e.get("type") == "event" for e in data):
            raise _shape_error(op, "'data' is not a list of events")
        next_link = links.get("next") if isinstance(links, dict) else None
        cursor = None
        if next_link is not None:
            found = parse_qs(urlsplit(str(next_link)).query).get("page[after]") if isinstance(next_link, str) else None
            if not found:
                raise _shape_error(op, "links.next has no page[after] cursor")
            cursor = found[0]
        return EventPage(tuple(data), cursor)

    # ------------------------------------------------------------------ HTTP

    def _call(
        self, method: str, path: str, op: _Op, *, json: Any = None, idempotency_key: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The JSON object of a 2xx answer, else SinkError."""
        return _ok(self._exchange(method, path, op, json=json, idempotency_key=idempotency_key, params=params), op)

    def _exchange(
        self, method: str, path: str, op: _Op, *, json: Any = None, idempotency_key: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send, repeating after 408/429/5xx, timeouts and connection failures when `op` may be
        repeated; the first other answer, or a retryable SinkError once the attempts are used up."""
        headers = {
            "Authorization": self._authorization.reveal(),
            "Persona-Version": PERSONA_VERSION,
            "Key-Inflection": "kebab",  # the key style this module reads, whatever the default
            "Accept": "application/json",
        }
        if json is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        attempts = self._max_retries + 1
        for attempt in range(1, attempts + 1):
            response, failure = self._send(method, path, op, headers, json, params)
            if response is not None:
                if not _transient(response.status_code):
                    return response
                failure = _failure(response.status_code, _json(response), op)
            assert failure is not None
            if not op.idempotent:
                raise SinkError(f"{failure.reason} (not repeated: without an Idempotency-Key a repeat "
                                "could create a second inquiry)", retryable=True, status=failure.status)
            if attempt == attempts:
                break
            wait = self._wait(attempt, response)
            log.warning("%s; attempt %d of %d, next in %.2fs", failure.reason, attempt, attempts, wait)
            self._sleep(wait)
        raise SinkError(f"{failure.reason} (gave up after {attempts} attempts)", retryable=True,
                        status=failure.status)

    def _send(
        self, method: str, path: str, op: _Op, headers: dict[str, str], json: Any,
        params: Mapping[str, str] | None = None,
    ) -> tuple[requests.Response | None, SinkError | None]:
        """One attempt: the response, or a transient SinkError; raises SinkError when hopeless."""
        failure: SinkError | None = None
        try:
            response = self._session.request(
                method,
                self._base_url + path,
                headers=headers,
                json=json,
                params=params,
                timeout=self._timeout,
                allow_redirects=False,  # a redirect would turn POST/DELETE into GET: report it instead
            )
            return response, None
        except requests.Timeout:
            return None, SinkError(f"Persona did not answer {op.label} within {self._timeout:g}s",
                                   retryable=True)
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema):
            failure = SinkError(f"cannot call Persona for {op.label}: {_BASE_URL_HINT}", retryable=False)
        except requests.exceptions.InvalidHeader:
            failure = SinkError(f"cannot send {_KEY_SETTING} to Persona: check its value", retryable=False)
        except requests.exceptions.InvalidJSONError:
            failure = SinkError(f"cannot send {op.label} to Persona: a value is not JSON-serialisable",
                                retryable=False)
        except requests.RequestException as exc:
            return None, SinkError(f"Persona unreachable for {op.label} ({type(exc).__name__})",
                                   retryable=True)
        # Raised outside the except blocks on purpose: requests' exception texts can quote the
        # request, and nothing of it should travel with the SinkError.
        raise failure

    def _wait(self, attempt: int, response: requests.Response | None) -> float:
        asked = _retry_after(response) if response is not None else None
        if asked is not None:
            return min(asked, _MAX_WAIT_SECONDS)
        # Same "equal jitter" as bridge.outbox.backoff: half fixed, half random, so clients spread out.
        exponential = min(_MAX_WAIT_SECONDS, self._backoff * 2 ** (attempt - 1))
        return exponential / 2 + random.uniform(0, exponential / 2)


# ---------------------------------------------------------------------- pure helpers


def _template_attribute(template_id: str) -> str:
    for prefix, attribute in _TEMPLATE_ATTRIBUTES:
        if isinstance(template_id, str) and template_id.startswith(prefix) and len(template_id) > len(prefix):
            return attribute
    raise SinkError("the Persona template id must start with itmpl_, itmplv_ or tmpl_: check the "
                    "configured template id", retryable=False)


def _checked_id(inquiry_id: str) -> str:
    if not isinstance(inquiry_id, str) or not _INQUIRY_ID.fullmatch(inquiry_id):
        raise SinkError("not a Persona inquiry id (expected inq_ and letters or digits)", retryable=False)
    return inquiry_id


def _transient(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _retry_after(response: requests.Response) -> float | None:
    """Seconds the server asks us to wait: Retry-After (seconds or HTTP date); on a 429 without it,
    RateLimit-Reset, which the spec defines as the seconds until the rate-limit window resets (it
    is on every answer, so it means nothing on a 5xx)."""
    value = (response.headers.get("Retry-After") or "").strip()
    if value:
        if re.fullmatch(r"\d+(\.\d+)?", value):
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    reset = (response.headers.get("RateLimit-Reset") or "").strip()
    return float(reset) if response.status_code == 429 and reset.isdigit() else None


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # HTML error pages from a proxy, empty bodies
        return None


def _ok(response: requests.Response, op: _Op) -> Any:
    body = _json(response)
    if not 200 <= response.status_code < 300:
        raise _failure(response.status_code, body, op)
    if not isinstance(body, dict):
        raise _shape_error(op, "not a JSON object", response.status_code)
    return body


def _handle(body: dict[str, Any], op: _Op) -> InquiryHandle:
    data = body.get("data")
    if not isinstance(data, dict) or data.get("type") != "inquiry":
        raise _shape_error(op, "no inquiry in 'data'")
    inquiry_id = data.get("id")
    if not isinstance(inquiry_id, str) or not _INQUIRY_ID.fullmatch(inquiry_id):
        raise _shape_error(op, "the inquiry has no inq_ id")
    attributes = data.get("attributes") if isinstance(data.get("attributes"), dict) else {}
    meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
    return InquiryHandle(
        inquiry_id=inquiry_id,
        status=_text(attributes.get("status")),
        session_token=_text(meta.get("session-token")),
        reference_id=_text(attributes.get("reference-id")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _errors(body: Any) -> list[dict[str, Any]]:
    """The spec's error shape: {"errors": [{"title", "details"?, "meta"?|"source"?}]}."""
    errors = body.get("errors") if isinstance(body, dict) else None
    return [error for error in errors if isinstance(error, dict)] if isinstance(errors, list) else []


def _safe_title(body: Any) -> str:
    """Persona's first error title when it is plain words. `details` is never quoted: it can echo
    submitted values (e.g. "Selected country code invalid selected country code of ZX")."""
    for error in _errors(body):
        title = error.get("title")
        if isinstance(title, str) and _SAFE_TITLE.fullmatch(title.strip()):
            return f" {title.strip()!r}"
    return ""


def _mentions_redaction(body: Any) -> bool:
    """Used to classify only: the details text itself never goes into a reason."""
    return any("redact" in str(error.get(key, "")).lower()
               for error in _errors(body) for key in ("title", "details"))


def _shape_error(op: _Op, detail: str, status: int = 200) -> SinkError:
    return SinkError(
        f"Persona answered {op.label} with an unexpected body ({detail}): is PERSONA_API_BASE the "
        f"Persona API (version {PERSONA_VERSION})?",
        retryable=False,
        status=status,
    )


def _failure(status: int, body: Any, op: _Op) -> SinkError:
    """Classify a non-2xx answer; the reason carries the status and at most a generic title."""
    prefix = f"Persona answered {status}{_safe_title(body)} to {op.label}"
    if status == 401:
        return SinkError(f"{prefix}: check {_KEY_SETTING} (the key of this Persona environment)",
                         retryable=False, status=status)
    if status == 403:
        return SinkError(f"{prefix}: check {_KEY_SETTING} (its permissions, the environment, an IP "
                         "allowlist or a quota)", retryable=False, status=status)
    if status == 404:
        # Persona's own 404 has its error shape; anything else is a wrong base URL or a proxy.
        detail = op.not_found if _errors(body) else f"not Persona's answer, {_BASE_URL_HINT}"
        return SinkError(f"{prefix}: {detail}", retryable=False, status=status)
    if _transient(status):
        return SinkError(f"{prefix}; try again later", retryable=True, status=status)
    if status in (400, 409, 422):
        detail = ": the inquiry is redacted" if _mentions_redaction(body) else ""
        return SinkError(f"{prefix}{detail}", retryable=False, status=status)
    if 300 <= status < 400:
        return SinkError(f"{prefix} (a redirect): {_BASE_URL_HINT}", retryable=False, status=status)
    return SinkError(f"{prefix}, which kyc-bridge does not expect", retryable=False, status=status)
