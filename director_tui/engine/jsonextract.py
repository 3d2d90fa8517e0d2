"""Pull one JSON object out of a model's answer.

Models asked for "JSON only" still wrap it in prose, put it in a code fence, or leave a
trailing comma. We try, in order, the strict readings (whole text, each fenced block, each
balanced ``{...}`` span) and only then let ``json-repair`` mend the best candidate — it
fixes trailing commas, single quotes and unclosed brackets better than anything we would
write, but it also "repairs" plain prose into an empty string, so its result is checked.

``extract_json_object(text, expect_keys=("nodes",))`` returns the first object that has
all the expected keys (the planner's DAG, the reviewer's verdict) or raises
:class:`JsonExtractError` with a message that can be shown to a human or fed back to the
model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import json_repair

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL)


class JsonExtractError(ValueError):
    """No usable JSON object in the text."""


def _fenced_blocks(text: str) -> Iterator[str]:
    for match in _FENCE.finditer(text):
        yield match.group(2)


def _balanced_spans(text: str) -> Iterator[str]:
    """Every top-level ``{...}`` span, outermost first, honouring strings and escapes.

    An unclosed last span (a truncated answer) is yielded up to the end of the text so
    the repair step can still close it.
    """
    depth = 0
    start = -1
    in_string = False
    escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"' and depth > 0:
            in_string = True
        elif char == "{":
            if depth == 0:
                start = index
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                yield text[start : index + 1]
                start = -1
    if depth > 0 and start >= 0:
        yield text[start:]


def _candidates(text: str) -> Iterator[str]:
    stripped = text.strip()
    if stripped:
        yield stripped
    for block in _fenced_blocks(text):
        yield block.strip()
        yield from _balanced_spans(block)
    yield from _balanced_spans(text)


def _has_keys(value: Any, keys: Sequence[str]) -> bool:
    return isinstance(value, dict) and all(key in value for key in keys)


def extract_json_object(text: str, expect_keys: Sequence[str] = ()) -> dict[str, Any]:
    """The first JSON object in ``text`` that has every key in ``expect_keys``."""
    if not text or not text.strip():
        raise JsonExtractError("the answer was empty: expected one JSON object")
    candidates = list(dict.fromkeys(_candidates(text)))  # unique, in order
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict) and _has_keys(value, expect_keys):
            return dict(value)
    for candidate in candidates:
        if "{" not in candidate:
            continue
        try:
            value = json_repair.loads(candidate)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict) and value and _has_keys(value, expect_keys):
            return dict(value)
    wanted = f" with the key(s) {', '.join(repr(k) for k in expect_keys)}" if expect_keys else ""
    if not any("{" in c for c in candidates):
        raise JsonExtractError(f"no JSON object found in the answer: expected one object{wanted}")
    raise JsonExtractError(f"could not read a JSON object{wanted} from the answer")


def strip_outer_fence(text: str) -> str:
    """A Markdown answer wrapped whole in one code fence, unwrapped; else unchanged."""
    stripped = text.strip()
    match = re.fullmatch(r"```[ \t]*(?:markdown|md)?[ \t]*\n(.*?)\n[ \t]*```", stripped, re.DOTALL)
    return match.group(1).strip() + "\n" if match else stripped + "\n"
