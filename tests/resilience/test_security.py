"""Scenario 8: secrets. Forged callbacks, the timing of the secret check, the notifier's
bearer token, and no token or secret in any line any process of the suite printed."""

from __future__ import annotations

import math
import random
import secrets
import statistics
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.callback_gateway.addressing import ProjectKeys
from shared.mongo import PROJECTS, SYSTEM_POSTS, Document
from shared.settings import LogLevel, Settings
from tests.resilience.harness import LogBook, ServiceGroup
from tests.resilience.stack import (
    connect_community,
    gateway_url,
    notifier_url,
    queue_depths,
    stack_settings,
)
from tests.support.documents import insert_project
from tests.support.sandbox import RunningSandbox
from tests.support.scenarios import Figures, Mode
from tests.support.waiting import eventually
from tests.update_notifier.sse_client import SseStream

GROUP_ID = 880_001


def callback(secret: str | None, event_id: str = "e1") -> dict[str, object]:
    body: dict[str, object] = {"type": "wall_post_new", "group_id": GROUP_ID, "event_id": event_id,
                               "object": {"id": 1, "post_type": "post"}}
    if secret is not None:
        body["secret"] = secret
    return body


def forgeries(secret: str) -> dict[str, str | None]:
    """Wrong secrets an attacker might try, by name."""
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    return {"missing": None, "empty": "", "random": secrets.token_urlsafe(24),
            "prefix": secret[:-1], "extended": secret + "x", "last_char": flipped,
            "case": secret.swapcase(), "padded": f" {secret} ", "other_project": "s" * 32}


class TestForgedSecrets:
    async def test_forged_or_missing_secret_gets_403_and_nothing_is_queued(
        self, settings: Settings, db: AsyncDatabase[Document], services: ServiceGroup,
        logbook: LogBook,
    ) -> None:
        """Every forgery is answered 403 and leaves the queue empty; the real secret queues one."""
        stack = stack_settings(settings)
        secret = secrets.token_urlsafe(24)
        logbook.register(secret)
        await insert_project(db, group_id=GROUP_ID, secret=secret)
        await insert_project(db, group_id=GROUP_ID + 1, secret="s" * 32)
        await services.start("callback_gateway", stack)
        queue = f"{stack.amqp_prefix}.refresher.callbacks"
        async with aiohttp.ClientSession() as http:
            for name, forged in forgeries(secret).items():
                async with http.post(gateway_url(stack), json=callback(forged, name)) as response:
                    assert (response.status, await response.text()) == (403, "bad secret"), name
            assert (await queue_depths(stack))[queue] == 0
            async with http.post(gateway_url(stack), json=callback(secret)) as response:
                assert (response.status, await response.text()) == (200, "ok")

        async def one_queued() -> bool:
            return (await queue_depths(stack))[queue] == 1

        await eventually(one_queued, what="the genuine event on the queue")


class TestConstantTimeSecretCheck:
    async def test_wrong_secret_answer_time_does_not_depend_on_the_matching_prefix(
        self, mode: Mode, settings: Settings, db: AsyncDatabase[Document],
        services: ServiceGroup, logbook: LogBook, figures: Figures,
    ) -> None:
        """Over HTTP, wrong secrets sharing 0 or all-but-one leading characters with the real
        one are answered in the same time. The two kinds are sent in adjacent pairs (in
        random order), so a loaded machine slows both alike; the median of the pairs'
        differences must be within five standard errors of zero, plus 100 µs. Over HTTP
        this catches a prefix-dependent code path (an extra lookup, a log line, an early
        return), not a byte-wise compare's nanoseconds: the test below covers those."""
        pairs = mode.pick(400, 3000)
        stack = stack_settings(settings)
        secret = secrets.token_urlsafe(24)
        logbook.register(secret)
        await insert_project(db, group_id=GROUP_ID, secret=secret)
        await services.start("callback_gateway", stack)
        # Same length as the secret: differs from the first character, or only in the last.
        no_prefix = ("A" if secret[0] != "A" else "B") + secrets.token_urlsafe(24)[1:]
        long_prefix = secret[:-1] + ("A" if secret[-1] != "A" else "B")
        differences: list[float] = []
        connector = aiohttp.TCPConnector(limit=1)  # one kept-alive connection: no connect time
        async with aiohttp.ClientSession(connector=connector) as http:
            async def answer_time(forged: str) -> float:
                started = time.perf_counter()
                async with http.post(gateway_url(stack), json=callback(forged)) as response:
                    await response.read()
                    assert response.status == 403
                return time.perf_counter() - started

            for _ in range(50):  # warm-up: caches, the project directory, the connection
                await answer_time(no_prefix)
            for _ in range(pairs):
                if random.random() < 0.5:  # neither kind always goes first
                    none = await answer_time(no_prefix)
                    most = await answer_time(long_prefix)
                else:
                    most = await answer_time(long_prefix)
                    none = await answer_time(no_prefix)
                differences.append(none - most)
        center = statistics.median(differences)
        spread = 1.4826 * statistics.median(abs(d - center) for d in differences)  # robust σ
        standard_error = 1.2533 * spread / math.sqrt(len(differences))  # of a median
        figures.record(pairs=pairs, median_difference_us=round(center * 1e6, 2),
                       standard_error_us=round(standard_error * 1e6, 2),
                       robust_sigma_us=round(spread * 1e6, 1))
        assert abs(center) <= 5 * standard_error + 100e-6, (center, standard_error)

    def test_the_compare_itself_takes_as_long_for_any_mismatch_position(self) -> None:
        """In-process, with a 4 MiB secret: a candidate wrong in its first byte takes as long
        as one wrong only in its last. A short-circuiting compare would make the first
        ~0.3 ms (a 4 MiB memcmp) faster in every adjacent pair; the median difference must
        stay under a third of that (or four standard errors, on a very loaded machine)."""
        secret = "k" * (4 * 1024 * 1024)
        keys = ProjectKeys("p", "", secret)
        wrong_first, wrong_last = "x" + secret[1:], secret[:-1] + "x"

        def seconds(candidate: str) -> float:
            started = time.perf_counter()
            assert not keys.accepts_secret(candidate)
            return time.perf_counter() - started

        differences: list[float] = []
        for _ in range(200):
            if random.random() < 0.5:
                first = seconds(wrong_first)
                last = seconds(wrong_last)
            else:
                last = seconds(wrong_last)
                first = seconds(wrong_first)
            differences.append(first - last)
        center = statistics.median(differences)
        spread = 1.4826 * statistics.median(abs(d - center) for d in differences)
        standard_error = 1.2533 * spread / math.sqrt(len(differences))
        assert abs(center) <= max(100e-6, 4 * standard_error), (center, standard_error)


class TestNotifierToken:
    async def test_get_updates_and_the_stream_require_the_bearer_token(
        self, settings: Settings, db: AsyncDatabase[Document], services: ServiceGroup,
        logbook: LogBook,
    ) -> None:
        """With NOTIFIER_TOKEN set: no token, a wrong one or the wrong scheme get 401 on both
        endpoints (the query token only counts for the stream); the right one gets in."""
        token = secrets.token_urlsafe(32)
        logbook.register(token)
        stack = stack_settings(settings, notifier_token=token)
        await services.start("update_notifier", stack)
        base = notifier_url(stack)
        wrong = secrets.token_urlsafe(32)
        logbook.register(wrong)
        refused: list[tuple[dict[str, str], dict[str, str]]] = [
            ({}, {}), ({"Authorization": f"Bearer {wrong}"}, {}),
            ({"Authorization": f"Basic {token}"}, {}), ({"Authorization": token}, {}),
            ({"Authorization": f"Bearer {token[:-1]}"}, {}), ({}, {"access_token": wrong}),
        ]
        async with aiohttp.ClientSession() as http:
            for headers, query in [*refused, ({}, {"access_token": token})]:
                async with http.post(f"{base}/api/getUpdates", json={"cursor": None},
                                     headers=headers, params=query) as response:
                    assert response.status == 401, (headers, query)
                    assert response.headers["WWW-Authenticate"] == "Bearer"
            for headers, query in refused:
                async with http.get(f"{base}/api/updates/stream", headers=headers,
                                    params=query) as response:
                    assert response.status == 401, (headers, query)
            async with http.post(f"{base}/api/getUpdates", json={"cursor": None},
                                 headers={"Authorization": f"Bearer {token}"}) as response:
                assert response.status == 200
                assert (await response.json())["cursor"].startswith("v1.")
            for headers, query in (({"Authorization": f"Bearer {token}"}, {}),
                                   ({}, {"access_token": token})):
                async with http.get(f"{base}/api/updates/stream", headers=headers,
                                    params=query) as response:
                    assert response.status == 200
                    assert (await SseStream(response).next_event()).event == "ready"


@pytest.mark.long  # kept in long runs too: it scans whatever the run produced
class TestNoSecretsInLogs:
    async def test_no_token_or_secret_appears_in_any_line_of_any_process(
        self, vk_settings: Settings, db: AsyncDatabase[Document], vk_sandbox: RunningSandbox,
        services: ServiceGroup, logbook: LogBook, figures: Figures,
    ) -> None:
        """Runs last. All four services at DEBUG handle a callback, a forged callback, a
        revoked token and token-guarded polls; then every line of every process the suite
        started (this test's and all earlier scenarios') is searched for every token and
        secret the suite used, and for the broker password."""
        token = secrets.token_urlsafe(32)
        logbook.register(token)
        stack = stack_settings(vk_settings, notifier_token=token, log_level=LogLevel.DEBUG,
                               tracker_verify_timeout_seconds=2.0)
        await services.start_many(("callback_gateway", stack), ("refresher", stack),
                                  ("post_tracker", stack), ("update_notifier", stack))
        community = await connect_community(db, vk_sandbox, stack, logbook)
        await vk_sandbox.control.create_post(community.group_id, "hello")
        revoked = secrets.token_urlsafe(40)
        logbook.register(revoked)
        broken = await insert_project(db, group_id=community.group_id + 1000, token=revoked,
                                      secret=secrets.token_urlsafe(24))
        await db[SYSTEM_POSTS].insert_one({
            "project_id": broken, "text": "never", "attachments": [], "status":
            "pending_publication", "publication_date": datetime.now(UTC), "vk_post_id": None,
            "error": None})
        async with aiohttp.ClientSession() as http:
            async with http.post(gateway_url(stack), json={
                    "type": "wall_post_new", "group_id": community.group_id, "event_id": "x",
                    "secret": community.secret[::-1]}) as response:
                assert response.status == 403
            headers = {"Authorization": f"Bearer {token}"}
            async with http.post(f"{notifier_url(stack)}/api/getUpdates", headers=headers,
                                 json={}) as response:
                assert response.status == 200
            async with http.get(f"{notifier_url(stack)}/api/updates/stream",
                                params={"access_token": token}) as response:
                assert response.status == 200

            async def post_failed() -> bool:
                return await db[SYSTEM_POSTS].count_documents(
                    {"project_id": broken, "status": "error"}) == 1

            await eventually(post_failed, timeout=20, what="the revoked token's post in error")

        async def refreshed() -> bool:
            project = await db[PROJECTS].find_one({"_id": community.project_id})
            return bool(project and project.get("refresh_status", {}).get("published", {}).get("ok"))

        await eventually(refreshed, timeout=20, what="the callback's refresh")
        await services.close()

        amqp = urlsplit(str(stack.amqp_url))
        needles = set(logbook.secrets)
        if amqp.password:
            needles.add(f":{amqp.password}@")
        logs = logbook.logs()
        leaks = [(path.name, needle[:6] + "…") for path in logs
                 for needle in needles if needle in path.read_text(errors="replace")]
        lines = sum(len(path.read_text(errors="replace").splitlines()) for path in logs)
        figures.record(log_files=len(logs), lines=lines, secrets=len(needles), leaks=len(leaks))
        assert len(logs) >= 4 and len(needles) >= 5
        assert leaks == []
