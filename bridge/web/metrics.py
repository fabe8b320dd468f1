"""Prometheus metrics, right across processes: queue and status gauges are read from the store at
scrape time; the webhook counters are per process unless PROMETHEUS_MULTIPROC_DIR is set (as
gunicorn.conf.py does), in which case every process writes its counters to files there and a
scrape, whichever process answers it, sums them (prometheus_client's multiprocess mode). Every
scrape names the host and process that answered (`kyc_bridge_scrape_info`)."""

from __future__ import annotations

import os
import socket

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

REGISTRY = CollectorRegistry(auto_describe=True)
WEBHOOKS = Counter("kyc_webhooks_total", "Persona webhooks by outcome", ["outcome"], registry=REGISTRY)
# Read once, as prometheus_client itself does when it is imported: the counters above are files
# in that directory or plain values in this process, for the life of the process.
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
HOST = socket.gethostname()


def _counters() -> bytes:
    if not MULTIPROCESS:
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)
    return generate_latest(merged)


def render(runtime) -> bytes:  # type: ignore[no-untyped-def]
    from bridge import queries
    from bridge.store.engine import transaction
    from bridge.store.models import Job

    jobs = GaugeMetricFamily("kyc_jobs", "Outbox jobs by kind and state", labels=["kind", "state"])
    inquiries = GaugeMetricFamily("kyc_inquiries", "Inquiries by status", labels=["status"])
    waiting = GaugeMetricFamily("kyc_reviews_waiting", "Verifications waiting in manual review, by level",
                                labels=["level"])
    overdue = GaugeMetricFamily("kyc_reviews_overdue", "Reviews waiting longer than their level's target "
                                "([review] target_hours)", labels=["level"])
    targets = GaugeMetricFamily("kyc_review_target_hours", "The review target per level ([review] target_hours)",
                                labels=["level"])
    answered = GaugeMetricFamily("kyc_bridge_scrape_info", "The host and process that answered this scrape",
                                 labels=["host", "pid", "counters"])
    answered.add_metric([HOST, str(os.getpid()),
                         "all processes" if MULTIPROCESS else "this process"], 1)
    with transaction(runtime.sessions) as session:
        for kind, state, count in session.execute(
            select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)
        ):
            jobs.add_metric([kind, state], count)
        review_targets, now = runtime.config.review.target_hours, runtime.clock()
        lapse = runtime.config.renewal_policy(now)
        for status, count in queries.status_counts(session, lapse).items():
            inquiries.add_metric([status], count)
        per_level = queries.review_counts(session, now=now, targets=review_targets, lapse=lapse)
    for level in sorted({*review_targets, *(level or "unknown" for level in per_level)}):
        total, late = per_level.get(None if level == "unknown" else level, (0, 0))
        waiting.add_metric([level], total)
        overdue.add_metric([level], late)
    for level, hours in sorted(review_targets.items()):
        targets.add_metric([level], hours)
    text = _counters()
    store = CollectorRegistry()
    store.register(_Static([jobs, inquiries, waiting, overdue, targets, answered]))
    return text + generate_latest(store)


class _Static:
    def __init__(self, families):  # type: ignore[no-untyped-def]
        self.families = families

    def collect(self):  # type: ignore[no-untyped-def]
        return self.families
