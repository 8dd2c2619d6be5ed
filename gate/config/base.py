"""The base every config section derives from: typed, frozen, unknown keys refused."""

import os

# The gate runs no pydantic plugins. Looking for them reads the metadata of every installed
# package (on a Pi, every Debian Python package too) when the first model is built: start
# time for nothing. Read when a model is built, so setting it here, before any, suffices.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section. Every field carries a description: the reference is generated from it."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
