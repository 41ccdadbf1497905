"""The servers the tests use are the ones their helpers act on, on either backend.

With ``TEST_INFRA=testcontainers`` (``make test-containers``) these check that the tests
talk to the containers: rabbitmqctl (tests/support/rabbit.py) sees the test's own connection,
so stopping "the broker" stops the test's broker and never the machine's; and MongoDB is
a replica set primary that runs transactions and change streams.
"""

from __future__ import annotations

import aio_pika
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document
from tests.support.rabbit import close_connections


class TestBrokerControl:
    async def test_rabbitmqctl_acts_on_the_broker_at_the_tests_amqp_url(
        self, amqp_url: str, unique_name: str
    ) -> None:
        """A connection opened at amqp_url is found and closed through rabbitmqctl."""
        connection = await aio_pika.connect(amqp_url, client_properties={
            "connection_name": f"probe-{unique_name}"})
        try:
            assert await close_connections(f"probe-{unique_name}") == 1
        finally:
            await connection.close()


class TestMongoReplicaSet:
    async def test_primary_of_a_replica_set_with_transactions_and_change_streams(
        self, mongo_client: AsyncMongoClient[Document], db: AsyncDatabase[Document]
    ) -> None:
        """hello says primary of rs0; a transaction commits; a change stream sees the insert."""
        hello = await mongo_client.admin.command("hello")
        assert (hello.get("setName"), hello.get("isWritablePrimary")) == ("rs0", True)
        async with await db.probe.watch() as stream:
            async with mongo_client.start_session() as session, await session.start_transaction():
                await db.probe.insert_one({"_id": "in-a-transaction"}, session=session)
            change = await stream.next()
        assert change["documentKey"] == {"_id": "in-a-transaction"}
