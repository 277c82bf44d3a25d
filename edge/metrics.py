"""The edge agent's Prometheus metrics, in a registry of their own.

One ``EdgeMetrics`` per agent, so tests can run several edges in one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from riverguard.wire.reject_reasons import EDGE_REJECT_REASONS, RejectReason


class EdgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.rejected = Counter(
            "riverguard_edge_rejected", "Messages rejected, by reason", ["reason"], registry=r
        )
        for reason in EDGE_REJECT_REASONS:
            self.rejected.labels(reason)
        self.skipped = Counter(
            "riverguard_edge_source_skipped",
            "Well-formed vendor messages that made no event, by source and reason",
            ["source", "reason"],
            registry=r,
        )
        self.events = Counter(
            "riverguard_edge_events", "Device reports accepted as new events", registry=r
        )
        self.correlated = Counter(
            "riverguard_edge_correlated", "Events raised to critical by correlation", registry=r
        )
        self.clock_skew = Counter(
            "riverguard_edge_clock_skew",
            "Accepted reports whose device time was out of bounds and replaced by the edge's",
            registry=r,
        )
        self.auto_warnings = Counter(
            "riverguard_edge_auto_warnings",
            "Local deterrence decisions: played, hub_answered, quiet_hours, cooldown, no_audio",
            ["outcome"],
            registry=r,
        )
        self.device_timeouts = Counter(
            "riverguard_edge_device_heartbeat_timeouts",
            "Devices reported offline for missing their status heartbeats",
            registry=r,
        )
        self.device_restarts = Counter(
            "riverguard_edge_device_restarts",
            "Device restarts or seq wraps detected (their ids get a boot suffix)",
            registry=r,
        )
        self.late_snapshots = Counter(
            "riverguard_edge_late_snapshots",
            "Snapshots published for events sent earlier without one (Frigate)",
            registry=r,
        )
        self.published = Counter(
            "riverguard_edge_published", "Events published to the hub (first send)", registry=r
        )
        self.batches = Counter(
            "riverguard_edge_event_batches",
            "Event batches published to the hub (PROTOCOL 7.12); their events count in"
            " published or resent",
            registry=r,
        )
        self.resent = Counter(
            "riverguard_edge_resent",
            "Events resent for lack of a commit acknowledgement",
            registry=r,
        )
        self.committed = Counter(
            "riverguard_edge_committed", "Events the hub acknowledged as committed", registry=r
        )
        self.outbox_dropped = Counter(
            "riverguard_edge_outbox_dropped",
            "Uncommitted events dropped because the outbox was full",
            registry=r,
        )
        self.outbox = Gauge(
            "riverguard_edge_outbox", "Events waiting for the hub's commit", registry=r
        )
        self.statuses = Counter(
            "riverguard_edge_device_statuses", "Device statuses relayed", registry=r
        )
        self.acks = Counter(
            "riverguard_edge_announcement_acks",
            "Announcement acknowledgements sent, by state",
            ["state"],
            registry=r,
        )
        self.stops = Counter(
            "riverguard_edge_stops", "Stop commands handled (PROTOCOL 3.2)", registry=r
        )
        self.announcements_capped = Counter(
            "riverguard_edge_announcements_capped",
            "Announces played below what they asked: priority, repeat or volume beyond policy",
            registry=r,
        )
        self.connects = Counter(
            "riverguard_edge_broker_connects",
            "Successful connections to the central broker (the uplink)",
            registry=r,
        )
        self.field_connects = Counter(
            "riverguard_edge_field_broker_connects",
            "Successful connections to the site's broker (the field side)",
            registry=r,
        )
        self.uplink_queued = Gauge(
            "riverguard_edge_uplink_queued",
            "Acks, device statuses and late snapshots waiting for the uplink",
            registry=r,
        )
        self.uplink_dropped = Counter(
            "riverguard_edge_uplink_dropped",
            "Acks, device statuses and late snapshots dropped: the uplink's queue was full",
            registry=r,
        )
        self.agent_restarts = Counter(
            "riverguard_edge_agent_restarts",
            "Times the site's agent failed and was started again within its process",
            registry=r,
        )

    def count_rejected(self, reason: RejectReason) -> None:
        """One more message refused for ``reason`` (typed: a misspelt reason does not pass mypy)."""
        self.rejected.labels(reason).inc()
