"""FluentCRM sink: find or create one contact by email, then attach/detach tags on it, by tag id.

Speaks only HTTP to FluentCRM's REST API (`https://SITE/wp-json/fluent-crm/v2`); the contract is
shared/reference/fluentcrm.md and the recorded 2.9.84 responses. Personal data (email, first name)
goes only into request bodies and the lookup query string: never into log lines or SinkError
reasons, which name contact ids, tag slugs and HTTP statuses instead.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from bridge.sinks.errors import SinkError, transport_failure

log = logging.getLogger(__name__)

# Valid contact statuses in FluentCRM 2.9.84 (fluentcrm_subscriber_statuses(), app/Functions/helpers.php).
# Sanitize::contact() silently drops any other value and the column default 'subscribed' applies,
# so a typo here would opt people into marketing mail: only non-marketing choices are accepted.
FLUENTCRM_STATUSES = frozenset(
    {"subscribed", "pending", "unsubscribed", "transactional", "bounced", "complained", "spammed"}
)
NEW_CONTACT_STATUSES = frozenset({"transactional", "unsubscribed"})

_TAG_PAGE_SIZE = 100  # /tags is paginated (default 15); bigger pages mean fewer round trips
_MAX_TAG_PAGES = 1000  # a server that never reports its last page must not loop us forever
_CREDENTIALS = "FLUENTCRM_USERNAME/FLUENTCRM_APP_PASSWORD"
_BASE_URL_HINT = "check FLUENTCRM_BASE_URL (https://SITE/wp-json/fluent-crm/v2)"

# FluentCRM capabilities per route family (app/Http/Policies), named in 403 reasons.
_READ_CONTACTS = "fcrm_read_contacts"
_MANAGE_CONTACTS = "fcrm_manage_contacts"
_MANAGE_TAGS = "fcrm_manage_contact_cats"


@dataclass(frozen=True)
class TagRef:
    slug: str
    title: str


@dataclass(frozen=True)
class SyncResult:
    contact_id: int
    created: bool  # the contact was created by this call
    attached: tuple[str, ...]  # slugs attached
    detached: tuple[str, ...]  # slugs detached
    tag_slugs_after: tuple[str, ...]  # slugs on the contact after the call, as FluentCRM reported them


@dataclass(frozen=True)
class _Op:
    """What a request is for: names it in reasons, and says which capability a 403 lacks."""

    label: str
    permission: str


@dataclass(frozen=True)
class _Contact:
    id: int
    status: str | None
    tags: tuple[tuple[str, int], ...] | None  # (slug, id) in FluentCRM's order; None: not in the body

    @property
    def tag_ids(self) -> dict[str, int]:
        return dict(self.tags or ())

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(slug for slug, _ in self.tags or ())


@dataclass(frozen=True)
class _Outcome:
    contact: _Contact
    created: bool
    attached: tuple[str, ...]
    detached: tuple[str, ...]


class FluentCRMClient:
    """Idempotent contact-and-tags sync against one FluentCRM site.

    Tag ids are cached per instance (slug → id), so keep one client per process. The cache is a
    plain dict: concurrent use from threads is safe in CPython, at worst resolving a slug twice.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        app_password: str,
        *,
        timeout: float = 10.0,
        new_contact_status: str = "transactional",
        session: requests.Session | None = None,
    ) -> None:
        if not re.match(r"^https?://", base_url or ""):
            raise ValueError("FluentCRM base_url must start with http:// or https://")
        if new_contact_status not in NEW_CONTACT_STATUSES:
            raise ValueError(
                f"new_contact_status must be one of {sorted(NEW_CONTACT_STATUSES)} "
                "(a status that does not subscribe the person to marketing)"
            )
        self._base_url = base_url.rstrip("/")
        self._auth = (username, app_password)
        self._timeout = timeout
        self._new_contact_status = new_contact_status
        self._session = session if session is not None else requests.Session()
        self._tag_ids: dict[str, int] = {}
        self._call = threading.local()  # per sync (one thread each): the caller's before-write check

    # ------------------------------------------------------------------ public

    def ping(self) -> None:
        """Cheap authenticated call; raises SinkError when FluentCRM cannot be used."""
        op = _Op("the connection check", _MANAGE_TAGS)
        response = self._send("GET", "/tags", op, params={"per_page": 1, "exclude_counts": 1})
        _page(self._ok(response, op), "tags", op)

    def sync_contact_tags(
        self,
        email: str,
        first_name: str | None,
        attach: Sequence[TagRef],
        detach: Sequence[TagRef],
        *,
        before_write: Callable[[], None] | None = None,
    ) -> SyncResult:
        """Make sure the contact exists and carries every `attach` tag and no `detach` tag.

        Idempotent: a repeated call finds the state already right and writes nothing.
        `attach`/`detach` items only need `.slug` and `.title`. `before_write` runs before each
        request that changes FluentCRM (the worker checks it still holds its job's lease; what it
        raises ends the sync there).
        """
        self._call.before_write = before_write
        try:
            return self._sync_contact_tags(email, first_name, attach, detach)
        finally:
            self._call.before_write = None

    def _sync_contact_tags(
        self, email: str, first_name: str | None, attach: Sequence[TagRef], detach: Sequence[TagRef]
    ) -> SyncResult:
        want, drop = _plan(attach, detach)
        created = False
        attached: list[str] = []
        detached: list[str] = []
        missing: list[str] = []
        lingering: list[str] = []
        contact_id = 0
        for _ in range(2):
            outcome = self._sync_once(email, first_name, want, drop)
            created = created or outcome.created
            attached += [slug for slug in outcome.attached if slug not in attached]
            detached += [slug for slug in outcome.detached if slug not in detached]
            after = outcome.contact.slugs
            contact_id = outcome.contact.id
            missing = [ref.slug for ref in want if ref.slug not in after]
            lingering = [ref.slug for ref in drop if ref.slug in after]
            if not missing and not lingering:
                level = logging.INFO if created or attached or detached else logging.DEBUG
                log.log(level, "FluentCRM contact %d synced: created=%s attached=%s detached=%s",
                        contact_id, created, attached, detached)
                return SyncResult(contact_id, created, tuple(attached), tuple(detached), after)
            # A cached id can be stale (tag deleted and re-created in FluentCRM): resolve again once.
            for slug in missing:
                self._tag_ids.pop(slug, None)
        raise SinkError(
            f"FluentCRM did not apply the tag change to contact {contact_id}: "
            f"missing {missing}, still present {lingering} (an automation may be undoing it)",
            retryable=False,
        )

    def remove_tags(self, email: str, detach: Sequence[TagRef]) -> SyncResult | None:
        """Take these tags off the contact, if FluentCRM has one with this email (None: it has
        not; a contact is never created just to carry no tags). Idempotent."""
        contact = self._find_contact(email)
        if contact is None:
            return None
        outcome = self._update_tags(contact, (), tuple(detach))
        lingering = [ref.slug for ref in detach if ref.slug in outcome.contact.slugs]
        if lingering:
            raise SinkError(f"FluentCRM did not detach {lingering} from contact {contact.id} "
                            "(an automation may be undoing it)", retryable=False)
        return SyncResult(outcome.contact.id, False, (), outcome.detached, outcome.contact.slugs)

    # ------------------------------------------------------------------ the sync

    def _sync_once(
        self, email: str, first_name: str | None, want: tuple[TagRef, ...], drop: tuple[TagRef, ...]
    ) -> _Outcome:
        contact = self._find_contact(email)
        if contact is None:
            created = self._create_contact(email, first_name, [self._tag_id(ref) for ref in want])
            if created is not None:
                return _Outcome(created, True, tuple(ref.slug for ref in want), ())
            contact = self._find_contact(email)  # a concurrent sync created it first
            if contact is None:
                raise SinkError(
                    "FluentCRM reports the contact's email as taken but the lookup by email "
                    "does not find it (email normalisation differs?)",
                    retryable=False,
                    status=422,
                )
        return self._update_tags(contact, want, drop)

    def _update_tags(
        self, contact: _Contact, want: tuple[TagRef, ...], drop: tuple[TagRef, ...]
    ) -> _Outcome:
        have = contact.tag_ids
        to_attach = [ref for ref in want if ref.slug not in have]
        # Detach ids come from the contact's own tag list: exact, no search, and a tag that
        # does not exist is simply not on the contact, so nothing is ever created for a detach.
        to_detach = [ref.slug for ref in drop if ref.slug in have]
        if not to_attach and not to_detach:
            return _Outcome(contact, False, (), ())
        attach_ids = [self._tag_id(ref) for ref in to_attach]
        updated = self._put_tags(contact.id, attach_ids, [have[slug] for slug in to_detach])
        return _Outcome(updated, False, tuple(ref.slug for ref in to_attach), tuple(to_detach))

    # ------------------------------------------------------------------ contacts

    def _find_contact(self, email: str) -> _Contact | None:
        op = _Op("the contact lookup by email", _READ_CONTACTS)
        response = self._send("GET", "/subscribers/0", op, params={"get_by_email": email})
        # Absent is 422 {"message": "Subscriber not found"}; the text is translated on
        # non-English sites, so key on the shape. A 422 field map is a real validation error.
        if response.status_code == 422 and _is_plain_message(_json(response)):
            return None
        return self._contact(_member(self._ok(response, op), "subscriber", op), op)

    def _create_contact(self, email: str, first_name: str | None, tag_ids: list[int]) -> _Contact | None:
        """Create the contact; None when another writer created it first (422 email.unique)."""
        op = _Op("the contact creation", _MANAGE_CONTACTS)
        # Never __force_update: it would overwrite the status of a contact created meanwhile.
        payload: dict[str, Any] = {"email": email, "status": self._new_contact_status}
        if first_name:
            payload["first_name"] = first_name
        if tag_ids:
            payload["tags"] = tag_ids  # numeric ids: strings would hit the create-by-title trap
        response = self._send("POST", "/subscribers", op, json=payload)
        if response.status_code == 422 and "unique" in _field_rules(_json(response)).get("email", ()):
            return None
        contact = self._contact(_member(self._ok(response, op), "contact", op), op)
        if contact.status != self._new_contact_status:
            log.warning(
                "FluentCRM created contact %d with status %r instead of %r: check the site's "
                "fluent_crm/contact_statuses filter",
                contact.id, contact.status, self._new_contact_status,
            )
        log.info("FluentCRM contact %d created with status %s", contact.id, contact.status)
        return contact

    def _put_tags(self, contact_id: int, attach_ids: list[int], detach_ids: list[int]) -> _Contact:
        # PUT /subscribers/{id} rather than POST /subscribers/sync-segments: for an unknown id it
        # answers a clean 404 (sync-segments dies with a PHP fatal 500 in 2.9.84), it touches only
        # this contact, and it answers with the contact's tags after the change.
        op = _Op(f"the tag update of contact {contact_id}", _MANAGE_CONTACTS)
        payload: dict[str, list[int]] = {}
        if attach_ids:
            payload["attach_tags"] = attach_ids
        if detach_ids:
            payload["detach_tags"] = detach_ids
        response = self._send("PUT", f"/subscribers/{contact_id}", op, json=payload)
        if response.status_code == 404 and _is_plain_message(_json(response)):
            raise SinkError(
                f"FluentCRM contact {contact_id} disappeared between lookup and update",
                retryable=True,
                status=404,
            )
        return self._contact(_member(self._ok(response, op), "contact", op), op)

    def _fetch_contact(self, contact_id: int) -> _Contact:
        op = _Op(f"the fetch of contact {contact_id}", _READ_CONTACTS)
        response = self._send("GET", f"/subscribers/{contact_id}", op)
        if response.status_code == 422 and _is_plain_message(_json(response)):
            raise SinkError(
                f"FluentCRM contact {contact_id} disappeared during the sync", retryable=True, status=422
            )
        contact = _parse_contact(_member(self._ok(response, op), "subscriber", op), op)
        if contact.tags is None:
            raise _shape_error(op, "the contact has no 'tags' list")
        return contact

    def _contact(self, raw: dict[str, Any], op: _Op) -> _Contact:
        contact = _parse_contact(raw, op)
        if contact.tags is None:
            # FluentCRM only includes 'tags' when it loaded them (e.g. created without tags).
            contact = self._fetch_contact(contact.id)
        self._tag_ids.update(contact.tag_ids)  # the contact's own tags are authoritative slug → id
        return contact

    # ------------------------------------------------------------------ tags

    def _tag_id(self, ref: TagRef) -> int:
        cached = self._tag_ids.get(ref.slug)
        if cached is not None:
            return cached
        tag_id = self._search_tag(ref.slug)
        if tag_id is None:
            tag_id = self._create_tag(ref)
        self._tag_ids[ref.slug] = tag_id
        return tag_id

    def _search_tag(self, slug: str) -> int | None:
        """Walk GET /tags?search= (a LIKE match) page by page for the exact slug."""
        op = _Op(f"the tag search for {slug!r}", _MANAGE_TAGS)
        page = 1
        while True:
            params = {"search": slug, "exclude_counts": 1, "per_page": _TAG_PAGE_SIZE, "page": page}
            rows, last_page = _page(self._ok(self._send("GET", "/tags", op, params=params), op), "tags", op)
            for row in rows:
                found_slug, tag_id = _tag_row(row, op)
                if found_slug == slug:
                    return tag_id
            if not rows or page >= last_page or page >= _MAX_TAG_PAGES:
                return None
            page += 1

    def _create_tag(self, ref: TagRef) -> int:
        op = _Op(f"the creation of tag {ref.slug!r}", _MANAGE_TAGS)
        response = self._send("POST", "/tags", op, json={"title": ref.title, "slug": ref.slug})
        if response.status_code == 422 and "unique" in _field_rules(_json(response)).get("slug", ()):
            found = self._search_tag(ref.slug)  # a concurrent sync created it first
            if found is not None:
                return found
            raise SinkError(
                f"FluentCRM says tag slug {ref.slug!r} is taken but no tag has exactly that slug: "
                "configure slugs the way WordPress writes them (lowercase letters, digits, hyphens)",
                retryable=False,
                status=422,
            )
        body = self._ok(response, op)
        item = body.get("item", body.get("lists")) if isinstance(body, dict) else None
        if not isinstance(item, dict):
            raise _shape_error(op, "no 'item' object")
        slug, tag_id = _tag_row(item, op)
        if slug != ref.slug:
            raise SinkError(
                f"FluentCRM stored tag {ref.slug!r} under the slug {slug!r} (id {tag_id}): "
                "configure the slug the way FluentCRM writes it",
                retryable=False,
            )
        log.info("FluentCRM tag %s created (id %d)", slug, tag_id)
        return tag_id

    # ------------------------------------------------------------------ HTTP

    def _send(
        self,
        method: str,
        path: str,
        op: _Op,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> requests.Response:
        before_write = getattr(self._call, "before_write", None)
        if method != "GET" and before_write is not None:
            before_write()
        try:
            return self._session.request(
                method,
                self._base_url + path,
                params=params,
                json=json,
                auth=self._auth,
                timeout=self._timeout,
                allow_redirects=False,  # a redirect would turn POST/PUT into GET: report it instead
                headers={"Accept": "application/json"},
            )
        except requests.RequestException as exc:
            failure = _transport_failure(exc, op, self._timeout)
        except UnicodeError:  # requests encodes Basic auth as latin-1
            failure = SinkError(
                f"cannot send {_CREDENTIALS} to FluentCRM: they hold characters HTTP Basic auth "
                "cannot carry",
                retryable=False,
            )
        # Raised outside the except blocks on purpose: the requests exception is not chained, as
        # its text holds the URL and the lookup URL holds the email.
        raise failure

    def _ok(self, response: requests.Response, op: _Op) -> Any:
        """The JSON body of a 2xx answer; SinkError for anything else."""
        body = _json(response)
        if not 200 <= response.status_code < 300:
            raise _failure(response.status_code, body, op)
        if body is None:
            raise _shape_error(op, "not JSON")
        return body


# ---------------------------------------------------------------------- pure helpers


def _plan(attach: Iterable[TagRef], detach: Iterable[TagRef]) -> tuple[tuple[TagRef, ...], tuple[TagRef, ...]]:
    """Deduplicate by slug; a slug in both lists is left alone (sent in neither)."""
    want, drop = _unique(attach), _unique(detach)
    both = {ref.slug for ref in want} & {ref.slug for ref in drop}
    if both:
        log.warning("FluentCRM sync: tags %s are both to attach and to detach; leaving them as they are",
                    sorted(both))
    return (tuple(ref for ref in want if ref.slug not in both),
            tuple(ref for ref in drop if ref.slug not in both))


def _unique(refs: Iterable[TagRef]) -> list[TagRef]:
    seen: dict[str, TagRef] = {}
    for ref in refs:
        if not isinstance(ref.slug, str) or not ref.slug.strip():
            raise SinkError("a FluentCRM tag is configured with an empty slug", retryable=False)
        seen.setdefault(ref.slug, ref)
    return list(seen.values())


def _transport_failure(exc: requests.RequestException, op: _Op, timeout: float) -> SinkError:
    return transport_failure(exc, service="FluentCRM", what=op.label, timeout=timeout, hint=_BASE_URL_HINT)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # HTML error pages, empty bodies
        return None


def _as_int(value: Any) -> int | None:
    """FluentCRM ids are ints, pivot ids strings: accept both."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _member(body: Any, key: str, op: _Op) -> dict[str, Any]:
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, dict):
        raise _shape_error(op, f"no {key!r} object")
    return value


def _page(body: Any, key: str, op: _Op) -> tuple[list[Any], int]:
    paginator = _member(body, key, op)
    rows = paginator.get("data")
    if not isinstance(rows, list):
        raise _shape_error(op, f"no {key}.data list")
    return rows, _as_int(paginator.get("last_page")) or 1


def _tag_row(row: Any, op: _Op) -> tuple[str, int]:
    tag_id = _as_int(row.get("id")) if isinstance(row, dict) else None
    slug = row.get("slug") if isinstance(row, dict) else None
    if tag_id is None or not isinstance(slug, str):
        raise _shape_error(op, "a tag without id or slug")
    return slug, tag_id


def _parse_contact(raw: dict[str, Any], op: _Op) -> _Contact:
    contact_id = _as_int(raw.get("id"))
    if contact_id is None:
        raise _shape_error(op, "a contact without id")
    status = raw.get("status")
    tags = raw.get("tags")
    if tags is None and "tags" not in raw:
        return _Contact(contact_id, status if isinstance(status, str) else None, None)
    if not isinstance(tags, list):
        raise _shape_error(op, "the contact's 'tags' is not a list")
    return _Contact(
        contact_id, status if isinstance(status, str) else None, tuple(_tag_row(tag, op) for tag in tags)
    )


def _is_plain_message(body: Any) -> bool:
    """{"message": "..."}: FluentCRM's not-found answers (not a validation field map)."""
    return (
        isinstance(body, dict)
        and isinstance(body.get("message"), str)
        and not any(isinstance(value, dict) for value in body.values())
    )


def _field_rules(body: Any) -> dict[str, tuple[str, ...]]:
    """A 422 validation body {"field": {"rule": "message"}} as field → rules; {} for other shapes."""
    if not isinstance(body, dict) or not body:
        return {}
    if not all(isinstance(rules, dict) for rules in body.values()):
        return {}
    return {str(field): tuple(str(rule) for rule in rules) for field, rules in body.items()}


def _safe_name(name: str) -> str:
    # Field and rule names come from the server: keep them identifier-like and short.
    return re.sub(r"[^A-Za-z0-9_.-]", "?", name)[:40]


def _shape_error(op: _Op, detail: str) -> SinkError:
    return SinkError(
        f"FluentCRM answered {op.label} with an unexpected body ({detail}): is FLUENTCRM_BASE_URL "
        "the FluentCRM REST API of a supported FluentCRM version?",
        retryable=False,
        status=200,
    )


def _failure(status: int, body: Any, op: _Op) -> SinkError:
    """Classify a non-2xx answer. Server texts are not quoted: they may echo personal data."""
    code = body.get("code") if isinstance(body, dict) and isinstance(body.get("code"), str) else None
    prefix = f"FluentCRM answered {status} to {op.label}"
    if status == 401:
        return SinkError(f"{prefix}: check {_CREDENTIALS} (a WordPress application password)",
                         retryable=False, status=status)
    if status == 403:
        if code == "rest_forbidden":
            detail = (f"the FLUENTCRM_USERNAME user lacks the FluentCRM permission {op.permission}; "
                      "grant it under FluentCRM > Settings > Managers")
        else:
            detail = "not FluentCRM's own answer: a firewall or the web server may block the request"
        return SinkError(f"{prefix}: {detail}", retryable=False, status=status)
    if status == 404:
        detail = "no such REST route, or the FluentCRM plugin is not active; " if code == "rest_no_route" else ""
        return SinkError(f"{prefix}: {detail}{_BASE_URL_HINT}", retryable=False, status=status)
    if status in (408, 429) or status >= 500:
        detail = " (a PHP error on the WordPress site)" if code == "internal_server_error" else ""
        return SinkError(f"{prefix}{detail}; try again later", retryable=True, status=status)
    if status == 422:
        rules = _field_rules(body)
        listed = ", ".join(
            f"{_safe_name(field)}.{_safe_name(rule)}" for field, names in list(rules.items())[:5] for rule in names
        )
        return SinkError(f"FluentCRM rejected {op.label} (422{': ' + listed if listed else ''})",
                         retryable=False, status=status)
    if status == 405:
        return SinkError(f"{prefix}: the web server refuses this HTTP method (some hosts block PUT)",
                         retryable=False, status=status)
    if 300 <= status < 400:
        return SinkError(f"{prefix} (a redirect): set FLUENTCRM_BASE_URL to the final address "
                         "(scheme, host and path)", retryable=False, status=status)
    return SinkError(f"{prefix}, which kyc-bridge does not expect", retryable=False, status=status)
