"""JSON extraction from model answers: prose, fences, trailing commas, truncation."""

from __future__ import annotations

import pytest

from director_tui.engine.jsonextract import JsonExtractError, extract_json_object, strip_outer_fence


def test_plain_json() -> None:
    assert extract_json_object('{"nodes": []}', ("nodes",)) == {"nodes": []}


def test_prose_wrapped_with_trailing_comma() -> None:
    text = (
        "Sure! Here is the plan you asked for:\n\n"
        '{"nodes": [{"id": "a", "files": ["a.py",], "depends_on": []},],}\n\n'
        "Let me know if you want changes."
    )
    value = extract_json_object(text, ("nodes",))
    assert value["nodes"][0]["id"] == "a"
    assert value["nodes"][0]["files"] == ["a.py"]


def test_fenced_block_is_preferred_over_braces_in_prose() -> None:
    text = (
        "The set {a, b} must stay small.\n"
        "```json\n"
        '{"verdict": "pass", "summary": "ok", "findings": []}\n'
        "```\n"
    )
    assert extract_json_object(text, ("verdict",))["verdict"] == "pass"


def test_braces_inside_strings_do_not_confuse_the_scanner() -> None:
    text = 'Plan: {"nodes": [{"id": "x", "spec": "use {curly} and \\"quotes\\" }"}]} done'
    assert extract_json_object(text, ("nodes",))["nodes"][0]["spec"] == 'use {curly} and "quotes" }'


def test_picks_the_object_with_the_expected_keys() -> None:
    text = 'First an example {"id": "demo"} then the answer {"nodes": [{"id": "real"}]}'
    assert extract_json_object(text, ("nodes",))["nodes"][0]["id"] == "real"


def test_truncated_answer_is_repaired() -> None:
    text = '```json\n{"nodes": [{"id": "a", "files": ["a.py"]}'
    assert extract_json_object(text, ("nodes",))["nodes"][0]["files"] == ["a.py"]


@pytest.mark.parametrize("text", ["", "   ", "I could not produce a plan, sorry."])
def test_no_json_raises_a_readable_error(text: str) -> None:
    with pytest.raises(JsonExtractError, match=r"JSON object|empty"):
        extract_json_object(text, ("nodes",))


def test_object_without_expected_key_is_rejected() -> None:
    with pytest.raises(JsonExtractError, match="'nodes'"):
        extract_json_object('{"tasks": []}', ("nodes",))


def test_strip_outer_fence() -> None:
    assert strip_outer_fence("```markdown\n# Title\n\nbody\n```") == "# Title\n\nbody\n"
    assert strip_outer_fence("# Title\n```py\nx\n```\n") == "# Title\n```py\nx\n```\n"
