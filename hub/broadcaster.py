"""Fan-out of console messages (PROTOCOL 4.1) to WebSocket clients.

Every message gets the next ``seq`` and is serialised once. A ring buffer of
recent messages lets a client that reconnects with ``since`` resume; each
client has a bounded queue and is marked overflowed (the route closes it with
4008) when it cannot keep up, so a slow console never slows the hub.

``seq`` starts at the hub's start time in microseconds, so it keeps increasing
across hub restarts and a stale ``since`` from before a restart gets a fresh
``hello`` instead of a wrong replay.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from hub.metrics import HubMetrics


@dataclass(frozen=True, slots=True)
class Envelope:
    seq: int
    type: str
    text: str
    # For ``event`` messages: the site, to match client subscriptions.
    site: str | None = None


def encode(seq: int, type_: str, data: dict[str, Any]) -> str:
    return json.dumps(
        {"seq": seq, "type": type_, "data": data}, ensure_ascii=False, separators=(",", ":")
    )


class Client:
    """One connected console: its queue and its event subscription."""

    def __init__(self, queue_size: int, sites: set[str] | None = None) -> None:
        self.queue: asyncio.Queue[Envelope] = asyncio.Queue(maxsize=queue_size)
        self.sites: set[str] = set(sites or ())
        # The sites whose ``device`` messages it takes; None: every site's (PROTOCOL 7.37).
        self.device_sites: set[str] | None = None
        self.overflowed = asyncio.Event()

    def wants(self, envelope: Envelope) -> bool:
        if envelope.type == "device":
            chosen = self.device_sites
            return chosen is None or "*" in chosen or envelope.site in chosen
        if envelope.type != "event":
            return True
        return "*" in self.sites or envelope.site in self.sites

    def offer(self, envelope: Envelope) -> bool:
        """Queue ``envelope`` if wanted; False once the queue is full."""
        if self.overflowed.is_set():
            return False
        if not self.wants(envelope):
            return True
        try:
            self.queue.put_nowait(envelope)
        except asyncio.QueueFull:
            self.overflowed.set()
            return False
        return True


class Broadcaster:
    def __init__(
        self,
        metrics: HubMetrics,
        *,
        ring_size: int = 5000,
        queue_size: int = 2000,
        start_seq: int | None = None,
    ) -> None:
        self.metrics = metrics
        self.queue_size = queue_size
        self.seq = int(time.time() * 1_000_000) if start_seq is None else start_seq
        self._ring: deque[Envelope] = deque(maxlen=ring_size)
        self._clients: set[Client] = set()

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def publish(self, type_: str, data: dict[str, Any], site: str | None = None) -> Envelope:
        """Send to every client (``event``s to subscribers of ``site`` only)."""
        self.seq += 1
        return self._send(Envelope(self.seq, type_, encode(self.seq, type_, data), site))

    def publish_json(self, type_: str, data: str, site: str | None = None) -> Envelope:
        """``publish`` for data already serialised to a JSON object."""
        self.seq += 1
        text = f'{{"seq":{self.seq},"type":"{type_}","data":{data}}}'
        return self._send(Envelope(self.seq, type_, text, site))

    def _send(self, envelope: Envelope) -> Envelope:
        self._ring.append(envelope)
        for client in list(self._clients):
            if not client.offer(envelope):
                self.detach(client)
                self.metrics.ws_slow_closed.inc()
        return envelope

    def attach(self, client: Client, since: int | None) -> tuple[int, list[Envelope] | None]:
        """Register ``client``; return the current seq and, for a resumable ``since``,
        the held messages after it (None: send a fresh hello instead).

        Synchronous on purpose: nothing is published between the snapshot of the
        ring and the registration, so the client misses nothing and gets nothing twice.
        """
        replay = self._replay(since) if since is not None else None
        self._clients.add(client)
        self.metrics.ws_clients.set(len(self._clients))
        return self.seq, replay

    def detach(self, client: Client) -> None:
        self._clients.discard(client)
        self.metrics.ws_clients.set(len(self._clients))

    def _replay(self, since: int) -> list[Envelope] | None:
        if since > self.seq:
            return None
        if since == self.seq:
            return []
        oldest = self._ring[0].seq if self._ring else self.seq + 1
        if since < oldest - 1:
            return None
        # Seqs in the ring are consecutive: index arithmetic instead of a scan.
        start = since + 1 - oldest
        return list(self._ring)[start:]
