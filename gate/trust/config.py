"""The `trust` config section: where the pinned signers are read from.

Apart from `gate.trust.store` so that a config names trust files without loading
cryptography: the store (and cryptography with it) is loaded only when a gate needs it.
"""

from pathlib import Path

from gate.config.base import Field, Section


class TrustConfig(Section):
    paths: list[Path] = Field(
        default_factory=list,
        description="Files or directories (read recursively) of pinned signers: certificates "
        "(PEM/DER: HC1 document signers, VDS-NC country signing CAs), gate-pass Ed25519 public "
        "keys (PEM) and `kid -> certificate` JSON maps. Read at start and on reload, never at "
        "scan time; `gate trust list` shows them. Empty: nothing signed can verify.",
    )
