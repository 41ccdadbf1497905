"""Benchmarks of the event backbone against real local services (``make bench``).

Each benchmark is a module with ``NAME``, ``TITLE`` and ``async run(infra, mode)``
(:mod:`bench.gateway`, :mod:`bench.burst`, :mod:`bench.freshness`,
:mod:`bench.publishing`, :mod:`bench.verification`, :mod:`bench.notifier`,
:mod:`bench.scaling`); :mod:`bench.harness` is what they share, :mod:`bench.__main__`
runs them. See docs/performance.md.
"""
