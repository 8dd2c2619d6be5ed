"""The base every config section derives from: typed, frozen, unknown keys refused."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section. Every field carries a description: the reference is generated from it."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
