"""The base of every config section model: unknown keys are refused, values are frozen.

A misspelt key that is silently ignored is how a site ends up with the default offline policy, so
`extra="forbid"`: the config fails to load (`sentinel.config.ConfigError`, one line per problem).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def field(default: Any, title: str, description: str, **kw: Any) -> Any:
    """A pydantic Field with the title and description `sentinel check-config` and the docs show."""
    return Field(default, title=title, description=description, **kw)
