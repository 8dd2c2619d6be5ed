"""What the gate knows of the signed kinds without their parsers: how each is recognised,
and what a parsed gate pass names.

The parsers (`dcc`, `vds_nc`, `gate_pass`) need cryptography (about 15 MB); these shape tests
need nothing, so a gate that parses no signed kind still says what it was shown.
"""

import re
from collections.abc import Sequence

from gate.credentials.model import Credential

HC1_PREFIX = "HC1:"
PASS_PREFIX = "GP1:"
_VDS_NC_START = re.compile(r'\s*\{\s*"(?:data|sig)"\s*:')


def is_hc1(text: str) -> bool:
    """An EU digital COVID certificate (HC1)."""
    return text.startswith(HC1_PREFIX)


def is_vds_nc(text: str) -> bool:
    """An ICAO visible digital seal (VDS-NC): a JSON object opening with `data` or `sig`."""
    return _VDS_NC_START.match(text) is not None


def is_gate_pass(text: str) -> bool:
    """The site's own gate pass."""
    return text.startswith(PASS_PREFIX)


def gates_of(credential: Credential) -> Sequence[str]:
    """The gates a parsed pass names (empty: all gates of its venue)."""
    listed = credential.details.get("gates", "")
    return listed.split(",") if listed else ()
