"""The base every config section derives from: typed, frozen, unknown keys refused."""

import os

# The gate runs no pydantic plugins. Looking for them reads the metadata of every installed
# package (on a Pi, every Debian Python package too) when the first model is built: start
# time for nothing. Read when a model is built, so setting it here, before any, suffices.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section. Every field carries a description: the reference is generated from it.

    A section's validator is built when it is first used, not when its class is defined: the
    gate validates its config as one whole (`GateConfig`), and a validator per section, each
    holding its subsections' again, was memory held for nothing. So a subsection's default
    is written as the config would say it (`section_default`) and validated with its parent.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, defer_build=True)


def section_default(**values: Any) -> Callable[[], Any]:
    """The default of a subsection, as its keys would be written in the config:
    `Field(default_factory=section_default(pin=17))`."""
    return lambda: dict(values)
