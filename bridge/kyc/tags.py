"""Which FluentCRM tags a contact should gain and lose for a KYC status. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bridge.kyc.states import Status

if TYPE_CHECKING:  # the config's value types; this module needs nothing of the config's loading
    from bridge.config import Tag, UserType


@dataclass(frozen=True)
class TagPlan:
    attach: tuple[Tag, ...]
    detach: tuple[Tag, ...]


def plan(
    status_tags: Mapping[Status, Tag], status: Status | None, user_type: UserType | None,
    *, monitoring_tag: Tag | None = None, monitoring_match: bool = False,
) -> TagPlan:
    """Attach the tag of `status` (and of the user type); detach every other KYC status tag. The
    monitoring tag goes with a match in force and is detached otherwise."""
    attach: list[Tag] = []
    wanted = status_tags.get(status) if status else None
    if wanted:
        attach.append(wanted)
    if user_type:
        attach.append(user_type.tag)
    if monitoring_tag and monitoring_match:
        attach.append(monitoring_tag)
    attach_slugs = {t.slug for t in attach}
    detach: dict[str, Tag] = {}
    for tag in (*status_tags.values(), *((monitoring_tag,) if monitoring_tag else ())):
        if tag.slug not in attach_slugs:
            detach.setdefault(tag.slug, tag)
    return TagPlan(attach=tuple(attach), detach=tuple(sorted(detach.values(), key=lambda t: t.slug)))


def withdrawn(status_tags: Mapping[Status, Tag], user_type: UserType | None, others: tuple[Tag, ...]) -> TagPlan:
    """After a consent withdrawal: attach nothing, detach every KYC tag the bridge may have set
    (the status tags, the user type's tag and `others`: the manual-review and monitoring tags)."""
    detach: dict[str, Tag] = {tag.slug: tag for tag in status_tags.values()}
    for extra in (user_type.tag if user_type else None, *others):
        if extra is not None:
            detach.setdefault(extra.slug, extra)
    return TagPlan(attach=(), detach=tuple(sorted(detach.values(), key=lambda t: t.slug)))
