"""URLs of Persona's hosted flow. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode


def template_param(template_id: str) -> str:
    """The query parameter (and API attribute) that names this kind of template id."""
    if template_id.startswith("itmplv_"):
        return "inquiry-template-version-id"
    if template_id.startswith("tmpl_"):
        return "template-id"
    return "inquiry-template-id"


def new_inquiry_url(base: str, *, template_id: str, environment_id: str | None, reference_id: str,
                    redirect_uri: str, fields: Mapping[str, str]) -> str:
    params: list[tuple[str, str]] = [(template_param(template_id), template_id)]
    if environment_id:
        params.append(("environment-id", environment_id))
    params += [("reference-id", reference_id), ("redirect-uri", redirect_uri)]
    params += [(f"fields[{key}]", value) for key, value in fields.items() if value]
    return f"{base}?{urlencode(params)}"


def resume_url(base: str, *, inquiry_id: str, session_token: str | None, environment_id: str | None,
               redirect_uri: str) -> str:
    params: list[tuple[str, str]] = [("inquiry-id", inquiry_id)]
    if session_token:
        params.append(("session-token", session_token))
    if environment_id:
        params.append(("environment-id", environment_id))
    params.append(("redirect-uri", redirect_uri))
    return f"{base}?{urlencode(params)}"
