"""Prometheus metrics. Counters are per process; queue and status gauges are read from the store
at scrape time, so they agree across gunicorn workers."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

REGISTRY = CollectorRegistry(auto_describe=True)
WEBHOOKS = Counter("kyc_webhooks_total", "Persona webhooks by outcome", ["outcome"], registry=REGISTRY)


def render(runtime) -> bytes:  # type: ignore[no-untyped-def]
    from bridge.store.engine import transaction
    from bridge.store.models import Inquiry, Job

    jobs = GaugeMetricFamily("kyc_jobs", "Outbox jobs by kind and state", labels=["kind", "state"])
    inquiries = GaugeMetricFamily("kyc_inquiries", "Inquiries by status", labels=["status"])
    with transaction(runtime.sessions) as session:
        for kind, state, count in session.execute(
            select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)
        ):
            jobs.add_metric([kind, state], count)
        for status, count in session.execute(select(Inquiry.status, func.count()).group_by(Inquiry.status)):
            inquiries.add_metric([status], count)
    text = generate_latest(REGISTRY)
    store = CollectorRegistry()
    store.register(_Static([jobs, inquiries]))
    return text + generate_latest(store)


class _Static:
    def __init__(self, families):  # type: ignore[no-untyped-def]
        self.families = families

    def collect(self):  # type: ignore[no-untyped-def]
        return self.families
