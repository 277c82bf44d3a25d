"""The hub's Prometheus metrics, in a registry of their own.

One ``HubMetrics`` per app, so tests can run several hubs in one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from riverguard.wire.reject_reasons import HUB_REJECT_REASONS, RejectReason


class HubMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events_in = Counter(
            "riverguard_hub_events", "Events received and committed (new ones)", registry=r
        )
        self.messages_in = Counter(
            "riverguard_hub_messages", "MQTT messages received, by kind", ["kind"], registry=r
        )
        self.rejected = Counter(
            "riverguard_hub_rejected", "Messages rejected, by reason", ["reason"], registry=r
        )
        for reason in HUB_REJECT_REASONS:
            self.rejected.labels(reason)
        self.ingest_errors = Counter(
            "riverguard_hub_ingest_errors", "Ingest batches that failed unexpectedly", registry=r
        )
        self.clock_skew = Counter(
            "riverguard_hub_clock_skew",
            "Events whose edge time is more than 5 minutes off the hub's clock (kept)",
            registry=r,
        )
        self.duplicates = Counter(
            "riverguard_hub_duplicates", "Events already committed, received again", registry=r
        )
        self.alarms = Gauge("riverguard_hub_alarms", "Alarms by state", ["state"], registry=r)
        self.influx_backlog = Gauge(
            "riverguard_hub_influx_backlog", "Committed events not yet in InfluxDB", registry=r
        )
        self.influx_written = Counter(
            "riverguard_hub_influx_written", "Points written to InfluxDB", registry=r
        )
        self.influx_errors = Counter(
            "riverguard_hub_influx_errors", "Failed InfluxDB writes", registry=r
        )
        self.influx_unreadable = Counter(
            "riverguard_hub_influx_unreadable_points",
            "Points read from InfluxDB that are not events (skipped)",
            registry=r,
        )
        self.ws_clients = Gauge(
            "riverguard_hub_ws_clients", "Connected WebSocket clients", registry=r
        )
        self.ws_slow_closed = Counter(
            "riverguard_hub_ws_slow_closed",
            "WebSocket clients closed for not keeping up",
            registry=r,
        )
        self.commit_latency = Histogram(
            "riverguard_hub_ingest_commit_seconds",
            "From an event's receipt by the hub to its commit in the state store",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.push_latency = Histogram(
            "riverguard_hub_push_seconds",
            "From an event's receipt by the hub to its alarm and event pushed to consoles"
            " (right after the commit, before the edge's acknowledgement)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.influx_write_latency = Histogram(
            "riverguard_hub_influx_write_seconds",
            "Duration of one InfluxDB write (a batch), successful or not",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.batch_size = Histogram(
            "riverguard_hub_ingest_batch_size",
            "Messages per ingest batch",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500),
            registry=r,
        )
        self.escalations = Counter(
            "riverguard_hub_escalations",
            "Alarms that climbed an escalation level, by cause (timer, trigger)",
            ["cause"],
            registry=r,
        )
        for cause in ("timer", "trigger"):
            self.escalations.labels(cause)
        self.link_up = Gauge(
            "riverguard_hub_link_up",
            "1 while the hub's link is up (broker, store, influx; PROTOCOL 7.13)",
            ["link"],
            registry=r,
        )
        self.edges_unheard = Gauge(
            "riverguard_hub_edges_unheard",
            "Configured edges the hub has not heard from lately (PROTOCOL 7.13)",
            registry=r,
        )
        self.broker_connected = Gauge(
            "riverguard_hub_broker_connected", "1 while connected to the broker", registry=r
        )
        self.notifications = Counter(
            "riverguard_hub_notifications",
            "Sends to responders, by outcome (sent, retry, failed, given_up) and channel kind",
            ["outcome", "channel"],
            registry=r,
        )
        self.notify_sender_restarts = Gauge(
            "riverguard_hub_notify_sender_restarts",
            "Sending processes that died and were started again since the hub started",
            registry=r,
        )

    def count_rejected(self, reason: RejectReason) -> None:
        """One more message refused for ``reason`` (typed: a misspelt reason does not pass mypy)."""
        self.rejected.labels(reason).inc()
