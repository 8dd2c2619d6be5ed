"""The judge: parse a payload with the pinned trust store and decide it by the site's rules.

`load_judge` builds one from the running config: it reads the trust store, the deny and
trust lists replaced remotely (`gate.remote_lists`) and, when the policy lists keyed-hash
subject ids, the privacy key. The daemon rebuilds the judge on every list push and reload;
it holds no state of its own (anti-passback lives in `gate.passages`).

A remote deny list that cannot be read (a damaged card) does not stop the gate: the judge
then refuses every scan with `policy_unavailable` (the people the list names must not get
in), while the exit button, the publisher and remote commands go on, so the operations
team's next `deny_list` (or a reload) brings the gate back.

The daemon's judge parses the signed kinds only when the gate can verify or accept one
(`verifies`); otherwise it recognises them by their shape and refuses them
`kind_not_accepted` unread, and cryptography is never loaded. The tools (`gate parse`,
`gate trust check`) parse every kind.
"""

import datetime
import logging

from gate import remote_lists
from gate.app_config import GateConfig
from gate.credentials import Parser
from gate.credentials.model import SIGNED_KINDS, Credential
from gate.decision import Decision
from gate.errors import ConfigError
from gate.outbox.config import SubjectMode
from gate.policy import Rules
from gate.privacy import load_key
from gate.reasons import Reason

log = logging.getLogger(__name__)


class Judge:
    """Parse and decide one payload at a given time, as this gate's policy says."""

    def __init__(
        self, rules: Rules, parser: Parser | None = None, *, policy_unavailable: bool = False
    ) -> None:
        self._rules = rules
        self._parser = parser or Parser()
        self._zone = rules.zone
        self.policy_unavailable = policy_unavailable
        """True when part of the policy (the remote deny list) could not be read: every scan
        is refused `policy_unavailable`."""

    def judge(self, payload: bytes, at: datetime.datetime) -> tuple[Credential, Decision]:
        """`at` is timezone-aware; local dates (birth dates, issue dates) use the site's zone."""
        credential = self._parser.parse(payload, today=at.astimezone(self._zone).date(), at=at)
        if self.policy_unavailable:
            return credential, Decision(False, Reason.POLICY_UNAVAILABLE)
        return credential, self._rules.decide(credential, at)


def verifies(config: GateConfig) -> bool:
    """Whether this gate needs the signed kinds' parsers and the trust store: it accepts a
    signed kind, or pins signers (`trust.paths`, or a remote trust list received)."""
    return bool(config.policy.accept_kinds & SIGNED_KINDS) or bool(remote_lists.trust_paths(config))


def load_judge(config: GateConfig, *, every_kind: bool = True) -> Judge:
    """The trust store, the remote lists merged in, and the privacy key when the policy needs
    it. Raises ConfigError (TrustError for the trust store) when one cannot be loaded.

    `every_kind=False` (the daemon): the signed kinds are parsed only when `verifies`.
    """
    try:
        deny = remote_lists.merged_deny(config)
        unavailable = False
    except ConfigError as exc:
        log.error("%s: every scan is refused (policy_unavailable) until a deny list is sent", exc)
        deny, unavailable = config.policy.deny, True
    policy = config.policy.model_copy(update={"deny": deny})
    key = _subject_key(config) if policy.uses_subject_hashes else None
    rules = Rules(policy, config.site, key)
    return Judge(rules, _parser(config, every_kind), policy_unavailable=unavailable)


def _parser(config: GateConfig, every_kind: bool) -> Parser:
    """The parser; when it parses the signed kinds, with the pinned signers loaded."""
    if not (every_kind or verifies(config)):
        return Parser(signed=False)
    from gate.trust.store import load_trust  # cryptography: only for a gate that verifies

    return Parser(trust=load_trust(remote_lists.trust_paths(config)))


def _subject_key(config: GateConfig) -> bytes | None:
    """The key published events hash subject ids with, so a hash copied from an event matches:
    the outbox's own loader, in `hmac` mode whatever `privacy.subject` publishes."""
    privacy = config.privacy.model_copy(update={"subject": SubjectMode.HMAC})
    try:
        return load_key(privacy, config.site)
    except OSError as exc:
        raise ConfigError(f"privacy key for policy subject hashes: {exc}") from exc
