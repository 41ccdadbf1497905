"""Typed keys of what the application holds (set by :func:`~services.update_notifier.app.init_app`)."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from services.update_notifier.dashboard.journal import PostJournal
from services.update_notifier.fanout import Fanout
from services.update_notifier.head import HeadWindow
from services.update_notifier.update_log import UpdateLog
from shared.broker import Broker
from shared.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
FANOUT = web.AppKey("fanout", Fanout)
# The latest entries of the log in memory, kept by the log tailer (answers cursor polls).
HEAD = web.AppKey("head", HeadWindow)
# Set while the application runs (a cleanup context opens MongoDB).
UPDATE_LOG = web.AppKey("update_log", UpdateLog)
# Set only when the application was given a broker: it then consumes, and /readyz checks it.
BROKER = web.AppKey("broker", Broker)
# The dashboard's journal of system posts, kept from a change stream while the app runs.
JOURNAL = web.AppKey("dashboard_journal", PostJournal)
# Sandbox mode only (DASHBOARD_SANDBOX_URL): the session to the sandbox's control API.
SANDBOX_SESSION = web.AppKey("dashboard_sandbox_session", aiohttp.ClientSession)
