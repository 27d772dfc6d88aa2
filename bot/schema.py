"""The base of every config section: a pydantic model that refuses unknown keys."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Strict"]


class Strict(BaseModel):
    """Base for config sections: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", validate_default=True)
