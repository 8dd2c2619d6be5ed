"""The `commands` config section: who may command this gate remotely, and within what time."""

from pathlib import Path

from gate.config.base import Field, Section

MAX_COMMAND_BYTES = 16 * 1_048_576
"""The most `max_payload_bytes` may allow: no command, a trust list included, needs more."""


class CommandsConfig(Section):
    public_keys: list[Path] = Field(
        default_factory=list,
        description="PEM Ed25519 public keys of the operations team (`gate cmd keygen` writes "
        "them as KEYFILE.pub); a command must be signed by one of them. Empty: remote "
        "commands are disabled and every one is refused with `commands_disabled`.",
    )
    max_skew_s: float = Field(
        default=300.0,
        ge=1,
        le=86_400,
        description="A command issued more than this many seconds before or after the gate's "
        "clock is refused as `stale`; nonces are remembered (in `<site.state_dir>/commands`, "
        "across restarts) for as long, so a command cannot be replayed.",
    )
    max_payload_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=MAX_COMMAND_BYTES,
        description="Largest command accepted (a trust list is the largest); a bigger one is "
        "refused with `oversized` without being parsed.",
    )
