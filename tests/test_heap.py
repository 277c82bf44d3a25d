"""Start-up's heap is frozen: later collections do not walk it."""

from __future__ import annotations

import gc
import weakref

from riverguard.heap import freeze_startup_heap


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_start_up_garbage_is_collected_and_what_lives_is_frozen() -> None:
    kept = [_Cycle() for _ in range(100)]
    garbage = weakref.ref(_Cycle())  # a cycle no one holds: only a collection frees it
    gc.unfreeze()
    try:
        freeze_startup_heap()
        assert garbage() is None
        assert gc.get_freeze_count() > len(kept)
        # Frozen objects are out of the collector's sight: not among those it walks.
        walked = {id(o) for o in gc.get_objects()}
        assert not any(id(k) in walked for k in kept)
    finally:
        gc.unfreeze()
