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
the previous round started — so it needs no state besides the round stamps the
coordinator keeps anyway, and adapts within one round when a burst starts or ends.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RoundSpacing:
    base: float = 0.3  # seconds between rounds of a key with few events
    per_event: float = 0.012  # seconds added per event/s of the key's rate
    maximum: float = 2.0  # the longest spacing, however busy the key

    def after(self, covered: int, since_previous: float | None) -> float:
        """The spacing after a round covering ``covered`` tickets, ``since_previous`` seconds
        after the previous round started (``None``: the key's first round)."""
        if since_previous is None or covered <= 0:
            rate = 0.0
        else:
            rate = covered / max(since_previous, self.base, 0.001)
        return min(self.maximum, max(0.0, self.base + self.per_event * rate))
