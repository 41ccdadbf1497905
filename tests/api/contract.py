"""Driving a running service with cases schemathesis generates from the document.

Schemathesis and Hypothesis are synchronous (``requests``), so a run goes to a worker
thread while the test's event loop stays free. Runs are bounded and derandomized: the
same examples every run, so a failure reproduces, and never a flaky red.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, Response
from schemathesis.specs.openapi.checks import negative_data_rejection

from tests.api.document import CONFORMANCE_CHECKS, ApiCase, conforms

T = TypeVar("T")
# Bodies that break the schema must be refused (4xx), on top of conforming.
REJECTION_CHECKS = [*CONFORMANCE_CHECKS, negative_data_rejection]


@dataclass(frozen=True, slots=True)
class Exchange:
    """One generated request and what the service answered."""

    case: ApiCase
    url: str
    status: int
    body: bytes


@dataclass(slots=True)
class Log:
    """Every exchange of a run, for assertions about what the run covered."""

    exchanges: list[Exchange] = field(default_factory=list)

    def record(self, case: ApiCase, response: Response) -> None:
        self.exchanges.append(Exchange(case, str(response.request.url), response.status_code,
                                       response.content))

    @property
    def statuses(self) -> Counter[int]:
        return Counter(exchange.status for exchange in self.exchanges)

    def where(self, predicate: Callable[[Exchange], bool]) -> list[Exchange]:
        return [exchange for exchange in self.exchanges if predicate(exchange)]


def checks_for(mode: GenerationMode) -> list[Any]:
    return REJECTION_CHECKS if mode is GenerationMode.NEGATIVE else CONFORMANCE_CHECKS


def explore(strategy: st.SearchStrategy[T], exercise: Callable[[T], object], *,
            max_examples: int) -> None:
    """Run ``exercise`` on up to ``max_examples`` drawn examples; the first failure raises."""

    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck),
              report_multiple_bugs=False)
    @given(strategy)
    def run(example: T) -> None:
        exercise(example)

    run()


async def explore_in_thread(strategy: st.SearchStrategy[T], exercise: Callable[[T], object], *,
                            max_examples: int) -> None:
    await asyncio.to_thread(explore, strategy, exercise, max_examples=max_examples)


def call_and_check(case: ApiCase, base_url: str, log: Log, *, checks: list[Any] | None = None,
                   headers: dict[str, str] | None = None,
                   params: dict[str, str] | None = None) -> Response:
    """Send ``case`` to the service, record the answer, and check it against the document."""
    response = case.call(base_url=base_url, headers=headers, params=params)
    log.record(case, response)
    mode = case.meta.generation.mode if case.meta is not None else GenerationMode.POSITIVE
    conforms(case, response, checks or checks_for(mode))
    return response
