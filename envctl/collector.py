"""How often Python's cyclic garbage collector runs while envctl works on a whole catalog.

Reading 10,000 environments builds a few hundred thousand objects that live until the
command ends, and almost none of them form cycles. At the default threshold (a
collection every 700 allocations, a full one as the long-lived set grows) the collector
walked them again and again: about a fifth of ``envctl lint``'s time on a large catalog,
and as much of ``list``. Collections still happen, just far less often.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: gc thresholds (generation 0, 1, 2) for work over a whole catalog.
FEW_COLLECTIONS = (50_000, 20, 100)


@contextmanager
def few_collections() -> Iterator[None]:
    """Collect rarely inside the block; the previous thresholds are restored after it."""
    before = gc.get_threshold()
    gc.set_threshold(*FEW_COLLECTIONS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
