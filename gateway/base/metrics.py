"""Prometheus metrics, on a registry of kanal's own (several apps may live in one test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.webhook_requests = Counter(
            "kanal_webhook_requests_total",
            "Webhook requests by connector and outcome (stored, duplicate, bad_signature, "
            "malformed, too_large, unknown_connector, store_unavailable, handshake).",
            ["connector", "reason"],
            registry=r,
        )
        self.raw_messages_stored = Counter(
            "kanal_raw_messages_stored_total",
            "Raw messages durably stored, by connector and intake.",
            ["connector", "intake"],
            registry=r,
        )
        self.webhook_seconds = Histogram(
            "kanal_webhook_seconds",
            "Time from request to durable acknowledgement.",
            ["connector"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.reports_created = Counter(
            "kanal_reports_created_total",
            "Canonical reports created, by channel and first status.",
            ["channel", "status"],
            registry=r,
        )
        self.normalize_failures = Counter(
            "kanal_normalize_failures_total",
            "Raw messages that failed normalization (kept, visible in /api/v1/inbox).",
            registry=r,
        )
        self.intake_to_report_seconds = Histogram(
            "kanal_intake_to_report_seconds",
            "Time from the message's arrival to its canonical report.",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600),
            registry=r,
        )
        self.crm_attempts = Counter(
            "kanal_crm_attempts_total", "CRM delivery attempts by outcome.", ["outcome"], registry=r
        )
        self.crm_outbox = Gauge(
            "kanal_crm_outbox", "Reports waiting for the CRM, by status.", ["status"], registry=r
        )
        self.poller_errors = Counter(
            "kanal_poller_errors_total", "Poller failures by poller.", ["poller"], registry=r
        )
        self.poller_up = Gauge(
            "kanal_poller_up", "1 while the poller's last run succeeded.", ["poller"], registry=r
        )
        self.smtp_messages = Counter(
            "kanal_smtp_messages_total", "SMTP transactions by outcome.", ["outcome"], registry=r
        )
        self.enrichment_oldest_age = Gauge(
            "kanal_enrichment_oldest_age_seconds",
            "Age of the oldest report waiting in each owner's enrichment queue (set when "
            "/metrics is scraped; an owner with an empty queue has no series).",
            ["owner"],
            registry=r,
        )
        self.store_up = Gauge(
            "kanal_store_up",
            "1 when the store answered the last /readyz or /metrics check, 0 when it did not.",
            registry=r,
        )
        self.api_requests = Counter(
            "kanal_api_requests_total",
            "Admin API requests by status class.",
            ["status"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
