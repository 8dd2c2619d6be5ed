"""Replacing the remote deny and trust lists (`gate.remote_lists` reads them): the
`deny_list` and `trust_list` commands' work.

Apart from the reading side so that a judge reads the lists without loading cryptography,
which checking a new trust list (and answering a command) needs.
"""

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gate.app_config import GateConfig
from gate.commands.envelope import Outcome, Refused, encode
from gate.config.base import ValidationError
from gate.errors import TrustError
from gate.files import link_atomically, make_private_directory, write_atomically
from gate.policy import DenyList
from gate.remote_lists import DENY_FILE, REMOTE, TRUST_LINK, VERSION
from gate.trust.store import TrustStore, load_trust

_TRUST_DIR_PREFIX = "trust-"


def replace_deny(state_dir: Path, args: Mapping[str, Any]) -> DenyList:
    """Validate and store a new remote deny list; Refused `invalid_list` keeps the old."""
    try:
        deny = DenyList.model_validate(args)
    except ValidationError as exc:
        raise Refused(Outcome.INVALID_LIST, str(exc.problems[0])) from exc  # escaped when shown
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
    link_atomically(remote / TRUST_LINK, staged.name)
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
