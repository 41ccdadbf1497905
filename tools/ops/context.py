"""What one command run works with: settings, streams, prompts, and lazily opened connections.

MongoDB, the VK client and RabbitMQ are opened only by commands that use them and all
closed by :meth:`OpsContext.close`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.broker import Broker
from shared.mongo import PROJECTS, Document, connect
from shared.settings import Settings
from shared.topology import Topology
from shared.vk import VkClient
from tools.ops.failures import OpsFailure, one_line
from tools.ops.prompts import Prompts

BROKER_CONNECT_SECONDS = 10.0
CLIENT_NAME = "ops"

Handler = Callable[["OpsContext", argparse.Namespace], Awaitable[int]]
"""A command: does its job with the context and the parsed arguments; the exit status."""


@dataclass
class OpsContext:
    settings: Settings
    environ: Mapping[str, str]
    prompts: Prompts
    out: TextIO
    err: TextIO
    _mongo: AsyncMongoClient[Document] | None = field(default=None, init=False)
    _vk: VkClient | None = field(default=None, init=False)
    _broker: Broker | None = field(default=None, init=False)

    @property
    def topology(self) -> Topology:
        return Topology(self.settings.amqp_prefix)

    def say(self, text: str = "") -> None:
        print(text, file=self.out)

    def warn(self, text: str) -> None:
        print(f"warning: {one_line(text)}", file=self.err)

    def db(self) -> AsyncDatabase[Document]:
        if self._mongo is None:
            self._mongo = connect(self.settings, "ops")
        return self._mongo[self.settings.mongo_db]

    def vk(self) -> VkClient:
        if self._vk is None:
            self._vk = VkClient.from_settings(self.settings)
        return self._vk

    async def broker(self) -> Broker:
        """A connected broker (the topology declared, as every service does at start)."""
        if self._broker is None:
            broker = Broker(str(self.settings.amqp_url), self.topology, client_name=CLIENT_NAME)
            try:
                async with asyncio.timeout(BROKER_CONNECT_SECONDS):
                    await broker.connect()
            except TimeoutError:
                await broker.close()
                raise OpsFailure(f"RabbitMQ: no connection within {BROKER_CONNECT_SECONDS:g}s"
                                 ) from None
            self._broker = broker
        return self._broker

    async def project(self, project_id: str) -> Document:
        """The ``projects`` document, or a failure naming the unknown project."""
        document = await self.db()[PROJECTS].find_one({"_id": project_id})
        if document is None:
            raise OpsFailure(f"unknown project: {project_id}")
        return document

    async def close(self) -> None:
        if self._broker is not None:
            await self._broker.close()
        if self._vk is not None:
            with contextlib.suppress(Exception):
                await self._vk.close()
        if self._mongo is not None:
            with contextlib.suppress(Exception):
                await self._mongo.close()
