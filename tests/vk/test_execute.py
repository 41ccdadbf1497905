from __future__ import annotations

import json
import re

import pytest

from shared.vk.errors import VkAccessDenied, VkError
from shared.vk.execute import (
    MAX_CALLS_PER_EXECUTE,
    VkCall,
    batches,
    call_expression,
    execute_code,
    match_results,
)
from shared.vk.models import WallFilter

TOKEN = "vk1.a.execute-test-token-0123456789abcdefghij"


class TestVkCall:
    @pytest.mark.parametrize("method", ["wall", "wall.get(1)", "API.wall.get", "wall.get;x",
                                        "execute", "execute.myProc", ""])
    def test_only_plain_method_names_are_accepted(self, method: str) -> None:
        """Names go into VKScript verbatim, so anything but ``section.method`` is refused."""
        with pytest.raises(ValueError):
            VkCall(method)


class TestExecuteCode:
    def test_calls_become_one_returned_array(self) -> None:
        """Each call becomes ``API.method({json})`` inside ``return [...];``."""
        code = execute_code([
            VkCall("wall.get", {"owner_id": -1, "filter": WallFilter.POSTPONED, "count": 5}),
            VkCall("groups.getCallbackServers", {"group_id": 1}),
        ])
        assert code == ('return [API.wall.get({"owner_id":-1,"filter":"postponed","count":5}),'
                        'API.groups.getCallbackServers({"group_id":1})];')

    def test_parameters_are_json_encoded_safely(self) -> None:
        """Quotes, brackets and non-ASCII text cannot break out of the parameter object."""
        text = 'Привет "}); API.wall.delete({"post_id":1}); //'
        expression = call_expression(VkCall("wall.post", {"message": text, "skip": None,
                                                          "attachments": ("photo1_2", "doc1_3")}))
        match = re.fullmatch(r"API\.wall\.post\((.*)\)", expression)
        assert match is not None
        assert json.loads(match.group(1)) == {"message": text,
                                              "attachments": ["photo1_2", "doc1_3"]}

    @pytest.mark.parametrize("size", [0, MAX_CALLS_PER_EXECUTE + 1])
    def test_batch_size_is_bounded(self, size: int) -> None:
        """VK runs 1..25 calls per execute; more must be split by the caller."""
        with pytest.raises(ValueError):
            execute_code([VkCall("wall.get")] * size)


class TestBatches:
    def test_long_lists_are_split_into_groups_of_25_in_order(self) -> None:
        """60 calls make batches of 25, 25 and 10, order kept."""
        calls = [VkCall("wall.get", {"owner_id": -n}) for n in range(60)]
        groups = list(batches(calls))
        assert [len(group) for group in groups] == [25, 25, 10]
        assert [call for group in groups for call in group] == calls


class TestMatchResults:
    def test_false_results_take_their_errors_in_order(self) -> None:
        """Each ``false`` gets the next ``execute_errors`` entry of its method."""
        calls = [VkCall("wall.get", {"owner_id": -1}), VkCall("groups.getById"),
                 VkCall("wall.get", {"owner_id": -2}), VkCall("wall.get", {"owner_id": -3})]
        response = [{"count": 0, "items": []}, False, False, False]
        errors = [{"method": "groups.getById", "error_code": 100, "error_msg": "bad id"},
                  {"method": "wall.get", "error_code": 15, "error_msg": "Access denied"},
                  {"method": "wall.get", "error_code": 18, "error_msg": f"deleted {TOKEN}"}]

        results = match_results(calls, response, errors, TOKEN)

        assert results[0] == {"count": 0, "items": []}
        codes = [(type(r).__name__, r.code, r.method) for r in results[1:]
                 if isinstance(r, VkError)]
        assert codes == [("VkInvalidParameter", 100, "groups.getById"),
                         ("VkAccessDenied", 15, "wall.get"),
                         ("VkUserDeleted", 18, "wall.get")]
        assert TOKEN not in str(results[3])

    def test_false_without_an_error_is_a_result(self) -> None:
        """A method that genuinely returns ``false`` keeps that result."""
        results = match_results([VkCall("groups.isMember")], [False], None)
        assert results == [False]

    def test_errors_of_another_method_are_not_misattributed(self) -> None:
        """An error naming another method does not attach to this call."""
        errors = [{"method": "wall.get", "error_code": 15, "error_msg": "x"}]
        results = match_results([VkCall("groups.isMember"), VkCall("wall.get")],
                                [False, False], errors)
        assert results[0] is False
        assert isinstance(results[1], VkAccessDenied)

    def test_a_response_of_the_wrong_length_is_refused(self) -> None:
        """Results that cannot be paired with the calls are not guessed at."""
        with pytest.raises(ValueError):
            match_results([VkCall("wall.get")] * 2, [1], None)
