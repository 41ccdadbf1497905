"""How far apart the refresh rounds of one (project, content type) start (a pure decision).

A round costs one VK request and makes the cache equal to VK, covering every event of
the key that came before it. Spacing rounds trades VK calls for freshness, and the right
trade depends on how busy the key is:

* a **quiet** key is refreshed at once: its previous round is older than any spacing;
* a key with a few events keeps rounds ``base`` apart (0.3 s by default);
* a **busy** key stretches its spacing with its event rate, ``per_event`` seconds for
  each event per second (12 ms by default), up to ``maximum``: at 20 events/s rounds
  are 0.54 s apart, at 50/s 0.9 s, from 142/s on 2 s. The busier the key, the more
  events one VK call covers, and the fewer calls per second the key costs.

The rate is measured from the round itself — the tickets it covers over the time since
the previous round started — and remembered with a fading memory (``memory``, 1 s): the
key's rate is the larger of the measured one and the remembered one decayed by
``exp(-since / memory)``. So a key stays stretched through the gaps and stragglers of
a burst (a slow round covering few tickets), yet a key quiet for a few seconds is back
to the base spacing, and its next event is refreshed at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RoundSpacing:
    base: float = 0.3  # seconds between rounds of a key with few events
    per_event: float = 0.012  # seconds added per event/s of the key's rate
    maximum: float = 2.0  # the longest spacing, however busy the key
    memory: float = 1.0  # seconds: how fast a busy key's remembered rate fades

    def rate(self, covered: int, since_previous: float | None,
             remembered: float = 0.0) -> float:
        """The key's event rate at a round covering ``covered`` tickets, ``since_previous``
        seconds after the previous round started (``None``: the key's first round), given
        the rate ``remembered`` from that round."""
        if since_previous is None:
            return 0.0
        measured = covered / max(since_previous, self.base, 0.001) if covered > 0 else 0.0
        return max(measured, remembered * math.exp(-since_previous / self.memory))

    def for_rate(self, rate: float) -> float:
        """The spacing before the next round of a key with ``rate`` events per second."""
        return min(self.maximum, max(0.0, self.base + self.per_event * rate))

    def after(self, covered: int, since_previous: float | None,
              remembered: float = 0.0) -> float:
        """The spacing after a round (see :meth:`rate`)."""
        return self.for_rate(self.rate(covered, since_previous, remembered))
