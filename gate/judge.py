"""The judge: parse a payload with the pinned trust store and decide it by the site's rules.

`load_judge` builds one from the running config: it reads the trust store, the deny and
trust lists replaced remotely (`gate.remote_lists`) and, when the policy lists keyed-hash
subject ids, the privacy key. The daemon rebuilds the judge on every list push and reload;
it holds no state of its own (anti-passback lives in `gate.passages`).
"""

import datetime

from gate import remote_lists
from gate.app_config import GateConfig
from gate.credentials import NO_TRUST, parse
from gate.credentials.model import Credential
from gate.decision import Decision
from gate.errors import ConfigError
from gate.outbox.config import SubjectMode
from gate.policy import Rules
from gate.privacy import load_key
from gate.trust.store import TrustStore, load_trust


class Judge:
    """Parse and decide one payload at a given time, as this gate's policy says."""

    def __init__(self, rules: Rules, trust: TrustStore = NO_TRUST) -> None:
        self._rules = rules
        self._trust = trust
        self._zone = rules.zone

    def judge(self, payload: bytes, at: datetime.datetime) -> tuple[Credential, Decision]:
        """`at` is timezone-aware; local dates (birth dates, issue dates) use the site's zone."""
        credential = parse(
            payload, today=at.astimezone(self._zone).date(), at=at, trust=self._trust
        )
        return credential, self._rules.decide(credential, at)


def load_judge(config: GateConfig) -> Judge:
    """The trust store, the remote lists merged in, and the privacy key when the policy needs
    it. Raises ConfigError (TrustError for the trust store) when one cannot be loaded."""
    policy = config.policy.model_copy(update={"deny": remote_lists.merged_deny(config)})
    key = _subject_key(config) if policy.uses_subject_hashes else None
    return Judge(Rules(policy, config.site, key), load_trust(remote_lists.trust_paths(config)))


def _subject_key(config: GateConfig) -> bytes | None:
    """The key published events hash subject ids with, so a hash copied from an event matches:
    the outbox's own loader, in `hmac` mode whatever `privacy.subject` publishes."""
    privacy = config.privacy.model_copy(update={"subject": SubjectMode.HMAC})
    try:
        return load_key(privacy, config.site)
    except OSError as exc:
        raise ConfigError(f"privacy key for policy subject hashes: {exc}") from exc
