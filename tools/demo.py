"""The demo project: the sandbox's demo community connected to the gateway.

Used by ``make run`` (``tools/run.py``) and, as ``python -m tools.demo``, by the
one-shot ``sandbox_seed`` job of ``docker compose --profile sandbox``. Upserts the
project ``demo`` for the sandbox's demo community and connects the community's
Callback API to the gateway through the real confirmation handshake
(``tools/callback_setup.py``). Idempotent.

Settings come from the usual environment variables (``VK_API_URL`` must point at the
sandbox), plus ``SEED_CALLBACK_URL``: the gateway's callback URL as the sandbox
reaches it.
"""

from __future__ import annotations

import asyncio
import os
import sys

from shared.logging import configure_logging
from shared.mongo import PROJECTS, connect, ensure_indexes
from shared.settings import Settings, load_settings
from shared.vk import VkClient
from tools.callback_setup import setup_callback, wait_until_confirmed
from tools.vk_sandbox import DEMO_GROUP_ID, DEMO_USER_TOKEN

DEMO_PROJECT_ID = "demo"
CALLBACK_URL_ENV = "SEED_CALLBACK_URL"
DEFAULT_CALLBACK_URL = "http://callback_gateway:8080/api/callback"


async def seed_demo_project(settings: Settings, callback_url: str) -> str:
    """Seed the demo project, connect its callbacks; the callback server's final status."""
    client = connect(settings, "demo")
    try:
        db = client[settings.mongo_db]
        await ensure_indexes(db, settings.updates_retention_seconds)
        await db[PROJECTS].update_one({"_id": DEMO_PROJECT_ID}, {
            "$set": {"vk_group_id": DEMO_GROUP_ID, "vk_user_token": DEMO_USER_TOKEN},
            "$setOnInsert": {"name": "Demo project", "vk_confirmation_code": "",
                             "vk_callback_secret": None},
        }, upsert=True)
        async with VkClient.from_settings(settings) as vk:
            server = await setup_callback(db, vk, DEMO_PROJECT_ID, callback_url,
                                          settings.vk_api_version)
            server = await wait_until_confirmed(vk, DEMO_USER_TOKEN, DEMO_GROUP_ID, server)
            return server.status
    finally:
        await client.close()


def main() -> None:
    settings = load_settings()
    configure_logging(settings, "sandbox_seed")
    callback_url = os.environ.get(CALLBACK_URL_ENV, DEFAULT_CALLBACK_URL)
    status = asyncio.run(seed_demo_project(settings, callback_url))
    print(f"demo community {DEMO_GROUP_ID} -> {callback_url}: callback server {status}", flush=True)
    if status != "ok":
        sys.exit(1)


if __name__ == "__main__":
    main()
