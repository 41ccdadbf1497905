"""Scenario 7: fuzzing the gateway process with generated requests (hypothesis).

Bodies of every shape VK never sends — random bytes, JSON that is no object, an
envelope with one field broken, lone surrogates, NUL and BOM, UTF-16, huge numbers,
deep nesting, bodies around and far over the size limit, gzip bombs and corrupt
gzip, chunked uploads, any ``Content-Type`` — sent to ``python -m
services.callback_gateway`` over real HTTP. Every case knows which answers it may
get; a 5xx is never one of them.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document
from shared.settings import Settings
from tests.resilience.harness import LogBook, ServiceGroup
from tests.resilience.stack import queue_depths, stack_settings
from tests.support.documents import insert_project
from tests.support.scenarios import Figures, Mode
from tests.support.waiting import eventually
from tools.processes import ROOT

KNOWN_GROUP = 770_001
SECRET = "fuzz-secret-0123456789abcdefXYZ"
CONFIRMATION_CODE = "c0nf1rm5"
OK = frozenset({200})
BAD = frozenset({400})
# Where an implementation limit decides (nesting depth, surrogates, encodings), a
# client error or a normal ``ok`` are both right; a 5xx never is.
OK_OR_BAD = frozenset({200, 400})
CLIENT_ERRORS = frozenset({400, 403, 404, 413})
EVENT_TYPES = ("wall_post_new", "wall_repost", "wall_schedule_post_new",
               "wall_schedule_post_delete", "postponed_new", "message_new", "group_join")
CONTENT_TYPES = (None, "application/json", "application/json; charset=utf-8", "text/plain",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz",
                 "application/json; charset=utf-16", "image/png", "*/*", "garbage;;=")


@dataclass(frozen=True)
class Case:
    """One generated request and the answers it may get."""

    kind: str
    body: bytes
    allowed: frozenset[int]
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False
    ok_body: str = "ok"  # the body a 200 must have
    queues: bool = False  # a 200 puts one event on the refresher's queue


# --- strategies ---------------------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
event_types = st.sampled_from(EVENT_TYPES) | st.text(min_size=1, max_size=64).filter(
    lambda text: text != "confirmation")
unknown_groups = st.integers(min_value=1, max_value=2**63 - 1).filter(lambda g: g != KNOWN_GROUP)


@st.composite
def envelopes(draw: st.DrawFn, *, group_id: int | None = None, secret: str | None = SECRET,
              event_type: str | None = None) -> dict[str, Any]:
    """A well-formed callback (every optional field drawn present or absent)."""
    envelope: dict[str, Any] = {
        "type": event_type if event_type is not None else draw(event_types),
        "group_id": group_id if group_id is not None else KNOWN_GROUP,
    }
    if draw(st.booleans()):
        envelope["event_id"] = draw(st.text(max_size=128))
    if draw(st.booleans()):
        envelope["v"] = draw(st.sampled_from(["5.199", "5.131", ""]))
    if draw(st.booleans()):
        envelope["object"] = draw(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
    if secret is not None:
        envelope["secret"] = secret
    return envelope


def encode(envelope: object, ascii_only: bool = True) -> bytes:
    return json.dumps(envelope, ensure_ascii=ascii_only).encode()


@st.composite
def valid_known(draw: st.DrawFn) -> Case:
    envelope = draw(envelopes())
    return Case("valid", encode(envelope, draw(st.booleans())), OK, queues=True)


@st.composite
def confirmations(draw: st.DrawFn) -> Case:
    known = draw(st.booleans())
    group_id = KNOWN_GROUP if known else draw(unknown_groups)
    envelope = draw(envelopes(group_id=group_id, event_type="confirmation"))
    if known:
        return Case("confirmation", encode(envelope), OK, ok_body=CONFIRMATION_CODE)
    return Case("confirmation_unknown", encode(envelope), frozenset({404}))


@st.composite
def bad_secrets(draw: st.DrawFn) -> Case:
    wrong = draw(st.none() | st.text(max_size=256).filter(lambda text: text != SECRET))
    envelope = draw(envelopes(secret=wrong))
    return Case("bad_secret", encode(envelope, draw(st.booleans())), frozenset({403}))


@st.composite
def unknown_group_events(draw: st.DrawFn) -> Case:
    envelope = draw(envelopes(group_id=draw(unknown_groups)))
    return Case("unknown_group", encode(envelope), OK)  # acknowledged and dropped


BROKEN_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "type": st.sampled_from(["", "x" * 65]) | st.integers() | st.booleans() | st.none()
    | st.lists(st.text(), max_size=2) | st.dictionaries(st.text(max_size=3), st.text(), max_size=2),
    "group_id": st.sampled_from([0, -1, 2**63, 2**70, 1.0, float(KNOWN_GROUP), True, None, "1",
                                 str(KNOWN_GROUP), [KNOWN_GROUP], {"id": KNOWN_GROUP}])
    | st.integers(max_value=0),
    "event_id": st.integers() | st.booleans() | st.sampled_from(["e" * 129]) | st.lists(st.text()),
    "v": st.integers() | st.sampled_from(["5" * 17]) | st.dictionaries(st.text(), st.text()),
    "object": st.integers() | st.text() | st.lists(scalars, max_size=3) | st.booleans(),
    "secret": st.integers() | st.sampled_from(["s" * 257]) | st.lists(st.text(), max_size=2),
}


@st.composite
def broken_envelopes(draw: st.DrawFn) -> Case:
    envelope = draw(envelopes())
    name = draw(st.sampled_from(sorted(BROKEN_FIELDS)))
    if name in ("type", "group_id") and draw(st.booleans()):
        envelope.pop(name)
    else:
        envelope[name] = draw(BROKEN_FIELDS[name])
    return Case(f"broken_{name}", encode(envelope), BAD)


@st.composite
def not_json(draw: st.DrawFn) -> Case:
    raw = draw(st.binary(max_size=2048) | st.text(max_size=500).map(str.encode)
               | st.sampled_from([b"", b"{", b"}", b"null", b"[]", b'{"type": "wall_post_new",',
                                  b"\xff\xfe\x00", b"\xc0\xaf", b"\xed\xa0\x80",  # overlong, CESU
                                  b'{"type":"a","group_id":1}\x00garbage']))
    return Case("not_json", raw, BAD)


@st.composite
def non_objects(draw: st.DrawFn) -> Case:
    value = draw(json_values.filter(lambda value: not isinstance(value, dict)))
    return Case("non_object", encode(value), BAD)


@st.composite
def huge_numbers(draw: st.DrawFn) -> Case:
    digits = "9" * draw(st.integers(min_value=4301, max_value=60_000))
    where = draw(st.sampled_from(["top", "group_id", "object"]))
    if where == "top":
        return Case("huge_number", digits.encode(), BAD)
    envelope = encode(draw(envelopes()))
    if where == "group_id":
        body = envelope.replace(f'"group_id": {KNOWN_GROUP}'.encode(), f'"group_id": {digits}'.encode())
    else:
        body = envelope[:-1] + f', "object": {{"n": {digits}}}}}'.encode()
    return Case(f"huge_number_{where}", body, BAD)


@st.composite
def deep_nesting(draw: st.DrawFn) -> Case:
    depth = draw(st.integers(min_value=1, max_value=5000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    nested = opener * depth + "1" + closer * depth
    if draw(st.booleans()):
        return Case("deep_top", nested.encode(), BAD)
    envelope = encode(draw(envelopes()))
    return Case("deep_object", envelope[:-1] + f', "object": {{"n": {nested}}}}}'.encode(),
                OK_OR_BAD, queues=True)


@st.composite
def unicode_edges(draw: st.DrawFn) -> Case:
    envelope = draw(envelopes())
    trick = draw(st.sampled_from(["surrogate_object", "surrogate_key", "surrogate_type",
                                  "surrogate_secret", "controls", "bom", "utf16", "utf32"]))
    lone = draw(st.sampled_from(["\\ud800", "\\udfff", "\\ud83d", "\\udc00\\ud800"]))
    plain = encode(envelope)
    if trick == "surrogate_object":
        return Case(trick, plain[:-1] + f', "object": {{"t": "a{lone}b"}}}}'.encode(), OK_OR_BAD,
                    queues=True)
    if trick == "surrogate_key":
        return Case(trick, plain[:-1] + f', "object": {{"{lone}": 1}}}}'.encode(), OK_OR_BAD,
                    queues=True)
    if trick == "surrogate_type":
        envelope.pop("type")
        return Case(trick, encode(envelope)[:-1] + f', "type": "{lone}"}}'.encode(), BAD)
    if trick == "surrogate_secret":
        envelope.pop("secret")
        return Case(trick, encode(envelope)[:-1] + f', "secret": "{lone}"}}'.encode(), BAD)
    if trick == "controls":
        envelope["event_id"] = "\x00\u202e\ufeff\u200b\U0001f600e\u0301"
        envelope["object"] = {"text": draw(st.text(st.characters(codec="utf-8"), max_size=60))}
        return Case(trick, encode(envelope, draw(st.booleans())), OK, queues=True)
    text = json.dumps(envelope, ensure_ascii=False)
    body = {"bom": b"\xef\xbb\xbf" + text.encode(), "utf16": text.encode("utf-16"),
            "utf32": text.encode("utf-32")}[trick]
    return Case(trick, body, OK_OR_BAD, queues=True)


@st.composite
def sized_bodies(draw: st.DrawFn, limit: int) -> Case:
    size = draw(st.sampled_from([limit - 1, limit, limit + 1]) | st.integers(limit - 4096, limit * 2))
    if draw(st.booleans()):
        prefix = encode(draw(envelopes()))[:-1] + b', "object": {"text": "'
        suffix = b'"}}'
        body = prefix + b"x" * max(0, size - len(prefix) - len(suffix)) + suffix
        return Case("sized_valid", body, OK if len(body) <= limit else frozenset({413}),
                    queues=True)
    body = b"z" * size
    return Case("sized_garbage", body, BAD if size <= limit else frozenset({413}))


@st.composite
def compressed(draw: st.DrawFn, limit: int) -> Case:
    """VK posts plain JSON: any Content-Encoding is refused before the body is read (a
    valid one, a bomb, or a truncated deflate stream that aiohttp would wait on forever)."""
    encoding = draw(st.sampled_from(["gzip", "deflate", "br", "GZIP ", "x-unknown"]))
    pack = gzip.compress if encoding.strip().lower() == "gzip" else zlib.compress
    variant = draw(st.sampled_from(["valid", "bomb", "corrupt"]))
    headers = {"Content-Encoding": encoding}
    if variant == "valid":
        return Case("gzip_valid", pack(encode(draw(envelopes()))), BAD, headers)
    if variant == "bomb":
        inflated = draw(st.integers(min_value=limit + 1, max_value=50 * 1024 * 1024))
        return Case("gzip_bomb", pack(b" " * inflated), BAD, headers)
    return Case("gzip_corrupt", draw(st.binary(min_size=1, max_size=200)), BAD, headers)


def cases(limit: int) -> st.SearchStrategy[Case]:
    weighted: list[st.SearchStrategy[Case]] = [
        valid_known(), valid_known(), valid_known(), confirmations(), bad_secrets(),
        bad_secrets(), unknown_group_events(), broken_envelopes(), broken_envelopes(),
        broken_envelopes(), not_json(), not_json(), non_objects(), huge_numbers(), deep_nesting(),
        deep_nesting(), unicode_edges(), unicode_edges(), sized_bodies(limit), compressed(limit),
    ]
    return st.one_of(weighted)


@st.composite
def requests(draw: st.DrawFn, limit: int) -> Case:
    """A case sent with any ``Content-Type`` (or none), sometimes chunked."""
    case = draw(cases(limit))
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    headers = dict(case.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    # A compressed body is refused before it is read, and an encoding aiohttp does not know
    # (br) is refused by its parser, which then closes: sent in one piece with its headers,
    # the answer is read before the close (chunk by chunk, the client could hit the close).
    chunked = draw(st.booleans()) and "Content-Encoding" not in headers
    return Case(case.kind, case.body, case.allowed, headers, chunked, case.ok_body, case.queues)


# --- sending ------------------------------------------------------------------------------


@dataclass
class Tally:
    statuses: Counter[int | None] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    queued: int = 0
    sent: int = 0


def send(port: int, case: Case) -> tuple[int | None, str]:
    """One request on a new connection: (status, body), or (None, error) if none came."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body: bytes | list[bytes] = case.body
        if case.chunked:  # no Content-Length: http.client sends Transfer-Encoding: chunked
            body = [case.body[i:i + 8192] for i in range(0, len(case.body), 8192)] or [b""]
        connection.request("POST", "/api/callback", body=body, headers=case.headers)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()


def check(case: Case, status: int | None, text: str, tally: Tally) -> None:
    tally.sent += 1
    tally.statuses[status] += 1
    tally.kinds[case.kind] += 1
    where = f"{case.kind} ({len(case.body)} bytes, {case.headers}, chunked={case.chunked}): "
    assert status is not None, where + text
    assert status < 500, where + f"{status} {text[:300]}"
    assert status in case.allowed, where + f"{status} {text[:300]} not in {sorted(case.allowed)}"
    if status == 200:
        assert text == case.ok_body, where + repr(text[:300])
        tally.queued += case.queues


def fuzz(port: int, limit: int, examples: int, tally: Tally) -> None:
    @hypothesis_settings(max_examples=examples, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck),
                         phases=[Phase.generate, Phase.shrink])
    @given(requests(limit))
    def one_request(case: Case) -> None:
        check(case, *send(port, case), tally)

    one_request()


class TestGatewayFuzzing:
    async def test_generated_requests_get_only_client_errors_and_ok(
        self, mode: Mode, settings: Settings, db: AsyncDatabase[Document],
        services: ServiceGroup, logbook: LogBook, figures: Figures,
    ) -> None:
        """1,000 (long: 10,000) generated requests: only 200 ok/400/403/404/413, never a 5xx;
        exactly the accepted events are queued; the process stays up with a flat RSS."""
        examples = mode.pick(1_000, 10_000)
        stack = stack_settings(settings)
        limit = stack.gateway_max_body_bytes
        logbook.register(SECRET)
        await insert_project(db, group_id=KNOWN_GROUP, secret=SECRET,
                             confirmation_code=CONFIRMATION_CODE)
        gateway = await services.start("callback_gateway", stack)
        port = stack.gateway_port

        warm_up = Tally()  # every code path once, so RSS is measured after first-use growth
        await asyncio.to_thread(fuzz, port, limit, 100, warm_up)
        rss_before = gateway.rss_bytes() // 1024
        tally = Tally()
        await asyncio.to_thread(fuzz, port, limit, examples, tally)
        rss_after = gateway.rss_bytes() // 1024

        assert gateway.alive
        async with aiohttp.ClientSession() as http_session, \
                http_session.get(f"http://127.0.0.1:{port}/healthz") as health:
            assert health.status == 200
        statuses = tally.statuses + warm_up.statuses
        assert set(statuses) <= CLIENT_ERRORS | OK, statuses
        assert not [line for line in gateway.lines() if line.get("level") in ("error", "critical")]
        # No exception escaped the gateway's code. (aiohttp itself logs the decoding
        # errors of compressed bodies it drains after our 400: library lines, not ours.)
        text = gateway.text()
        assert f'File "{ROOT / "services"}' not in text, text[-3000:]

        queued = tally.queued + warm_up.queued

        async def all_queued() -> bool:
            depths = await queue_depths(stack)
            return depths[f"{stack.amqp_prefix}.refresher.callbacks"] == queued

        await eventually(all_queued, timeout=10, what=f"{queued} accepted events on the queue")
        growth_kib = rss_after - rss_before
        figures.record(requests=tally.sent + warm_up.sent, statuses=dict(statuses),
                       queued=queued, rss_before_kib=rss_before, rss_after_kib=rss_after,
                       kinds=dict(tally.kinds))
        # Flat: a leak of even 1 KiB per request would add ~10 MiB over the long run.
        assert growth_kib <= 16 * 1024, (rss_before, rss_after)
