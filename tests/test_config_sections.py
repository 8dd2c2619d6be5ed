"""The rules every config section follows (gate/config/base.py), on small sections of their own.

The gate's sections are tested with their own rules elsewhere (test_config.py and each
feature's tests); these say what a value is converted to, what is refused and where the
problem is said to be, whatever the section.
"""

import datetime
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import pytest

from gate.config.base import (
    Field,
    Section,
    ValidationError,
    field_validator,
    model_validator,
)
from gate.errors import GateError


class Colour(StrEnum):
    RED = "red"
    GREEN = "green"


class Inner(Section):
    pin: int | str = Field(description="A number or a name.")
    on: bool = Field(default=True, description="On.")


class Outer(Section):
    count: int = Field(default=1, ge=1, le=10, description="A bounded whole number.")
    rate: float = Field(default=0.5, gt=0, description="A positive number.")
    name: str = Field(default="a", min_length=1, pattern=r"^[a-z]+$", description="Letters.")
    where: Path = Field(default=Path("/tmp"), description="A path.")
    at: datetime.time | None = Field(default=None, description="A time of day.")
    mode: Literal["fast", "slow"] = Field(default="fast", description="A choice.")
    colours: frozenset[Colour] = Field(default=frozenset(), description="A set of enums.")
    steps: tuple[str, ...] = Field(default=(), max_length=2, description="A short tuple.")
    limits: dict[Colour, int] = Field(default_factory=dict, description="A mapping.")
    inner: Inner = Field(default_factory=lambda: Inner(pin=17), description="A subsection.")
    spare: Inner | None = Field(default=None, description="An optional subsection.")


def problems(data: Mapping[str, Any], section: type[Section] = Outer) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as refused:
        section.model_validate(data)
    return [(p.where, p.message) for p in refused.value.problems]


class BadDefault(Section):
    count: int = Field(default="one", description="A default of the wrong type.")


def test_defaults_are_checked_like_values_and_subsections_default_through_their_parent() -> None:
    outer = Outer()
    assert (outer.count, outer.inner, outer.spare) == (1, Inner(pin=17, on=True), None)
    assert problems({}, BadDefault) == [("count", "expected a whole number")]


def test_values_are_converted_only_where_yaml_cannot_say_them() -> None:
    outer = Outer.model_validate(
        {
            "count": 5.0,
            "rate": 2,
            "where": "relative/file",
            "at": "07:30",
            "colours": ["red", "red"],
            "steps": ["a", "b"],
            "limits": {"green": 3},
            "inner": {"pin": "GPIO17"},
        }
    )
    assert outer.count == 5 and isinstance(outer.count, int)
    assert outer.rate == 2.0 and isinstance(outer.rate, float)
    assert outer.where == Path("relative/file")
    assert outer.at == datetime.time(7, 30)
    assert outer.colours == frozenset({Colour.RED})
    assert outer.steps == ("a", "b")
    assert outer.limits == {Colour.GREEN: 3}
    assert outer.inner == Inner(pin="GPIO17")


@pytest.mark.parametrize(
    ("data", "where", "message"),
    [
        ({"count": "5"}, "count", "expected a whole number"),
        ({"count": True}, "count", "expected a whole number"),
        ({"count": 2.5}, "count", "expected a whole number"),
        ({"rate": "fast"}, "rate", "expected a number"),
        ({"rate": float("nan")}, "rate", "expected a number"),
        ({"name": 7}, "name", "expected text"),
        ({"inner": {"pin": 17, "on": "yes"}}, "inner.on", "expected true or false"),
        ({"inner": {"pin": 1.5}}, "inner.pin", "expected a whole number or text"),
        ({"where": "a\0b"}, "where", "expected a path"),
        ({"at": "noon"}, "at", "expected a time of day, HH:MM"),
        ({"at": "0730"}, "at", "expected a time of day, HH:MM"),
        ({"at": "25:00"}, "at", "expected a time of day, HH:MM"),
        ({"mode": "medium"}, "mode", "expected one of 'fast', 'slow'"),
        ({"colours": ["red", "blue"]}, "colours.1", "expected one of 'red', 'green'"),
        ({"colours": "red"}, "colours", "expected a list"),
        ({"limits": {"blue": 1}}, "limits.blue", "expected one of 'red', 'green'"),
        ({"limits": ["red"]}, "limits", "expected a mapping"),
        ({"inner": 5}, "inner", "expected a section (keys and values)"),
        ({"inner": {}}, "inner.pin", "required key is missing"),
        ({"count": 0}, "count", "should be >= 1"),
        ({"count": 11}, "count", "should be <= 10"),
        ({"rate": 0}, "rate", "should be > 0"),
        ({"name": ""}, "name", "should have at least 1 characters"),
        ({"name": "A1"}, "name", "should match ^[a-z]+$"),
        ({"name": "ab\n"}, "name", "should match ^[a-z]+$"),  # the whole text, no line end
        ({"steps": ["a", "b", "c"]}, "steps", "should have at most 2 items"),
        ({"colour": "red"}, "colour", "unknown key"),
        ({"inner": {"pin": 1, "pins": 2}}, "inner.pins", "unknown key"),
    ],
)
def test_what_is_refused_and_where_the_problem_is(data: dict, where: str, message: str) -> None:
    assert problems(data) == [(where, message)]


def test_every_problem_is_found_in_one_pass_fields_first_then_unknown_keys() -> None:
    found = problems({"zzz": 1, "count": 0, "inner": {"pin": None}, "mode": "x"})
    assert [where for where, _ in found] == ["count", "mode", "inner.pin", "zzz"]


def test_a_problem_is_a_config_error_and_a_value_error() -> None:
    with pytest.raises(ValidationError) as refused:
        Outer(count=0)
    assert isinstance(refused.value, GateError) and isinstance(refused.value, ValueError)
    assert "count: should be >= 1" in str(refused.value)


class Checked(Section):
    low: int = Field(default=0, description="Low.")
    high: int = Field(default=10, description="High.")

    @field_validator("high")
    @classmethod
    def _above_low(cls, value: int, earlier: Mapping[str, Any]) -> int:
        if value < earlier.get("low", value):
            raise ValueError(f"must be >= low ({earlier['low']})")
        return value

    @model_validator(mode="after")
    def _not_equal(self) -> "Checked":
        if self.low == self.high:
            raise ValueError("low and high must differ")
        return self


def test_field_checks_see_the_converted_value_and_the_earlier_fields() -> None:
    assert problems({"low": 5, "high": 3}, Checked) == [("high", "must be >= low (5)")]


def test_a_section_check_runs_once_its_fields_are_valid_and_is_placed_at_the_section() -> None:
    assert problems({"low": 4, "high": 4}, Checked) == [("", "low and high must differ")]
    assert problems({"low": "x", "high": "x"}, Checked) == [
        ("low", "expected a whole number"),
        ("high", "expected a whole number"),
    ]


def test_a_section_is_frozen_compares_by_value_and_copies_with_changes() -> None:
    inner = Inner(pin=3)
    with pytest.raises(AttributeError, match="frozen"):
        inner.pin = 4  # type: ignore[misc]
    assert inner == Inner(pin=3, on=True) and hash(inner) == hash(Inner(pin=3))
    changed = inner.model_copy(update={"on": False})
    assert (changed.pin, changed.on, inner.on) == (3, False, True)
    with pytest.raises(AttributeError, match="no field 'pins'"):
        inner.model_copy(update={"pins": 1})
    assert Outer().inner == Inner(pin=17, on=True)


def test_fields_are_described_for_the_reference_in_declaration_order() -> None:
    assert list(Inner.model_fields) == ["pin", "on"]
    assert Inner.model_fields["pin"].is_required()
    assert Outer.model_fields["inner"].get_default() == Inner(pin=17)
    assert Outer.model_fields["count"].description == "A bounded whole number."


def test_a_section_derived_from_another_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(TypeError, match="derives from Section alone"):

        class Wider(Inner):
            extra: int = Field(default=1, description="Not inherited: refused.")


def test_a_field_check_that_is_not_a_classmethod_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(TypeError, match="must be a classmethod"):

        class Wrong(Section):
            level: int = Field(default=1, description="A level.")

            @field_validator("level")
            def _check(self, value: int) -> int:
                return value
