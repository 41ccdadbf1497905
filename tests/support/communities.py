"""A sandbox community as the tests use it: its admin's user token, its own community token
and, when the test made one, the project pointing at it."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document
from tests.support.documents import insert_project
from tests.support.sandbox import RunningSandbox
from tools.vk_sandbox.control import SandboxControl

PROJECT_SECRET = "s3cret"


@dataclass(frozen=True)
class Community:
    """A sandbox community; ``token`` is its admin's user token."""

    group_id: int
    token: str
    _: KW_ONLY
    community_token: str = ""
    confirmation_code: str = ""
    project_id: str = ""  # the project pointing at it, if any
    secret: str = ""  # that project's callback secret

    @property
    def owner_id(self) -> int:
        """The community's wall owner id (VK negates group ids there)."""
        return -self.group_id


async def sandbox_community(control: SandboxControl, name: str | None = None) -> Community:
    """A new sandbox community with its own admin (so its own user token and rate limit)."""
    created = await control.create_community(name=name)
    admin = await control.create_user(admin_of=[created.group_id])
    return Community(created.group_id, admin.token, community_token=created.community_token,
                     confirmation_code=created.confirmation_code)


async def new_community(db: AsyncDatabase[Document], sandbox: RunningSandbox) -> Community:
    """A new sandbox community with its own admin and a project pointing at it."""
    created = await sandbox.control.create_community()
    admin = await sandbox.control.create_user(admin_of=[created.group_id])
    project_id = await insert_project(db, group_id=created.group_id, token=admin.token,
                                      secret=PROJECT_SECRET,
                                      confirmation_code=created.confirmation_code,
                                      name=created.name)
    return Community(created.group_id, admin.token, community_token=created.community_token,
                     confirmation_code=created.confirmation_code, project_id=project_id,
                     secret=PROJECT_SECRET)
