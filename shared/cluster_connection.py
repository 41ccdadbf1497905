"""A robust AMQP connection to whichever node of a RabbitMQ cluster answers.

``AMQP_URL`` may list several nodes, MongoDB-style
(``amqp://user:pass@rabbit-0:5672,rabbit-1:5672,rabbit-2:5672/vhost``). The connection
tries them in turn, at start and at every reconnection, so publishers and consumers move
to a live node when theirs dies; the quorum queues keep their messages on the surviving
nodes. Behind one address that balances over the nodes (a Kubernetes Service), one host
is the same thing.
"""

from __future__ import annotations

from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from pydantic_core import MultiHostUrl
from yarl import URL

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT_SECONDS = 15
# After a lost connection, the first try again (to the next node) comes this soon.
RECONNECT_INTERVAL_SECONDS = 1.0


def node_urls(url: str) -> list[str]:
    """One URL per node of ``url`` (``amqp://u:p@h1:5672,h2:5673/vhost?query``), each
    with the credentials, virtual host and query the list was given with."""
    parsed = MultiHostUrl(url)
    hosts = parsed.hosts()
    first = hosts[0]
    urls = []
    for host in hosts:
        node = URL.build(scheme=parsed.scheme, user=first["username"],
                         password=first["password"], host=host["host"] or "",
                         port=host["port"], path=parsed.path or "/",
                         query_string=parsed.query or "", encoded=True)
        urls.append(str(node))
    return urls


class ClusterConnection(aio_pika.RobustConnection):
    """A robust connection to whichever of several nodes answers.

    aio-pika reconnects to one URL only (mosquito/aio-pika#141); this tries every node in
    turn on each (re)connection attempt, starting with the one last connected to.
    """

    def __init__(self, url: URL, *, node_urls: list[str], **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._nodes = [URL(node) for node in node_urls]
        self._node = 0

    # The attempt RobustConnection makes at start and after every loss (a private hook:
    # tests/shared/test_broker.py fails if an aio-pika upgrade renames it).
    async def _RobustConnection__connect_transport(self) -> None:
        last_error: BaseException | None = None
        for _ in self._nodes:
            self.url = self._nodes[self._node]
            try:
                await super()._RobustConnection__connect_transport()  # type: ignore[misc]
                return
            except CONNECTION_EXCEPTIONS as exc:
                last_error = exc
                log.warning("broker_node_unavailable", node=f"{self.url.host}:{self.url.port}",
                            error=f"{type(exc).__name__}: {exc}")
                self._node = (self._node + 1) % len(self._nodes)
        assert last_error is not None
        raise last_error


async def connect_cluster(url: str, *, client_name: str,
                          timeout: float = CONNECT_TIMEOUT_SECONDS) -> AbstractRobustConnection:
    """A robust connection to ``url``'s nodes (one or several); see :class:`ClusterConnection`."""
    nodes = node_urls(url)
    connection = ClusterConnection(
        URL(nodes[0]), node_urls=nodes, reconnect_interval=RECONNECT_INTERVAL_SECONDS,
        client_properties={"connection_name": client_name})
    await connection.connect(timeout=timeout)
    return connection
