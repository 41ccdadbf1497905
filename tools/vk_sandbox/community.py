"""A VK community (group): its wall, its admins, its community token, its callback servers."""

from __future__ import annotations

from dataclasses import dataclass, field

from .callback_servers import CallbackServer
from .wall import Wall

# How long the sandbox remembers a wall.post guid. VK documents guid as the key "to
# avoid duplication of the same post" and states no window; an hour covers any re-send.
GUID_MEMORY_SECONDS = 3600.0


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
    # wall.post's guid → (post id, when first used): the same guid answers the same post.
    guids: dict[str, tuple[int, float]] = field(default_factory=dict)
    wall: Wall = field(init=False)

    def __post_init__(self) -> None:
        self.wall = Wall(self.owner_id)

    @property
    def owner_id(self) -> int:
        """VK addresses a community's wall by the negated group id."""
        return -self.group_id

    def post_of_guid(self, guid: str, now: float) -> int | None:
        """The post a ``wall.post`` with ``guid`` made within the memory window, if any."""
        for known, (_, at) in list(self.guids.items()):
            if now - at > GUID_MEMORY_SECONDS:
                del self.guids[known]
        remembered = self.guids.get(guid)
        return None if remembered is None else remembered[0]

    def remember_guid(self, guid: str, post_id: int, now: float) -> None:
        self.guids[guid] = (post_id, now)

    def next_server_id(self) -> int:
        self.last_server_id += 1
        return self.last_server_id
