"""The execute code parser: the restricted VKScript form, and refusal of anything else."""

from __future__ import annotations

import pytest

from tools.vk_sandbox.errors import VkApiError
from tools.vk_sandbox.execute_code import InnerCall, parse_execute_code


class TestExecuteCodeParser:
    def test_list_of_calls(self) -> None:
        """``return [API.x.y({...}), ...];`` gives the calls in order, params as strings."""
        program = parse_execute_code(
            'return [API.wall.get({"owner_id": -1, "filter": "owner", "count": 20}),'
            " API.wall.get({'owner_id': -2, offset: 5, extended: true})];")
        assert program.returns_list
        assert program.calls == [
            InnerCall("wall.get", {"owner_id": "-1", "filter": "owner", "count": "20"}),
            InnerCall("wall.get", {"owner_id": "-2", "offset": "5", "extended": "1"}),
        ]

    def test_single_call_and_whitespace(self) -> None:
        """``return API.x.y({...});`` with newlines, no trailing semicolon needed."""
        program = parse_execute_code('\n  return API.wall.getById({\n "posts": "-1_2"\n })\n')
        assert not program.returns_list
        assert program.calls == [InnerCall("wall.getById", {"posts": "-1_2"})]

    def test_strings_arrays_and_escapes(self) -> None:
        """Escaped quotes survive; arrays are comma-joined as VK sends them."""
        program = parse_execute_code(
            r'return API.wall.getById({"posts": ["-1_2", "-1_3"], "note": "say \"hi\""});')
        assert program.calls[0].params == {"posts": "-1_2,-1_3", "note": 'say "hi"'}

    def test_compact_json_form(self) -> None:
        """Code built with json.dumps (no spaces, \\u escapes, null, nested objects) parses."""
        code = ('return [API.wall.get({"owner_id":-1,"filter":"all","count":100,'
                '"extended":false,"domain":null}),API.wall.post({"message":"\\u041f\\u0440'
                'ивет","attachments":["photo-1_2","photo-1_3"],"x":{"a":[1,2]},"lat":1.5e1})];')
        program = parse_execute_code(code)
        assert program.calls == [
            InnerCall("wall.get", {"owner_id": "-1", "filter": "all", "count": "100",
                                   "extended": "0"}),
            InnerCall("wall.post", {"message": "Привет", "attachments": "photo-1_2,photo-1_3",
                                    "x": '{"a":[1,2]}', "lat": "15.0"}),
        ]

    @pytest.mark.parametrize("code", [
        "var a = API.wall.get({});  return a;",
        "return API.wall.get({\"owner_id\": -1}) + 1;",
        "return [API.wall.get({})",
        "return API.wall.get({owner_id: Args.x});",
        "API.wall.get({});",
        "",
    ])
    def test_other_code_is_error_12(self, code: str) -> None:
        """Anything beyond the supported form is error 12 (Unable to compile code)."""
        with pytest.raises(VkApiError) as caught:
            parse_execute_code(code)
        assert caught.value.code == 12

    def test_more_than_25_calls(self) -> None:
        """25 calls are fine; 26 is VK's runtime error 13 (too many API calls)."""
        call = 'API.wall.get({"owner_id": -1})'
        assert len(parse_execute_code(f"return [{', '.join([call] * 25)}];").calls) == 25
        with pytest.raises(VkApiError) as caught:
            parse_execute_code(f"return [{', '.join([call] * 26)}];")
        assert caught.value.code == 13
