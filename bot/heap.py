"""Keep the garbage collector's full passes short in a long-running process.

A collection of the oldest generation walks every container object the process keeps.
Most of them are made at start-up (modules, classes, the config, the cards) and live
until exit, so walking them again every half minute only stalls the event loop (by
50-90 ms a pass under load, measured by ``python -m bench.soak``). :func:`freeze_startup`
moves what is alive once start-up is done out of the collector's sight; objects made
later are collected as before.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup"]


def freeze_startup() -> int:
    """Collect the start-up garbage, then freeze everything still alive (it is never walked
    by a collection again); returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
