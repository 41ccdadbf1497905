"""A VK community (group): its wall, its admins, its community token, its callback servers."""

from __future__ import annotations

from dataclasses import dataclass, field

from .callback_servers import CallbackServer
from .wall import Wall


@dataclass
class Community:
    group_id: int
    name: str
    token: str
    # What the Callback API handshake expects back; stable for the community's lifetime.
    confirmation_code: str
    admin_ids: set[int] = field(default_factory=set)
    callback_servers: dict[int, CallbackServer] = field(default_factory=dict)
    last_server_id: int = 0
    wall: Wall = field(init=False)

    def __post_init__(self) -> None:
        self.wall = Wall(self.owner_id)

    @property
    def owner_id(self) -> int:
        """VK addresses a community's wall by the negated group id."""
        return -self.group_id

    def next_server_id(self) -> int:
        self.last_server_id += 1
        return self.last_server_id
