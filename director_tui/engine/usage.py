"""Token counts: the one model of what an agent call (or a role's calls) used.

An agent's result carries it, ``costs.jsonl`` records (:class:`cost.CostRecord`) and a
node's per-role usage in ``state.json`` (:class:`models.RoleUsage`) extend it, and
``metrics.jsonl`` copies it; all of them write these field names. The scripted provider's
scripts (and director-cli) name the counts without the suffix (``{"input": 100}``): those
names are read too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator

TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
)


class TokenUsage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @model_validator(mode="before")
    @classmethod
    def _short_names(cls, data: Any) -> Any:
        """``input``/``output``/``reasoning``/``cache_read``/``cache_write`` as in scripts
        (a record that has both names keeps the ``*_tokens`` one)."""
        if isinstance(data, dict):
            renamed = {
                name: data[name.removesuffix("_tokens")]
                for name in TOKEN_FIELDS
                if name not in data and name.removesuffix("_tokens") in data
            }
            if renamed:
                short = {name.removesuffix("_tokens") for name in renamed}
                data = {k: v for k, v in data.items() if k not in short} | renamed
        return data

    def add(self, other: TokenUsage) -> None:
        for name in TOKEN_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def counts(self) -> dict[str, int]:
        """The five counts under their recorded names (a subclass's other fields left out)."""
        return {name: getattr(self, name) for name in TOKEN_FIELDS}

    @property
    def total(self) -> int:
        """Tokens the model read or wrote (cache traffic is priced, not counted here)."""
        return self.input_tokens + self.output_tokens + self.reasoning_tokens
