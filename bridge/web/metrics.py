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
    from bridge.store.engine import transaction
    from bridge.store.models import Inquiry, Job

    jobs = GaugeMetricFamily("kyc_jobs", "Outbox jobs by kind and state", labels=["kind", "state"])
    inquiries = GaugeMetricFamily("kyc_inquiries", "Inquiries by status", labels=["status"])
    answered = GaugeMetricFamily("kyc_bridge_scrape_info", "The host and process that answered this scrape",
                                 labels=["host", "pid", "counters"])
    answered.add_metric([HOST, str(os.getpid()),
                         "all processes" if MULTIPROCESS else "this process"], 1)
    with transaction(runtime.sessions) as session:
        for kind, state, count in session.execute(
            select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)
        ):
            jobs.add_metric([kind, state], count)
        for status, count in session.execute(select(Inquiry.status, func.count()).group_by(Inquiry.status)):
            inquiries.add_metric([status], count)
    text = _counters()
    store = CollectorRegistry()
    store.register(_Static([jobs, inquiries, answered]))
    return text + generate_latest(store)


class _Static:
    def __init__(self, families):  # type: ignore[no-untyped-def]
        self.families = families

    def collect(self):  # type: ignore[no-untyped-def]
        return self.families
