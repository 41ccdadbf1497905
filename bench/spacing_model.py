"""The round-spacing rule on paper: rounds and waits of one key for the two benchmark loads.

``python -m bench.spacing_model`` replays, without any service, the arrival pattern of
``bench/burst.py`` (10 batches 0.2 s apart, 10 events of the key each, spread over up
to 0.15 s of ingestion) and of ``bench/freshness.py`` (one event of the key every 50 ms)
through :class:`services.refresher.spacing.RoundSpacing`: a round starts when the key
has a ticket and the spacing since the previous round has passed, covers every ticket
before its start, and takes ``duration`` seconds. It prints the rounds per burst (× 10
projects = ``wall.get`` calls) and the p99 of event → round end under the steady load
(add the notification path, ~0.1 s for SSE and ~0.3 s for 0.25-s polls, measured).
A model, not a measurement: it shows what the rule does when the machine keeps up.
"""

from __future__ import annotations

import random

from services.refresher.spacing import RoundSpacing


def replay(events: list[float], spacing: RoundSpacing, duration: float) -> tuple[int, float]:
    """Rounds for ``events`` (arrival times) and the p99 of arrival → end of its round."""
    events = sorted(events)
    rounds, waits = 0, []
    index, last_start, last_end, last_spacing, rate = 0, None, 0.0, spacing.base, 0.0
    while index < len(events):
        start = events[index] if last_start is None else max(
            events[index], last_start + last_spacing, last_end)
        covered = index
        while covered < len(events) and events[covered] <= start:
            covered += 1
        waits += [start + duration - arrival for arrival in events[index:covered]]
        rate = spacing.rate(covered - index, None if last_start is None else start - last_start,
                            rate)
        last_spacing = spacing.for_rate(rate)
        rounds, last_start, last_end, index = rounds + 1, start, start + duration, covered
    return rounds, sorted(waits)[int(0.99 * len(waits)) - 1]


def main() -> None:
    rng = random.Random(1)
    rules = {"adaptive (default)": RoundSpacing(), "fixed 0.5 s": RoundSpacing(0.5, 0, 0.5),
             "fixed 1 s": RoundSpacing(1.0, 0, 1.0)}
    for name, rule in rules.items():
        bursts = [replay([batch * 0.2 + rng.uniform(0, 0.15) for batch in range(10)
                          for _ in range(10)], rule, rng.uniform(0.02, 0.1))[0]
                  for _ in range(200)]
        steady = [n * 0.05 + rng.uniform(0, 0.02) for n in range(600)]
        _, p99 = replay(steady, rule, 0.08)
        print(f"{name:20} burst: {min(bursts)}–{max(bursts)} rounds per key "
              f"(× 10 projects: {10 * max(bursts)} wall.get at most); "
              f"steady 20 events/s: p99 event → round done {p99:.2f} s")


if __name__ == "__main__":
    main()
