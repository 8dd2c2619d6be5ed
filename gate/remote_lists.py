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

Args of the commands that replace them:
- `deny_list`: `{"subject_hashes": [...], "pass_ids": [...], "certificate_ids": [...]}`,
  each optional (missing: empty); `{}` clears the remote deny list.
- `trust_list`: `{"kid_map": {"<kid, base64>": "<certificate, base64 DER or PEM>"}}` or
  `{"pem": "<PEM text>"}`; `{"kid_map": {}}` clears the remote trust list.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gate.app_config import GateConfig
from gate.commands.envelope import Outcome, Refused, encode
from gate.errors import ConfigError, TrustError
from gate.files import make_private_directory, sync_directory, write_atomically
from gate.policy import DenyList
from gate.trust.store import TrustStore, load_trust

VERSION = 1
REMOTE = "remote"
DENY_FILE = "deny.json"
TRUST_LINK = "trust"
_TRUST_DIR_PREFIX = "trust-"


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
        data = json.loads(path.read_bytes())
        if not isinstance(data, dict) or data.pop("v", None) != VERSION:
            raise ValueError(f"not a version {VERSION} deny list")
        return DenyList.model_validate(data)
    except FileNotFoundError:
        return DenyList()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: remote deny list unreadable ({exc})") from exc


def replace_deny(state_dir: Path, args: Mapping[str, Any]) -> DenyList:
    """Validate and store a new remote deny list; Refused `invalid_list` keeps the old."""
    try:
        deny = DenyList.model_validate(args)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"])  # escaped where it is shown
        raise Refused(Outcome.INVALID_LIST, f"{where}: {error['msg']}") from exc
    lists = {name: sorted(getattr(deny, name)) for name in DenyList.model_fields}
    write_atomically(state_dir / REMOTE / DENY_FILE, encode({"v": VERSION, **lists}))
    return deny


def replace_trust(config: GateConfig, args: Mapping[str, Any]) -> TrustStore:
    """Stage, load with `trust.paths` (as the gate will), then swap in the new remote trust
    list; the store it gives. Refused `invalid_list` leaves the old list in place."""
    name, data = _trust_file(args)
    remote = config.site.state_dir / REMOTE
    make_private_directory(remote)
    staged = Path(tempfile.mkdtemp(prefix=_TRUST_DIR_PREFIX, dir=remote))
    try:
        write_atomically(staged / name, data)
        store = load_trust([*config.trust.paths, staged])
    except TrustError as exc:
        shutil.rmtree(staged, ignore_errors=True)
        raise Refused(
            Outcome.INVALID_LIST, str(exc).replace(str(staged / name), "trust_list")
        ) from exc
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    link, temporary = remote / TRUST_LINK, remote / f".{TRUST_LINK}.tmp"
    temporary.unlink(missing_ok=True)
    os.symlink(staged.name, temporary)
    os.replace(temporary, link)
    sync_directory(remote)
    for old in remote.glob(f"{_TRUST_DIR_PREFIX}*"):
        if old != staged:
            shutil.rmtree(old, ignore_errors=True)
    return store


def _trust_file(args: Mapping[str, Any]) -> tuple[str, bytes]:
    """The file name (its suffix tells the loader the format) and content of a trust list."""
    if set(args) == {"kid_map"} and isinstance(args["kid_map"], dict):
        return "list.json", encode(args["kid_map"])
    if set(args) == {"pem"} and isinstance(args["pem"], str):
        return "list.pem", args["pem"].encode("utf-8")
    raise Refused(Outcome.INVALID_LIST, 'args must be {"kid_map": {...}} or {"pem": "..."}')
