"""A fake FluentCRM 2.9.84 REST API that runs for real on 127.0.0.1 (werkzeug, background thread).

Reproduces the contract in shared/fluentcrm-api/captured-responses-2.9.84.json (status codes, body
shapes, mixed types, quirks) for the routes kyc-bridge uses, plus WordPress' Basic auth with an
application password. Tests seed and inspect its state, read every request it received, and inject
faults (down / 5xx, slow answers, rejected credentials).

    with FakeFluentCRM(next_tag_id=3) as crm:
        client = FluentCRMClient(crm.base_url, crm.username, crm.app_password)
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from .server import LoopbackDouble, parse_json

API_PREFIX = "/wp-json/fluent-crm/v2"
TAG_CLASS = "FluentCrm\\App\\Models\\Tag"
STATUSES = ("subscribed", "pending", "unsubscribed", "transactional", "bounced", "complained", "spammed")
ALL_CAPABILITIES = frozenset(
    {"fcrm_read_contacts", "fcrm_manage_contacts", "fcrm_manage_contacts_delete",
     "fcrm_manage_contact_cats", "fcrm_manage_settings"}
)

# fc_subscribers columns in table order: the key order of every contact object.
CONTACT_COLUMNS = (
    "id", "user_id", "hash", "contact_owner", "company_id", "prefix", "first_name", "last_name",
    "email", "timezone", "address_line_1", "address_line_2", "postal_code", "city", "state",
    "country", "ip", "latitude", "longitude", "total_points", "life_time_value", "phone", "status",
    "contact_type", "source", "avatar", "date_of_birth", "created_at", "last_activity", "updated_at",
)
# Subscriber::$fillable minus email/status, which are handled on their own.
FILLABLE_TEXT = (
    "prefix", "first_name", "last_name", "contact_type", "address_line_1", "address_line_2",
    "postal_code", "city", "state", "country", "phone", "timezone", "date_of_birth", "source",
    "latitude", "longitude", "ip", "avatar",
)

JSON_TYPE = "application/json; charset=UTF-8"
HTML_TYPE = "text/html; charset=UTF-8"
REST_FORBIDDEN_MESSAGE = "Sorry, you are not allowed to do that."
CRITICAL_ERROR = {
    "code": "internal_server_error",
    "message": "<p>There has been a critical error on this website.</p><p><a href=\"https://wordpress"
               ".org/support/article/faq-troubleshooting/\">Learn more about troubleshooting "
               "WordPress.</a></p>",
    "data": {"status": 500},
    "additional_errors": [],
}
NO_ROUTE = {
    "code": "rest_no_route",
    "message": "No route was found matching the URL and request method.",
    "data": {"status": 404},
}
MAINTENANCE_HTML = (
    "<!DOCTYPE html><html><head><title>Maintenance</title></head><body><h1>Briefly unavailable "
    "for scheduled maintenance. Check back in a minute.</h1></body></html>"
)
EMAIL_TAKEN = "Provided email already assigned to another subscriber."

Reply = tuple[int, Any]  # (status, JSON body)


# ---------------------------------------------------------------------- WordPress helpers


def sanitize_title(value: str) -> str:
    """WordPress sanitize_title() for ASCII-ish input (sanitize_title_with_dashes)."""
    text = re.sub(r"<[^>]*>", "", value)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"&.+?;", "", text).replace(".", "-")
    text = re.sub(r"[^a-z0-9 _-]", "", text)
    text = re.sub(r"\s+", "-", text)
    return re.sub(r"-+", "-", text).strip("-")


def sanitize_text_field(value: Any) -> str:
    text = re.sub(r"<[^>]*>", "", str(value))
    return re.sub(r"[\r\n\t ]+", " ", text).strip()


def is_email(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z0-9-]{2,}", value) is not None


def rest_forbidden(status: int) -> dict[str, Any]:
    return {"code": "rest_forbidden", "message": REST_FORBIDDEN_MESSAGE, "data": {"status": status}}


# ---------------------------------------------------------------------- state


@dataclass
class _Tag:
    id: int
    title: str
    slug: str
    description: str | None
    created_at: str
    updated_at: str

    def as_row(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "slug": self.slug, "description": self.description,
                "created_at": self.created_at, "updated_at": self.updated_at}

    def as_created(self) -> dict[str, Any]:
        # A freshly created Eloquent model lists its attributes in insertion order.
        return {"title": self.title, "slug": self.slug, "description": self.description,
                "updated_at": self.updated_at, "created_at": self.created_at, "id": self.id}


@dataclass
class _Contact:
    row: dict[str, Any]  # every CONTACT_COLUMNS key
    pivots: dict[int, tuple[str, str]] = field(default_factory=dict)  # tag id → (created, updated)

    @property
    def id(self) -> int:
        return int(self.row["id"])


@dataclass(frozen=True)
class TagState:
    id: int
    title: str
    slug: str
    description: str | None


@dataclass(frozen=True)
class ContactState:
    id: int
    email: str
    first_name: str | None
    status: str
    tag_slugs: tuple[str, ...]  # sorted


@dataclass(frozen=True)
class RecordedRequest:
    method: str  # after X-HTTP-Method-Override / ?_method=
    path: str  # relative to /wp-json/fluent-crm/v2 when under it, e.g. "/subscribers/0"
    query: dict[str, list[str]]
    json: Any  # parsed JSON body, or None
    user: str | None  # the authenticated WordPress user, None if unauthenticated
    status: int  # what the double answered

    @property
    def is_write(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class _User:
    name: str
    password: str
    capabilities: frozenset[str]


@dataclass
class Hold:
    """One request held by FakeFluentCRM.hold(): `arrived` is set when it comes in; it is handled
    (as it would have been) once `release()` is called."""

    method: str
    path: re.Pattern[str]
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


class _Route:
    def __init__(self, method: str, pattern: str, capability: str, handler: Callable[..., Reply]) -> None:
        self.method = method
        self.regex = re.compile(pattern + r"\Z", re.IGNORECASE)
        self.capability = capability
        self.handler = handler


# ---------------------------------------------------------------------- the server


class FakeFluentCRM(LoopbackDouble[RecordedRequest]):
    """Fake FluentCRM 2.9.84 REST server; a context manager that starts and stops it."""

    _thread_name = "fake-fluentcrm"

    def __init__(
        self,
        *,
        username: str = "kyc-bridge",
        app_password: str = "abcd EFGH 1234 ijkl MNOP 5678",
        limited_username: str = "wp-subscriber",
        limited_app_password: str = "wxyz 9876 QRST 5432 uvwx 1098",
        capabilities: Iterable[str] = ALL_CAPABILITIES,
        next_tag_id: int = 1,
        next_contact_id: int = 1,
        bench: bool = True,
    ) -> None:
        super().__init__()
        self.username = username
        self.app_password = app_password
        self.limited_username = limited_username
        self.limited_app_password = limited_app_password
        self._users = [
            _User(username, _squeeze(app_password), frozenset(capabilities)),
            _User(limited_username, _squeeze(limited_app_password), frozenset()),
        ]
        self._next_tag_id = next_tag_id
        self._next_contact_id = next_contact_id
        self._bench = bench
        self._tags: dict[int, _Tag] = {}
        self._contacts: dict[int, _Contact] = {}
        self._custom_fields: list[dict[str, Any]] = []
        # Called (under the state lock) before a matched, authorised request is handled: tests
        # use it to play a concurrent writer, e.g. create the tag the client is about to create.
        self.before_handle: Callable[[str, str, Any], None] | None = None
        # Called outside the lock, before anything else, with (method, route path, JSON body): for
        # tests that make something happen elsewhere while this request is in flight.
        self.on_arrival: Callable[[str, str, Any], None] | None = None
        # Called outside the lock once a request was handled, with (method, route path, JSON body, status).
        self.on_answered: Callable[[str, str, Any, int], None] | None = None
        self._holds: list[Hold] = []
        self._latency = (0.0, 0.0)
        self._routes = [
            _Route("GET", r"/tags", "fcrm_manage_contact_cats", self._list_tags),
            _Route("POST", r"/tags", "fcrm_manage_contact_cats", self._create_tag),
            _Route("GET", r"/tags/(\d+)", "fcrm_manage_contact_cats", self._show_tag),
            _Route("GET", r"/subscribers", "fcrm_read_contacts", self._list_contacts),
            _Route("POST", r"/subscribers", "fcrm_manage_contacts", self._store_contact),
            _Route("POST", r"/subscribers/sync-segments", "fcrm_manage_contacts", self._sync_segments),
            _Route("GET", r"/subscribers/(\d+)", "fcrm_read_contacts", self._show_contact),
            _Route("PUT", r"/subscribers/(\d+)", "fcrm_manage_contacts", self._update_contact),
            _Route("GET", r"/custom-fields/contacts", "fcrm_manage_settings", self._custom_fields_list),
        ]

    # ------------------------------------------------------------------ addresses

    @property
    def site_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.site_url + API_PREFIX

    # ------------------------------------------------------------------ faults

    def inject(self, status: int, body: Any = None, *, content_type: str | None = None,
               count: int | None = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next `count` requests (None: all until clear_faults) with `status`/`body`.
        Without a body: 500 → WordPress' critical-error JSON, 503 → maintenance HTML page."""
        self._queue_fault(status, body, count=count, headers=headers, content_type=content_type)

    def _fault_body(self, status: int) -> Any:
        return CRITICAL_ERROR if status == 500 else MAINTENANCE_HTML if status == 503 else {
            "code": "injected_fault", "message": f"Injected {status}", "data": {"status": status}}

    def hold(self, method: str, path: str) -> Hold:
        """Hold the next request matching `method` and the route `path` (a regex over the path below
        the API prefix, e.g. r"/subscribers/\\d+") before it is handled, until `release()`: the
        test decides what happens meanwhile (a slow write racing a newer one)."""
        held = Hold(method.upper(), re.compile(path + r"\Z"))
        with self._lock:
            self._holds.append(held)
        return held

    def slow_calls(self, low: float, high: float) -> None:
        """Answer every request after a delay drawn uniformly from [low, high] seconds, as a busy
        shared host does (the request is handled after the delay); slow_calls(0, 0) turns it off."""
        with self._lock:
            self._latency = (low, high)

    def email_of(self, contact_id: int) -> str | None:
        with self._lock:
            contact = self._contacts.get(contact_id)
            return contact.row["email"] if contact else None

    def _maybe_hold(self, method: str, route_path: str) -> None:
        with self._lock:
            held = next((h for h in self._holds if h.method == method and h.path.match(route_path)), None)
            if held is not None:
                self._holds.remove(held)
        if held is not None:
            held.arrived.set()
            while not held.released.wait(0.05) and not self._stopping.is_set():
                pass

    # ------------------------------------------------------------------ seeding and inspection

    def add_tag(self, title: str, slug: str | None = None, description: str | None = "") -> int:
        with self._lock:
            return self._new_tag(title, slug or sanitize_title(title), description).id

    def delete_tag(self, slug: str) -> None:
        with self._lock:
            tag = self._tag_by_slug(slug)
            if tag is None:
                raise KeyError(slug)
            del self._tags[tag.id]
            for contact in self._contacts.values():
                contact.pivots.pop(tag.id, None)

    def add_contact(self, email: str, *, first_name: str | None = None, last_name: str | None = None,
                    status: str = "subscribed", tag_slugs: Iterable[str] = ()) -> int:
        with self._lock:
            contact = self._new_contact({"email": email, "first_name": first_name,
                                         "last_name": last_name, "status": status})
            for slug in tag_slugs:
                tag = self._tag_by_slug(slug) or self._new_tag(slug, slug, "")
                self._attach(contact, [tag.id])
            return contact.id

    def delete_contact(self, email: str) -> None:
        with self._lock:
            contact = self._contact_by_email(email)
            if contact is None:
                raise KeyError("no such contact")
            del self._contacts[contact.id]

    def tag_contact(self, email: str, *slugs: str) -> None:
        """Attach existing tags behind the client's back (an admin, an automation)."""
        with self._lock:
            contact = self._contact_by_email(email)
            if contact is None:
                raise KeyError("no such contact")
            self._attach(contact, [tag.id for tag in map(self._tag_by_slug, slugs) if tag is not None])

    def tags(self) -> list[TagState]:
        with self._lock:
            return [TagState(t.id, t.title, t.slug, t.description) for t in self._tags.values()]

    def tag(self, slug: str) -> TagState | None:
        return next((t for t in self.tags() if t.slug == slug), None)

    def contacts(self) -> list[ContactState]:
        with self._lock:
            return [self._state(c) for c in self._contacts.values()]

    def contact(self, email: str) -> ContactState | None:
        with self._lock:
            found = self._contact_by_email(email)
            return self._state(found) if found else None

    def writes(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.is_write]

    # ------------------------------------------------------------------ WSGI

    def _respond(self, request: Request) -> Response:
        method = request.method.upper()
        override = request.args.get("_method") or request.headers.get("X-HTTP-Method-Override")
        if override and method == "POST":  # WordPress core lets POST stand in for PUT/DELETE
            method = override.upper()
        path = request.path
        route_path = path[len(API_PREFIX):] if path.lower().startswith(API_PREFIX) else path
        route_path = route_path.rstrip("/")  # WordPress untrailingslashes the REST route
        if self.on_arrival is not None:
            self.on_arrival(method, route_path, parse_json(request, request.get_data(cache=True))[0])
        self._maybe_hold(method, route_path)
        low, high = self._latency
        if high:
            self._stopping.wait(random.uniform(low, high))
        self._maybe_delay(method, route_path)
        raw = request.get_data(cache=True)
        body_json, bad_json = parse_json(request, raw)
        with self._lock:
            user = self._authenticate(request)
            status, body, content_type, headers = self._answer(method, path, route_path, request, user,
                                                               body_json, bad_json)
            self.requests.append(RecordedRequest(
                method, route_path if path.lower().startswith(API_PREFIX) else path,
                request.args.to_dict(flat=False), body_json, user.name if user else None, status))
        if isinstance(body, str):
            payload = body.encode()
        else:
            if self._bench and 200 <= status < 300 and isinstance(body, dict):
                body = {**body, "__bench": round(random.uniform(0.005, 0.2), 6)}
            payload = json.dumps(body).encode()
        if self.on_answered is not None:
            self.on_answered(method, route_path, body_json, status)
        return Response(payload, status=status, content_type=content_type, headers=headers)

    def _answer(self, method: str, path: str, route_path: str, request: Request, user: _User | None,
                body_json: Any, bad_json: bool) -> tuple[int, Any, str, dict[str, str]]:
        fault = self._take_fault()
        if fault is not None:
            content_type = fault.content_type
            if content_type is None:
                content_type = HTML_TYPE if isinstance(fault.body, str) else JSON_TYPE
            return fault.status, fault.body, content_type, fault.headers
        status, body, content_type = self._route(method, path, route_path, request, user, body_json, bad_json)
        return status, body, content_type, {}

    def _route(self, method: str, path: str, route_path: str, request: Request, user: _User | None,
               body_json: Any, bad_json: bool) -> tuple[int, Any, str]:
        if not path.lower().startswith("/wp-json/"):
            return 404, "<!DOCTYPE html><html><body><h1>Page not found</h1></body></html>", HTML_TYPE
        if not path.lower().startswith(API_PREFIX):
            return 404, NO_ROUTE, JSON_TYPE
        matched = self._match(method, route_path)
        if matched is None:
            return 404, NO_ROUTE, JSON_TYPE
        route, args = matched
        if user is None:
            return 401, rest_forbidden(401), JSON_TYPE
        if route.capability not in user.capabilities:
            return 403, rest_forbidden(403), JSON_TYPE
        if bad_json:
            return 400, {"code": "rest_invalid_json", "message": "Invalid JSON body passed.",
                         "data": {"status": 400, "json_error_code": 4, "json_error_message": "Syntax error"}}, JSON_TYPE
        params = _params(request.args, request.form, body_json)
        if self.before_handle is not None:
            self.before_handle(method, route_path, body_json)
        status, body = route.handler(params, *args)
        return status, body, JSON_TYPE

    def _match(self, method: str, route_path: str) -> tuple[_Route, tuple[str, ...]] | None:
        for route in self._routes:
            found = route.regex.match(route_path)
            if found and route.method == method:
                return route, found.groups()
        return None

    def _authenticate(self, request: Request) -> _User | None:
        auth = request.authorization
        if self._reject_auth or auth is None or auth.type != "basic":
            return None
        squeezed = _squeeze(auth.password or "")
        return next((u for u in self._users if u.name == auth.username and u.password == squeezed), None)

    # ------------------------------------------------------------------ tags routes

    def _list_tags(self, params: dict[str, Any]) -> Reply:
        search = str(params.get("search") or "").strip().lower()
        tags = [t for t in self._tags.values() if not search or search in t.title.lower()
                or search in t.slug.lower() or (t.description or "").lower().startswith(search)]
        sort_by = str(params.get("sort_by") or "id")
        sort_by = sort_by if sort_by in ("id", "title", "slug", "created_at", "updated_at") else "id"
        descending = str(params.get("sort_order") or "DESC").upper() != "ASC"
        tags.sort(key=lambda t: getattr(t, sort_by), reverse=descending)
        rows = []
        for tag in tags:
            row = tag.as_row()
            if not params.get("exclude_counts"):
                row["subscribersCount"] = sum(
                    1 for c in self._contacts.values() if tag.id in c.pivots and c.row["status"] == "subscribed")
            rows.append(row)
        body: dict[str, Any] = {"tags": self._paginate(rows, params, "/tags")}
        if params.get("all_tags"):
            body["all_tags"] = [{"id": str(t.id), "title": t.title, "slug": t.slug} for t in self._tags.values()]
        return 200, body

    def _create_tag(self, params: dict[str, Any]) -> Reply:
        title = sanitize_text_field(params.get("title") or "")
        if not title:
            return 422, {"title": {"required": "The title field is required."}}
        slug = sanitize_title(str(params.get("slug") or "") or title)
        if not slug:
            return 422, {"slug": {"required": "The slug field is required."}}
        if self._tag_by_slug(slug) is not None:
            return 422, {"slug": {"unique": "The slug attribute is already taken and must be unique."}}
        description = params.get("description")
        tag = self._new_tag(title, slug, sanitize_text_field(description) if description else "")
        return 200, {"lists": tag.as_created(), "item": tag.as_created(), "message": "Successfully saved the tag."}

    def _show_tag(self, params: dict[str, Any], tag_id: str) -> Reply:
        tag = self._tags.get(int(tag_id))
        return 200, {"tag": tag.as_row() if tag else None}

    # ------------------------------------------------------------------ contacts routes

    def _list_contacts(self, params: dict[str, Any]) -> Reply:
        search = str(params.get("search") or "").strip().lower()
        statuses = _as_list(params.get("statuses"))
        tag_ids = {int(t) for t in _as_list(params.get("tags")) if str(t).isdigit()}
        found = []
        for contact in sorted(self._contacts.values(), key=lambda c: c.id, reverse=True):
            row = contact.row
            haystack = [row["email"], row["first_name"] or "", row["last_name"] or "",
                        f"{row['first_name'] or ''} {row['last_name'] or ''}".strip()]
            if search and not any(search in value.lower() for value in haystack):
                continue
            if statuses and row["status"] not in statuses:
                continue
            if tag_ids and not tag_ids & set(contact.pivots):
                continue
            found.append(self._contact_json(contact, tags=True, lists=True))
        return 200, {"subscribers": self._paginate(found, params, "/subscribers"),
                     "custom": params.get("custom_fields")}

    def _show_contact(self, params: dict[str, Any], contact_id: str) -> Reply:
        contact: _Contact | None = None
        if int(contact_id):
            contact = self._contacts.get(int(contact_id))
        elif params.get("get_by_email"):
            contact = self._contact_by_email(str(params["get_by_email"]).strip())
        if contact is None:
            return 422, {"message": "Subscriber not found"}
        with_ = _as_list(params.get("with"))
        extra: dict[str, Any] = {}
        if "stats" in with_:
            extra["stats"] = {"emails": 0, "opens": 0, "clicks": 0}
        if "subscriber.custom_values" in with_:
            extra["custom_values"] = {}
        if contact.row["status"] in ("unsubscribed", "bounced", "complained"):
            extra.update(unsubscribe_reason="", unsubscribe_date="")
        body: dict[str, Any] = {"subscriber": self._contact_json(contact, tags=True, lists=True, extra=extra)}
        if "custom_fields" in with_:
            body["custom_fields"] = list(self._custom_fields)
        return 200, body

    def _store_contact(self, params: dict[str, Any]) -> Reply:
        force = params.get("__force_update") == "yes"
        email = params.get("email")
        errors: dict[str, dict[str, str]] = {}
        if not email:
            errors["email"] = {"required": "The email field is required."}
        elif not is_email(email):
            errors["email"] = {"email": "The email must be a valid email address."}
        elif not force and self._contact_by_email(str(email)) is not None:
            errors["email"] = {"unique": EMAIL_TAKEN}
        if not params.get("status"):
            errors["status"] = {"required": "The status field is required."}
        if errors:
            return 422, errors
        existing = self._contact_by_email(str(email))
        if existing is None:
            contact = self._new_contact(params)
            loaded = self._apply_tag_params(contact, params.get("tags"), params.get("detach_tags"))
            return 200, {"message": "Successfully added the subscriber.",
                         "contact": self._contact_json(contact, tags=loaded, lists=False),
                         "action_type": "created"}
        self._upsert(existing, params)
        loaded = self._apply_tag_params(existing, params.get("tags"), params.get("detach_tags"))
        return 200, {"message": "contact has been successfully updated.",
                     "contact": self._contact_json(existing, tags=loaded, lists=False),
                     "action_type": "updated"}

    def _update_contact(self, params: dict[str, Any], contact_id: str) -> Reply:
        contact = self._contacts.get(int(contact_id))
        if contact is None:
            return 404, {"message": "No query results for model [FluentCrm\\App\\Models\\Subscriber]."}
        nested = params.get("subscriber")
        data: dict[str, Any] = nested if isinstance(nested, dict) else params  # fields may be nested
        if "email" in data:
            email = data["email"]
            other = self._contact_by_email(str(email)) if email else None
            if not email:
                return 422, {"email": {"required": "The email field is required."}}
            if not is_email(email):
                return 422, {"email": {"email": "The email must be a valid email address."}}
            if other is not None and other.id != contact.id:
                return 422, {"email": {"unique": EMAIL_TAKEN}}
        dirty = self._fill(contact, data)
        loaded = self._apply_tag_params(contact, data.get("attach_tags"), data.get("detach_tags"))
        values = data.get("custom_values") or []
        return 200, {"message": "Subscriber successfully updated",
                     "contact": self._contact_json(contact, tags=loaded, lists=False),
                     "isDirty": dirty, "values": values}

    def _sync_segments(self, params: dict[str, Any]) -> Reply:
        ids = params.get("subscribers")
        if not isinstance(ids, list) or not ids:
            return 500, CRITICAL_ERROR
        find_by = str(params.get("find_by") or "slug")
        is_tags = params.get("type") == "tags"
        attach = self._find_tags(find_by, _as_list(params.get("attach"))) if is_tags else []
        detach = self._find_tags(find_by, _as_list(params.get("detach"))) if is_tags else []
        for raw_id in ids:
            contact = self._contacts.get(int(raw_id)) if str(raw_id).isdigit() else None
            if contact is None:
                return 500, CRITICAL_ERROR  # 2.9.84: null->attachTags() is a PHP fatal (earlier ids stay changed)
            self._attach(contact, attach)
            self._detach(contact, detach)
        wanted = {int(i) for i in ids}
        contacts = [self._contact_json(c, tags=True, lists=True)
                    for c in sorted(self._contacts.values(), key=lambda c: c.id) if c.id in wanted]
        noun = "subscriber" if len(ids) == 1 else "subscribers"
        return 200, {"message": f"Successfully updated the {noun}.", "subscribers": contacts}

    def _custom_fields_list(self, params: dict[str, Any]) -> Reply:
        return 200, {"fields": list(self._custom_fields)}

    # ------------------------------------------------------------------ model logic

    def _now(self) -> str:
        return datetime.now().strftime("%Y-%m-%d %H:%M:%S")

    def _new_tag(self, title: str, slug: str, description: str | None) -> _Tag:
        now = self._now()
        tag = _Tag(self._next_tag_id, title, slug, description, now, now)
        self._tags[tag.id] = tag
        self._next_tag_id += 1
        return tag

    def _new_contact(self, params: dict[str, Any]) -> _Contact:
        now = self._now()
        email = str(params["email"]).strip()
        row: dict[str, Any] = dict.fromkeys(CONTACT_COLUMNS)
        row.update(id=self._next_contact_id, hash=hashlib.md5(email.encode()).hexdigest(), email=email,
                   total_points="0", life_time_value="0", contact_type="lead", created_at=now, updated_at=now,
                   # Sanitize::contact() drops unknown statuses; the column default then applies.
                   status=params["status"] if params.get("status") in STATUSES else "subscribed")
        for key in FILLABLE_TEXT:
            if params.get(key):
                row[key] = sanitize_text_field(params[key])
        contact = _Contact(row)
        self._contacts[contact.id] = contact
        self._next_contact_id += 1
        return contact

    def _upsert(self, contact: _Contact, params: dict[str, Any]) -> None:
        new_status = params.get("status")
        data = {k: v for k, v in params.items() if k != "status"}
        if new_status in STATUSES:
            # 2.9.84: a subscribed contact stays subscribed unless asked to unsubscribe.
            keep = contact.row["status"] == "subscribed" and new_status != "unsubscribed"
            if not keep:
                data["status"] = new_status
        self._fill(contact, data)

    def _fill(self, contact: _Contact, data: dict[str, Any]) -> bool:
        changes: dict[str, Any] = {}
        for key in FILLABLE_TEXT:
            if key in data and data[key] not in (None, ""):
                changes[key] = sanitize_text_field(data[key])
        if data.get("status") in STATUSES:
            changes["status"] = data["status"]
        if data.get("email") and is_email(data["email"]):
            changes["email"] = str(data["email"]).strip()
            changes["hash"] = hashlib.md5(changes["email"].encode()).hexdigest()
        dirty = {k: v for k, v in changes.items() if contact.row[k] != v}
        if dirty:
            contact.row.update(dirty, updated_at=self._now())
        return bool(dirty)

    def _apply_tag_params(self, contact: _Contact, attach: Any, detach: Any) -> bool:
        """attach/detach by id, slug or title (Sanitize::sanitizeTagIds); True if tags were loaded."""
        attach_refs, detach_refs = _as_list(attach), _as_list(detach)
        if attach_refs:
            self._attach(contact, self._sanitize_tag_ids(attach_refs, create=True))
        if detach_refs:
            self._detach(contact, self._sanitize_tag_ids(detach_refs, create=False))
        return bool(attach_refs or detach_refs)

    def _sanitize_tag_ids(self, refs: list[Any], *, create: bool) -> list[int]:
        ids: list[int] = []
        for ref in refs:
            if isinstance(ref, bool):
                continue
            if isinstance(ref, (int, float)) or (isinstance(ref, str) and re.fullmatch(r"\s*\d+\s*", ref)):
                ids.append(int(ref))
                continue
            text = str(ref)
            if len(text.encode()) < 3:
                continue  # too short to be a title: silently skipped
            found = next((t for t in self._tags.values()
                          if t.title.lower() == text.lower() or t.slug.lower() == text.lower()), None)
            if found is None and create:
                found = self._new_tag(text, sanitize_title(text), None)  # the create-by-title trap
            if found is not None:
                ids.append(found.id)
        return ids

    def _find_tags(self, column: str, values: list[Any]) -> list[int]:
        if column not in ("id", "title", "slug", "description"):
            return []
        wanted = {str(v).lower() for v in values}
        return [t.id for t in self._tags.values() if str(getattr(t, column)).lower() in wanted]

    def _attach(self, contact: _Contact, tag_ids: Iterable[int]) -> None:
        now = self._now()
        for tag_id in tag_ids:
            if tag_id in self._tags and tag_id not in contact.pivots:  # unknown ids never show up
                contact.pivots[tag_id] = (now, now)

    def _detach(self, contact: _Contact, tag_ids: Iterable[int]) -> None:
        for tag_id in tag_ids:
            contact.pivots.pop(tag_id, None)

    def _tag_by_slug(self, slug: str) -> _Tag | None:
        return next((t for t in self._tags.values() if t.slug == slug), None)

    def _contact_by_email(self, email: str) -> _Contact | None:
        # MariaDB's default collation compares case-insensitively.
        return next((c for c in self._contacts.values() if c.row["email"].lower() == email.lower()), None)

    def _state(self, contact: _Contact) -> ContactState:
        slugs = tuple(sorted(self._tags[t].slug for t in contact.pivots if t in self._tags))
        return ContactState(contact.id, contact.row["email"], contact.row["first_name"], contact.row["status"], slugs)

    # ------------------------------------------------------------------ JSON shapes

    def _contact_json(self, contact: _Contact, *, tags: bool, lists: bool,
                      extra: dict[str, Any] | None = None) -> dict[str, Any]:
        row = contact.row
        out = {column: row[column] for column in CONTACT_COLUMNS}
        out.update(extra or {})
        out["full_name"] = f"{row['first_name'] or ''} {row['last_name'] or ''}".strip()
        out["photo"] = row["avatar"] or f"{self.site_url}/wp-content/plugins/fluent-crm/assets/images/avatar.png"
        if tags:
            # Observed on 2.9.84: a contact's tags come back in descending tag id order.
            out["tags"] = [
                {**self._tags[tag_id].as_row(),
                 "pivot": {"subscriber_id": str(contact.id), "object_id": str(tag_id), "object_type": TAG_CLASS,
                           "created_at": contact.pivots[tag_id][0], "updated_at": contact.pivots[tag_id][1]}}
                for tag_id in sorted(contact.pivots, reverse=True) if tag_id in self._tags
            ]
        if lists:
            out["lists"] = []
        return out

    def _paginate(self, rows: list[Any], params: dict[str, Any], route: str) -> dict[str, Any]:
        per_page = _positive_int(params.get("per_page"), 15)
        page = _positive_int(params.get("page"), 1)
        total = len(rows)
        last_page = max(1, math.ceil(total / per_page))
        start = (page - 1) * per_page
        chunk = rows[start:start + per_page]
        url = f"{self.base_url}{route}"
        return {
            "total": total, "per_page": per_page, "current_page": page, "last_page": last_page,
            "next_page_url": f"{url}?page={page + 1}" if page < last_page else None,
            "prev_page_url": f"{url}?page={page - 1}" if page > 1 else None,
            "from": start + 1 if chunk else None, "to": start + len(chunk) if chunk else None,
            "data": chunk,
        }


# ---------------------------------------------------------------------- request parsing


def _squeeze(password: str) -> str:
    # WordPress ignores everything but letters and digits in application passwords.
    return re.sub(r"[^A-Za-z0-9]", "", password)


def _php_params(multi: MultiDict[str, str]) -> dict[str, Any]:
    """PHP semantics: `with[]=a&with[]=b` → {"with": ["a", "b"]}; otherwise the last value wins."""
    out: dict[str, Any] = {}
    for key in multi:
        values = multi.getlist(key)
        if key.endswith("[]"):
            out[key[:-2]] = values
        else:
            out[key] = values[-1]
    return out


def _params(args: MultiDict[str, str], form: MultiDict[str, str], body: Any) -> dict[str, Any]:
    # WordPress merges query, form and JSON parameters; the JSON body wins.
    params = _php_params(args)
    params.update(_php_params(form))
    if isinstance(body, dict):
        params.update(body)
    return params


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _positive_int(value: Any, default: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default
