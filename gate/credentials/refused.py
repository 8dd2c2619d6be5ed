"""Codes a gate meets that are not credentials, recognised so the refusal says what they are
(docs/formats.md "Codes that are not credentials"). Each parser here only ever refuses.

Decisions where the reference is silent:
- A payment code is any text starting `000201` (EMVCo payload format indicator 01), VietQR
  included; nothing else is checked, since nothing of it could pass.
- The venue check-in poster format is not public. Recognised: web addresses whose host is
  one of the national health-declaration or contact-tracing services (`_VENUE_HOSTS`);
  a bare venue id cannot be told from other text and stays `unknown_format`.
- A URL is a scheme (`https:`, `http:`, ...) followed by `//` and no whitespace, or a
  `www.` host; `shc:/` is a SMART Health Card, refused as unsupported, not as a URL.
"""

import re
from collections.abc import Callable

from gate.credentials.model import Context
from gate.reasons import Reason

PAYMENT_PREFIX = "000201"
SMART_HEALTH_CARD_PREFIX = "shc:/"
#: Hosts (and their sub-domains) of Vietnam's health-declaration and tracing services,
#: whose venue posters carry a link: tokhaiyte.vn (health declaration), pccovid.gov.vn
#: (PC-Covid), bluezone.gov.vn (Bluezone), covid19.gov.vn (national portal).
_VENUE_HOSTS = ("tokhaiyte.vn", "pccovid.gov.vn", "bluezone.gov.vn", "covid19.gov.vn")
#: After the host, an optional path, query, fragment or port: a tail that can only start at a
#: delimiter, so a long text that is not a URL fails in one pass (a bare `\S*` after the host
#: backtracked through every split of it: 37 ms for 2 KB).
_URL = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://|www\.)(?P<host>[^/?#:\s]*)(?:[/?#:]\S*)?")


def is_payment(text: str) -> bool:
    return text.startswith(PAYMENT_PREFIX)


def is_smart_health_card(text: str) -> bool:
    return text[: len(SMART_HEALTH_CARD_PREFIX)].lower() == SMART_HEALTH_CARD_PREFIX


def is_venue_poster(text: str) -> bool:
    url = _URL.fullmatch(text)
    if url is None:
        return False
    host = url["host"].lower().rstrip(".")
    return any(host == known or host.endswith("." + known) for known in _VENUE_HOSTS)


def is_url(text: str) -> bool:
    return _URL.fullmatch(text) is not None


def refuse_as(reason: Reason) -> Callable[[str, Context], Reason]:
    """A parser for a kind that is only ever refused, with this reason."""

    def refuse(_text: str, _context: Context) -> Reason:
        return reason

    return refuse
