"""The garbage collector in our long-running services (hub, edge).

CPython's oldest-generation collection walks every object the collector
tracks, and a service holds hundreds of thousands of them from start-up
(modules, the configuration, pydantic's validators, SQLAlchemy's tables)
that live as long as the process. Measured in the hub under load
(``riverguard bench --rate 1000``), one such collection stopped the event
loop for 228 ms, more than twice the p99 budget of an alarm. Freezing the heap
once start-up is done takes those objects out of the collector's sight: later
collections walk only what came after (11 ms at most in a 45 s run).
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect start-up's garbage once, then exempt everything still alive from
    later collections (``gc.freeze``)."""
    gc.collect()
    gc.freeze()
