"""Hypothesis example counts: short in ``make test``, long (>= 10 000) under ``make fuzz``.

``make fuzz`` sets ``FUZZ_EXAMPLES`` (default there 10000); every property test takes its
count from :func:`fuzz_settings`, so one variable scales all targets.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def fuzz_settings(short: int) -> settings:
    """``short`` examples normally, ``$FUZZ_EXAMPLES`` when set (no deadline either way)."""
    n = int(os.environ.get("FUZZ_EXAMPLES", "0")) or short
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow])
