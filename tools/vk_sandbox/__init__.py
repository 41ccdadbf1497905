"""A local stand-in for VK: the wall and Callback API methods the planner uses, the
Callback API sender, and a control API for tests (see ``control.py``).

Run it with ``python -m tools.vk_sandbox --demo``; embed it with :func:`init_app`.
"""

from .app import init_app
from .config import SandboxConfig
from .control import SandboxControl
from .demo import (
    DEMO_ADMIN_USER_ID,
    DEMO_COMMUNITY_TOKEN,
    DEMO_GROUP_ID,
    DEMO_GROUP_NAME,
    DEMO_USER_TOKEN,
)

__all__ = [
    "DEMO_ADMIN_USER_ID",
    "DEMO_COMMUNITY_TOKEN",
    "DEMO_GROUP_ID",
    "DEMO_GROUP_NAME",
    "DEMO_USER_TOKEN",
    "SandboxConfig",
    "SandboxControl",
    "init_app",
]
