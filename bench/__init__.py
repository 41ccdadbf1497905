"""Benchmarks of the event backbone against real local services (``make bench``).

Each benchmark is a module with ``NAME``, ``TITLE`` and ``async run(infra, mode)``
(:mod:`bench.gateway`, :mod:`bench.burst`, :mod:`bench.freshness`,
:mod:`bench.publishing`, :mod:`bench.verification`, :mod:`bench.notifier`,
:mod:`bench.scaling`); :mod:`bench.__main__` runs them. What they share, by concern:
:mod:`bench.processes` (the services as processes, through :mod:`tools.processes`, and
their CPU and memory from ``/proc``), :mod:`bench.infrastructure` (mongod, RabbitMQ, the
run's size), :mod:`bench.stack` (one benchmark's database, broker prefix, VK sandbox and
services), :mod:`bench.figures` (samples, percentiles, targets) and :mod:`bench.report`
(the table, the JSON). See docs/performance.md.
"""
