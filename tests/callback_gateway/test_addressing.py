from __future__ import annotations

import pytest

from services.callback_gateway.addressing import (
    ConfirmationAnswer,
    ProjectKeys,
    addressed_projects,
    confirmation_answer,
)

A = ProjectKeys("a", "code-1", "secret-a")
A2 = ProjectKeys("a2", "code-1", "secret-a")  # a second project on A's callback server
B = ProjectKeys("b", "code-1", "secret-b")
OPEN = ProjectKeys("open", "code-1", None)  # no secret configured
OPEN2 = ProjectKeys("open2", "code-1", None)


class TestAddressedProjects:
    @pytest.mark.parametrize(("projects", "secret", "expected"), [
        # One project per community, as before communities could be shared.
        ((A,), "secret-a", ("a",)),
        ((A,), "secret-b", ()),
        ((A,), None, ()),
        ((A,), "", ()),
        ((OPEN,), None, ("open",)),
        ((OPEN,), "anything", ("open",)),  # nothing to check a secret against
        # Shared communities: the secret says whose callback server sent it.
        ((A, B), "secret-a", ("a",)),
        ((A, B), "secret-b", ("b",)),
        ((A, B), "secret-c", ()),
        ((A, B), None, ()),
        ((A, A2, B), "secret-a", ("a", "a2")),
        ((A, OPEN), None, ("open",)),
        ((A, OPEN), "", ("open",)),
        ((A, OPEN), "secret-a", ("a",)),
        ((A, OPEN), "forged", ()),
        ((OPEN, OPEN2), None, ("open", "open2")),
        ((OPEN, OPEN2), "anything", ("open", "open2")),
        ((), "secret-a", ()),
    ])
    def test_a_request_goes_to_the_projects_its_secret_addresses(
            self, projects: tuple[ProjectKeys, ...], secret: str | None,
            expected: tuple[str, ...]) -> None:
        """Projects whose secret equals the request's, those without one when it has none;
        a community where no project has a secret takes every request."""
        assert tuple(p.project_id for p in addressed_projects(projects, secret)) == expected


class TestConfirmationAnswer:
    @pytest.mark.parametrize(("projects", "secret", "expected"), [
        ((), None, ConfirmationAnswer(None)),
        ((ProjectKeys("a", "", "secret-a"),), "secret-a", ConfirmationAnswer(None)),
        ((A,), "secret-a", ConfirmationAnswer("code-1")),
        ((A,), "forged", ConfirmationAnswer("code-1")),  # the code is no secret to VK's peers
        ((A, B, OPEN), "secret-b", ConfirmationAnswer("code-1")),
        ((ProjectKeys("a", "", "secret-a"), B), "secret-a", ConfirmationAnswer("code-1")),
        # Disagreeing codes: the addressed project's wins (the smallest id among several),
        # else the smallest id's; every holder is named for the log line.
        ((A, ProjectKeys("b", "code-2", "secret-b")), "secret-b",
         ConfirmationAnswer("code-2", ("a", "b"))),
        ((ProjectKeys("b", "code-2", "secret-b"), A), "secret-a",
         ConfirmationAnswer("code-1", ("a", "b"))),
        ((A, ProjectKeys("b", "code-2", "secret-b")), "forged",
         ConfirmationAnswer("code-1", ("a", "b"))),
        ((ProjectKeys("z", "code-2", None), A), None, ConfirmationAnswer("code-2", ("a", "z"))),
    ])
    def test_the_communitys_code_and_the_secrets_when_codes_disagree(
            self, projects: tuple[ProjectKeys, ...], secret: str | None,
            expected: ConfirmationAnswer) -> None:
        """VK issues one code per community; if projects disagree, the one the secret
        addresses decides, and the disagreement is reported."""
        assert confirmation_answer(projects, secret) == expected
