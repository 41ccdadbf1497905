"""The demo community ``--demo`` seeds: what a local run of the planner connects to."""

from __future__ import annotations

from .state import SandboxState

DEMO_GROUP_ID = 1
DEMO_GROUP_NAME = "Demo community"
DEMO_ADMIN_USER_ID = 100
DEMO_USER_TOKEN = "demo-user-token"
DEMO_COMMUNITY_TOKEN = "demo-community-token"


def seed_demo(state: SandboxState) -> None:
    """Community 1 with its community token, and user 100 who administers it."""
    state.create_community(DEMO_GROUP_ID, DEMO_GROUP_NAME, token=DEMO_COMMUNITY_TOKEN)
    state.create_user(DEMO_ADMIN_USER_ID, admin_of=[DEMO_GROUP_ID], token=DEMO_USER_TOKEN)
