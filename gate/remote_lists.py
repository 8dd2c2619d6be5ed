"""Deny and trust lists the operations team replaces remotely, merged with the config's own.

They live in `<site.state_dir>/remote/`, which the gate owns:
- `deny.json`: `{"v": 1, "subject_hashes": [...], "pass_ids": [...], "certificate_ids": [...]}`,
  the three lists of `policy.deny`, replaced atomically. Whoever is on either the config's
  or the remote list is refused (`gate.judge.load_judge` merges them).
- `trust`: a symlink to a `trust-<random>/` directory holding one file, `list.json` (a
  `kid -> certificate` map, as `trust.paths` reads them) or `list.pem` (PEM certificates and
  gate-pass public keys). A new list goes into a new directory and is loaded together with
  `trust.paths` exactly as the gate will load it; only if that succeeds does the link swing
  to it (one atomic rename), and the old directory goes. A bad list leaves the old one.

Replacing them is the commands' work (`gate.commands.lists`); args of those commands:
- `deny_list`: `{"subject_hashes": [...], "pass_ids": [...], "certificate_ids": [...]}`,
  each optional (missing: empty); `{}` clears the remote deny list.
- `trust_list`: `{"kid_map": {"<kid, base64>": "<certificate, base64 DER or PEM>"}}` or
  `{"pem": "<PEM text>"}`; `{"kid_map": {}}` clears the remote trust list.
"""

import json
from pathlib import Path

from gate.app_config import GateConfig
from gate.commands.config import MAX_COMMAND_BYTES
from gate.errors import ConfigError
from gate.files import read_bounded
from gate.policy import DenyList

VERSION = 1
REMOTE = "remote"
DENY_FILE = "deny.json"
TRUST_LINK = "trust"
MAX_LIST_BYTES = MAX_COMMAND_BYTES
"""A list arrives in one command, and no command can be larger."""


def merged_deny(config: GateConfig) -> DenyList:
    """`policy.deny` with the remote deny list added to each of its lists."""
    mine, remote = config.policy.deny, read_deny(config.site.state_dir)
    return mine.model_copy(
        update={
            "subject_hashes": mine.subject_hashes | remote.subject_hashes,
            "pass_ids": mine.pass_ids | remote.pass_ids,
            "certificate_ids": mine.certificate_ids | remote.certificate_ids,
        }
    )


def trust_paths(config: GateConfig) -> list[Path]:
    """`trust.paths` and, once one was received, the remote trust list."""
    link = remote_trust(config.site.state_dir)
    return [*config.trust.paths, link] if link is not None else list(config.trust.paths)


def remote_trust(state_dir: Path) -> Path | None:
    """The remote trust list's directory; None before the first."""
    link = state_dir / REMOTE / TRUST_LINK
    return link if link.exists() else None


def read_deny(state_dir: Path) -> DenyList:
    """The remote deny list (empty before the first); ConfigError when it cannot be read."""
    path = state_dir / REMOTE / DENY_FILE
    try:
        raw = read_bounded(path, MAX_LIST_BYTES)
        if raw is None:
            raise ValueError(f"larger than {MAX_LIST_BYTES} bytes")
        data = json.loads(raw)
        if not isinstance(data, dict) or data.pop("v", None) != VERSION:
            raise ValueError(f"not a version {VERSION} deny list")
        return DenyList.model_validate(data)
    except FileNotFoundError:
        return DenyList()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: remote deny list unreadable ({exc})") from exc
