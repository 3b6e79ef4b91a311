"""Prometheus metrics: one registry per core, rendered by `GET /metrics`.

Jobs are read from the metadata store at scrape time (ops.repository.job_stats); HTTP
requests and loads are counted by this process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine as DbEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tagport.engines.base import LoadReport
from tagport.ops.repository import DURATION_BUCKETS, job_stats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class JobsCollector(Collector):
    def __init__(self, db: DbEngine) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        with self.db.connect() as conn:
            stats = job_stats(conn)
        stages = GaugeMetricFamily("tagport_jobs", "Export jobs by stage.", labels=["stage"])
        for stage, count in stats.by_stage.items():
            stages.add_metric([stage], count)
        yield stages
        errors = GaugeMetricFamily("tagport_failed_jobs", "Jobs in ERROR by error code.",
                                   labels=["code"])
        for code, count in stats.errors_by_code.items():
            errors.add_metric([code], count)
        yield errors
        buckets = [(str(b), c) for b, c in zip(DURATION_BUCKETS, stats.duration_buckets,
                                               strict=True)]
        yield HistogramMetricFamily(
            "tagport_export_duration_seconds", "Time from RUNNING to FINISH of exports.",
            buckets=[*buckets, ("+Inf", stats.duration_count)], sum_value=stats.duration_sum,
        )
        yield CounterMetricFamily("tagport_exported_rows", "Rows in finished exports.",
                                  value=stats.rows)
        yield CounterMetricFamily("tagport_exported_bytes", "Bytes of finished export files.",
                                  value=stats.bytes)


class Metrics:
    def __init__(self, db: DbEngine) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "tagport_http_requests", "HTTP requests by method, route and status.",
            ["method", "route", "status"], registry=self.registry)
        self.http_seconds = Histogram(
            "tagport_http_request_duration_seconds", "Time to answer HTTP requests.",
            ["route"], registry=self.registry)
        self.loads = Counter("tagport_loads", "Loads run by this process, by outcome.",
                             ["outcome"], registry=self.registry)
        self.load_records = Counter("tagport_load_records", "Records of loads, by result.",
                                    ["result"], registry=self.registry)
        self.registry.register(JobsCollector(db))

    def record_load(self, report: LoadReport) -> None:
        self.loads.labels("applied" if report.applied else "refused").inc()
        for result, count in (("inserted", report.inserted), ("updated", report.updated),
                              ("rejected", report.rejected)):
            self.load_records.labels(result).inc(count)

    def record_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_seconds.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware counting requests by route template (never the raw path, which
    would make one series per job id) and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets when the app raises before answering
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.record_request(scope["method"], route, status,
                                        time.perf_counter() - started)
