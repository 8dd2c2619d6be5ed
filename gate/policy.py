"""The site's policy: which credentials open this gate, with a stable reason for every refusal.

`Rules.decide` is pure (no I/O, no clock: the time comes in). The config schema of the
policy lives here too; `gate.judge` parses and decides with it, `gate.passages` holds the
anti-passback memory.

Order of the checks, so that the reason is the most useful one: what the parser found
(minus the signer problems the site tolerates), kind accepted, opening hours, a gate pass's
venue and gates, deny lists, allow list, health rules (then the pipeline's anti-passback).
"""

import datetime
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Self

from gate.config.base import Field, Section, field_validator, model_validator
from gate.config.site import SiteConfig
from gate.credentials.model import (
    REFUSED_KINDS,
    SIGNED_KINDS,
    SIGNER_PROBLEMS,
    Credential,
    Health,
    HealthType,
    Kind,
)
from gate.credentials.signed import gates_of
from gate.decision import ACCEPT, Decision
from gate.errors import ConfigError
from gate.outbox.config import SubjectMode
from gate.privacy import subject_form
from gate.reasons import Reason

_HMAC_HEX = re.compile(r"[0-9a-f]{64}")


class Unverified(StrEnum):
    """What a well-formed signed credential gets when its signature cannot be verified."""

    REFUSE = "refuse"
    ACCEPT_EXPIRED_SIGNER = "accept_expired_signer"
    ACCEPT = "accept"


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


_WEEK = list(Weekday)


class HealthRules(Section):
    accept_types: frozenset[HealthType] = Field(
        default=frozenset(HealthType),
        description="Health certificate types (HC1, VDS-NC) accepted: `vaccination`, `test`, "
        "`recovery`; others are refused with `certificate_type_not_accepted`.",
    )
    doses_complete: bool = Field(
        default=True,
        description="A vaccination must complete its series (dose number >= doses in the "
        "series; VDS-NC: no next dose due), else `vaccination_incomplete`.",
    )
    min_days_since_last_dose: int = Field(
        default=14,
        ge=0,
        le=3650,
        description="Days that must have passed since the last dose, else "
        "`vaccination_too_recent`.",
    )
    max_days_since_last_dose: int | None = Field(
        default=None,
        ge=0,
        le=36500,
        description="Most days since the last dose, else `vaccination_too_old`; null: no limit.",
    )
    max_certificate_age_days: int | None = Field(
        default=None,
        ge=0,
        le=36500,
        description="Most days since the certificate was issued (HC1 `iat`), else "
        "`certificate_too_old`; null: no limit.",
    )
    recovery_max_days: int | None = Field(
        default=180,
        ge=0,
        le=36500,
        description="Most days since the first positive test of a recovery certificate, "
        "else `recovery_too_old` (its own valid-until date always applies); null: no limit.",
    )
    test_max_hours: float | None = Field(
        default=72.0,
        gt=0,
        le=24 * 365,
        description="Most hours since a negative test's sample was taken, else "
        "`test_too_old`; a positive test is always refused (`test_positive`). null: no limit.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        most = self.max_days_since_last_dose
        if most is not None and most < self.min_days_since_last_dose:
            raise ValueError("max_days_since_last_dose must be >= min_days_since_last_dose")
        return self


class DenyList(Section):
    subject_hashes: frozenset[str] = Field(
        default=frozenset(),
        description="Keyed-hash subject ids refused with `denied`: HMAC-SHA256 hex of the "
        "subject id with the site's privacy key, as published events carry them.",
    )
    pass_ids: frozenset[str] = Field(
        default=frozenset(), description="Gate-pass ids refused with `revoked`."
    )
    certificate_ids: frozenset[str] = Field(
        default=frozenset(),
        description="Certificate identifiers (HC1 `ci` / VDS-NC `uvci`, `utci`) refused "
        "with `revoked`.",
    )

    @field_validator("subject_hashes")
    @classmethod
    def _hex(cls, hashes: frozenset[str]) -> frozenset[str]:
        return _hmac_hexes(hashes)


class AllowList(Section):
    enabled: bool = Field(
        default=False,
        description="Allow-list mode: only the subjects and passes listed here pass; every "
        "other credential is refused with `not_on_allow_list`.",
    )
    subject_hashes: frozenset[str] = Field(
        default=frozenset(), description="Keyed-hash subject ids allowed (as in `deny`)."
    )
    pass_ids: frozenset[str] = Field(default=frozenset(), description="Gate-pass ids allowed.")

    @field_validator("subject_hashes")
    @classmethod
    def _hex(cls, hashes: frozenset[str]) -> frozenset[str]:
        return _hmac_hexes(hashes)


class OpeningHours(Section):
    days: frozenset[Weekday] = Field(
        default=frozenset(Weekday), description="Days this period opens on (`mon`...`sun`)."
    )
    open: datetime.time = Field(description="Local opening time, `HH:MM`.")
    close: datetime.time = Field(
        description="Local closing time, `HH:MM`; earlier than `open` means the next day."
    )

    @field_validator("open", "close")
    @classmethod
    def _local(cls, value: datetime.time) -> datetime.time:
        if value.tzinfo is not None:
            raise ValueError(
                "expected a local time HH:MM without an offset (site.timezone applies)"
            )
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.open == self.close:
            raise ValueError("open and close must differ")
        return self

    def covers(self, local: datetime.datetime) -> bool:
        """Open at this local time: today's period, or last night's running past midnight."""
        clock = local.time().replace(tzinfo=None)
        today = _WEEK[local.weekday()]
        yesterday = _WEEK[(local.weekday() - 1) % 7]
        if self.open < self.close:
            return today in self.days and self.open <= clock < self.close
        return (today in self.days and clock >= self.open) or (
            yesterday in self.days and clock < self.close
        )


class PolicyConfig(Section):
    accept_kinds: frozenset[Kind] = Field(
        default=frozenset({Kind.CCCD, Kind.NATIONAL_QR}),
        description="Credential kinds that open this gate; every other kind is refused "
        "with reason `kind_not_accepted`.",
    )
    unverified: dict[Kind, Unverified] = Field(
        default_factory=dict,
        description="Per signed kind (`eu_dcc`, `vds_nc`, `gate_pass`), what a well-formed "
        "credential gets when its signature cannot be verified: `refuse` (the default for a "
        "kind not listed: refused with `signer_unknown`, `signer_expired`...), "
        "`accept_expired_signer` (a pinned signer whose validity ended still vouches for it, "
        "as for Vietnam's production key after 2026-07-14) or `accept` (judged on structure "
        "and dates alone, like a plain-text card). A bad signature is always refused.",
    )
    health: HealthRules = Field(
        default_factory=HealthRules,
        description="Rules for health certificates (HC1 and VDS-NC).",
    )
    deny: DenyList = Field(default_factory=DenyList, description="Who never passes.")
    allow: AllowList = Field(default_factory=AllowList, description="Allow-list mode.")
    opening_hours: list[OpeningHours] = Field(
        default_factory=list,
        description="Periods the gate opens in, in the site's time zone; outside them every "
        "credential is refused with `closed`. Empty: always open.",
    )
    anti_passback_minutes: float = Field(
        default=0.0,
        ge=0,
        le=7 * 24 * 60,
        description="Refuse the same subject (same kind and id) who went through this gate within "
        "this many minutes, with `anti_passback` (0: off). Held in memory: a reload or a list "
        "pushed by the operations team keeps it, a restart forgets it.",
    )

    @field_validator("accept_kinds")
    @classmethod
    def _credentials_only(cls, kinds: frozenset[Kind]) -> frozenset[Kind]:
        refused = sorted(kinds & REFUSED_KINDS)
        if refused:
            raise ValueError(f"{', '.join(refused)} never identify a person and cannot be accepted")
        return kinds

    @field_validator("unverified")
    @classmethod
    def _signed_only(cls, outcomes: dict[Kind, Unverified]) -> dict[Kind, Unverified]:
        unsigned = sorted(set(outcomes) - SIGNED_KINDS)
        if unsigned:
            raise ValueError(
                f"{', '.join(unsigned)} carry no signature (signed kinds: "
                f"{', '.join(sorted(SIGNED_KINDS))})"
            )
        return outcomes

    @property
    def uses_subject_hashes(self) -> bool:
        """Whether deciding needs the site's HMAC key."""
        return bool(self.deny.subject_hashes or (self.allow.enabled and self.allow.subject_hashes))


_TOLERATED: dict[Unverified, frozenset[Reason]] = {
    Unverified.REFUSE: frozenset(),
    Unverified.ACCEPT_EXPIRED_SIGNER: frozenset({Reason.SIGNER_EXPIRED}),
    Unverified.ACCEPT: SIGNER_PROBLEMS,
}


class Rules:
    """The policy of one gate, ready to decide: config, site, and the subject-hash key."""

    def __init__(
        self, policy: PolicyConfig, site: SiteConfig, subject_key: bytes | None = None
    ) -> None:
        if policy.uses_subject_hashes and not subject_key:
            raise ConfigError("policy lists keyed-hash subject ids but no privacy key is loaded")
        self.policy = policy
        self.zone = site.zone
        self._site = site
        self._hash = _keyed_hash(subject_key) if subject_key else None

    def decide(self, credential: Credential, at: datetime.datetime) -> Decision:
        """Accept, or refuse with the first rule broken (order: module docstring)."""
        policy = self.policy
        tolerated = _TOLERATED[policy.unverified.get(credential.kind, Unverified.REFUSE)]
        problems = credential.problems or (
            () if credential.reason is Reason.OK else (credential.reason,)
        )
        remaining = [problem for problem in problems if problem not in tolerated]
        if remaining:
            return Decision(False, remaining[0])
        if credential.kind not in policy.accept_kinds:
            return Decision(False, Reason.KIND_NOT_ACCEPTED)
        local = at.astimezone(self.zone)
        if policy.opening_hours and not any(p.covers(local) for p in policy.opening_hours):
            return Decision(False, Reason.CLOSED)
        reason = (
            self._pass_place(credential)
            or self._listed(credential)
            or _health_problem(credential.health, policy.health, at, local.date())
        )
        return Decision(False, reason) if reason else ACCEPT

    def _pass_place(self, credential: Credential) -> Reason | None:
        if credential.kind is not Kind.GATE_PASS:
            return None
        if credential.details.get("venue") != self._site.venue_id:
            return Reason.WRONG_VENUE
        gates = gates_of(credential)
        return Reason.WRONG_GATE if gates and self._site.gate_id not in gates else None

    def _listed(self, credential: Credential) -> Reason | None:
        """Deny lists, then allow-list mode."""
        deny, allow = self.policy.deny, self.policy.allow
        pass_id = credential.subject_id if credential.kind is Kind.GATE_PASS else None
        if pass_id is not None and pass_id in deny.pass_ids:
            return Reason.REVOKED
        if credential.details.get("certificate_id") in deny.certificate_ids:
            return Reason.REVOKED
        subject_hash = self._subject_hash(credential)
        if subject_hash is not None and subject_hash in deny.subject_hashes:
            return Reason.DENIED
        if allow.enabled and not (
            (subject_hash is not None and subject_hash in allow.subject_hashes)
            or (pass_id is not None and pass_id in allow.pass_ids)
        ):
            return Reason.NOT_ON_ALLOW_LIST
        return None

    def _subject_hash(self, credential: Credential) -> str | None:
        """The subject id as published events carry it in `hmac` mode, when lists need it."""
        if self._hash is None or credential.subject_id is None:
            return None
        return self._hash(credential.subject_id)


def _health_problem(
    health: Health | None, rules: HealthRules, at: datetime.datetime, today: datetime.date
) -> Reason | None:
    """The first health rule a certificate breaks; None for other kinds or when all hold."""
    if health is None:
        return None
    if health.type not in rules.accept_types:
        return Reason.CERTIFICATE_TYPE_NOT_ACCEPTED
    limit = rules.max_certificate_age_days
    if limit is not None and health.issued_at and (at - health.issued_at).days > limit:
        return Reason.CERTIFICATE_TOO_OLD
    if health.type is HealthType.VACCINATION:
        return _vaccination_problem(health, rules, today)
    if health.type is HealthType.TEST:
        if health.positive:
            return Reason.TEST_POSITIVE
        hours, sampled = rules.test_max_hours, health.sampled_at
        too_old = hours is not None and sampled and (at - sampled).total_seconds() > hours * 3600
        return Reason.TEST_TOO_OLD if too_old else None
    if health.valid_from and today < health.valid_from:
        return Reason.RECOVERY_NOT_YET_VALID
    if health.valid_until and today > health.valid_until:
        return Reason.RECOVERY_TOO_OLD
    limit = rules.recovery_max_days
    since = (today - health.first_positive_on).days if health.first_positive_on else None
    return Reason.RECOVERY_TOO_OLD if limit is not None and since and since > limit else None


def _vaccination_problem(health: Health, rules: HealthRules, today: datetime.date) -> Reason | None:
    if rules.doses_complete:
        short = health.doses is not None and (health.dose or 0) < health.doses
        if short or (health.doses is None and health.next_dose_due):
            return Reason.VACCINATION_INCOMPLETE
    if health.vaccinated_on is None:
        return None
    days = (today - health.vaccinated_on).days
    if days < rules.min_days_since_last_dose:
        return Reason.VACCINATION_TOO_RECENT
    most = rules.max_days_since_last_dose
    return Reason.VACCINATION_TOO_OLD if most is not None and days > most else None


def _keyed_hash(key: bytes) -> Callable[[str], str]:
    """The keyed hash published events carry subject ids in (`privacy.subject: hmac`)."""
    return lambda subject_id: subject_form(subject_id, SubjectMode.HMAC, key)


def _hmac_hexes(hashes: frozenset[str]) -> frozenset[str]:
    lowered = frozenset(h.strip().lower() for h in hashes)
    bad = sorted(h for h in lowered if not _HMAC_HEX.fullmatch(h))
    if bad:
        # never quoted: a raw id number put here by mistake must not reach a log or a result
        raise ValueError(
            f"{len(bad)} of {len(lowered)} entries are not HMAC-SHA256 hex digests (64 hex "
            "digits): list the keyed hashes events carry, never raw id numbers"
        )
    return lowered
