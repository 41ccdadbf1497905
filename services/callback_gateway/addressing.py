"""Which projects a callback addresses, and which confirmation code answers it: pure rules.

Several projects may plan for one VK community (two teams, two workspaces): VK allows
up to 10 callback servers per community, each with its own secret, and sends every
event to each of them. So the request's secret says whose copy it is:

* an event goes to every project whose ``vk_callback_secret`` equals the request's
  secret, and to every project without a secret when the request carries none;
* a community where no project holds a secret has nothing to check a secret against:
  every request goes to all of its projects (as for a community of one without one);
* no project addressed → 403.

The confirmation answer is the community's code: VK issues one per community, so its
projects hold the same one. If they disagree (one kept a code VK has since reissued),
the code of a project the secret addresses wins, and the disagreement is reported so
the gateway can log it.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProjectKeys:
    """What the gateway needs of a project."""

    project_id: str
    confirmation_code: str
    callback_secret: str | None

    def accepts_secret(self, secret: str | None) -> bool:
        """True when the request's secret is this project's: equal, or both absent."""
        if not self.callback_secret:
            return not secret
        # compare_digest on equal-type bytes takes time independent of the matching prefix.
        return hmac.compare_digest((secret or "").encode(), self.callback_secret.encode())


def addressed_projects(projects: Sequence[ProjectKeys], secret: str | None
                       ) -> tuple[ProjectKeys, ...]:
    """The projects of one community that a request with ``secret`` is for (see above)."""
    if not any(project.callback_secret for project in projects):
        return tuple(projects)
    # Every project's secret is compared (no early exit), each in constant time.
    return tuple(project for project in projects if project.accepts_secret(secret))


@dataclass(frozen=True, slots=True)
class ConfirmationAnswer:
    """The code to answer a confirmation request with (None: no project has one → 404),
    and the projects whose codes disagree (empty when they agree)."""

    code: str | None
    disagreeing: tuple[str, ...] = ()


def confirmation_answer(projects: Sequence[ProjectKeys], secret: str | None
                        ) -> ConfirmationAnswer:
    """The community's confirmation code for a request with ``secret`` (see above)."""
    holders = tuple(project for project in projects if project.confirmation_code)
    if not holders:
        return ConfirmationAnswer(None)
    if len({project.confirmation_code for project in holders}) == 1:
        return ConfirmationAnswer(holders[0].confirmation_code)
    candidates = addressed_projects(holders, secret) or holders
    chosen = min(candidates, key=lambda project: project.project_id)
    return ConfirmationAnswer(chosen.confirmation_code,
                              tuple(sorted(project.project_id for project in holders)))
