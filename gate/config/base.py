"""Config sections: typed, frozen, unknown keys refused, every problem located.

A section is a class of annotated fields, each with a `Field` (default, bounds, and the
description the reference is generated from). `Section.model_validate` checks a whole
tree of sections against plain data (YAML's, JSON's) and raises one `ValidationError`
with every problem found, each with its location (`camera.fps`) and what was expected.

Our own, not a validation library: the config needs a dozen types (str, bool, int, float,
Path, time, literals and enums, optional values, lists, sets, tuples, mappings, nested
sections) and two kinds of checks (per field, per section), and the library we used
(pydantic) cost `gate run` 8.8 MB of its 60 and about 0.06 s of its time to READY
(bench/footprint.py), on a Pi Zero 2 W whose 512 MB the camera shares.

Values are converted only where YAML cannot say them directly: a path or a time of day from
text, a whole number written as 5.0, a list for a set or a tuple. Text is never read as a
number, a number never as text or a truth value.
"""

import datetime
import enum
import math
import re
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import (
    Any,
    ClassVar,
    Literal,
    TypeVar,
    Union,
    dataclass_transform,
    get_args,
    get_type_hints,
)
from typing import get_origin as origin_of

from gate.errors import ConfigError

MAX_WHOLE_NUMBER = 2**63 - 1
"""No config value is larger (SQLite's and most counters' limit); YAML's reader refuses more."""

_REQUIRED: Any = object()
_INVALID: Any = object()
Loc = tuple[str | int, ...]
_F = TypeVar("_F", bound=Callable[..., Any])
_S = TypeVar("_S", bound="Section")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the data: where, what kind (`unknown_key`, `missing`,
    `not_a_collection`, `invalid`), what was expected, and the value found (if any)."""

    loc: Loc
    kind: str
    message: str
    value: Any = None

    @property
    def where(self) -> str:
        """The location as the config names it: `camera.replay.paths.0`."""
        return ".".join(map(str, self.loc))

    def __str__(self) -> str:
        return f"{self.where or '(top level)'}: {self.message}"


class ValidationError(ConfigError):
    """Data that does not describe the section; carries every problem found."""

    def __init__(self, section: str, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        shown = [str(p) for p in problems[:10]]
        more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        super().__init__(f"invalid {section}: " + "; ".join(shown) + more)


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """A field's default (or none: required), bounds and description."""

    annotation: Any = None
    default: Any = _REQUIRED
    default_factory: Callable[[], Any] | None = None
    description: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None

    def is_required(self) -> bool:
        return self.default is _REQUIRED and self.default_factory is None

    def get_default(self) -> Any:
        """The default as written (a subsection's as its keys); validated with the section."""
        if self.default_factory is not None:
            return self.default_factory()
        return self.default


def Field(
    default: Any = _REQUIRED,
    *,
    default_factory: Callable[[], Any] | None = None,
    description: str = "",
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
) -> Any:
    """A field: `port: int | None = Field(None, ge=1, le=65535, description="...")`."""
    return FieldInfo(
        None, default, default_factory, description, ge, gt, le, min_length, max_length, pattern
    )


def field_validator(*names: str) -> Callable[[_F], _F]:
    """Mark a classmethod `(cls, value) -> value` as a check of these fields' converted values;
    ValueError says what is wrong. It may take a third argument: the valid fields declared
    before this one, by name."""

    def mark(method: _F) -> _F:
        function = method.__func__ if isinstance(method, classmethod) else method
        function.__validates__ = names  # type: ignore[attr-defined]
        return method

    return mark


def model_validator(*, mode: Literal["after"]) -> Callable[[_F], _F]:
    """Mark a method `(self) -> self` as a check of the whole section, once its fields are
    valid (`after`, the only mode); ValueError says what is wrong."""

    def mark(method: _F) -> _F:
        method.__validates_section__ = True  # type: ignore[attr-defined]
        return method

    return mark


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(Field,))
class Section:
    """A config section. Every field carries a description: the reference is generated from it."""

    model_fields: ClassVar[dict[str, FieldInfo]] = {}
    _field_checks: ClassVar[dict[str, list[tuple[str, bool]]]] = {}
    """Per field: its checks, each with whether it takes the earlier fields."""
    _section_checks: ClassVar[list[str]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__bases__ != (Section,):  # no section needs another's fields, so none has them
            raise TypeError(f"{cls.__name__}: a section derives from Section alone")
        fields: dict[str, FieldInfo] = {}
        for name, annotation in get_type_hints(cls).items():
            if origin_of(annotation) is ClassVar or name.startswith("_"):
                continue
            declared = cls.__dict__.get(name, _REQUIRED)
            info = declared if isinstance(declared, FieldInfo) else FieldInfo(default=declared)
            fields[name] = replace(info, annotation=annotation)
        cls.model_fields = fields
        cls._field_checks = {name: [] for name in fields}
        cls._section_checks = []
        for attribute, method in vars(cls).items():
            cls._register_check(attribute, method)
        for name in fields:  # the class attribute is the declaration, not a value
            if name in cls.__dict__:
                delattr(cls, name)

    @classmethod
    def _register_check(cls, attribute: str, method: Any) -> None:
        function = method.__func__ if isinstance(method, classmethod) else method
        names = getattr(function, "__validates__", ())
        if names and not isinstance(method, classmethod):
            raise TypeError(f"{cls.__name__}.{attribute}: a field check must be a classmethod")
        for name in names:
            if name not in cls._field_checks:
                raise TypeError(f"{cls.__name__}.{attribute}: checks an unknown field {name!r}")
            cls._field_checks[name].append((attribute, function.__code__.co_argcount == 3))
        if getattr(function, "__validates_section__", False):
            cls._section_checks.append(attribute)

    def __init__(self, **data: Any) -> None:
        valid = type(self).model_validate(data)
        for name in self.model_fields:
            object.__setattr__(self, name, getattr(valid, name))

    @classmethod
    def model_validate(cls: type[_S], data: Any) -> _S:
        """The section described by `data`, or ValidationError with every problem."""
        problems: list[Problem] = []
        section = cls._build(data, (), problems)
        if problems:
            raise ValidationError(cls.__name__, problems)
        return section

    @classmethod
    def _build(cls: type[_S], data: Any, loc: Loc, problems: list[Problem]) -> _S:
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            problems.append(Problem(loc, "invalid", "expected a section (keys and values)", data))
            return _INVALID
        found = len(problems)
        values: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            where = (*loc, name)
            if name in data:
                raw = data[name]
            elif info.is_required():
                problems.append(Problem(where, "missing", "required key is missing"))
                continue
            else:
                raw = info.get_default()
            values[name] = cls._field(name, info, raw, where, problems, values)
        for key in data:
            if key not in cls.model_fields:
                problems.append(Problem((*loc, _loc_part(key)), "unknown_key", "unknown key"))
        if len(problems) > found:
            return _INVALID
        section = object.__new__(cls)
        for name, value in values.items():
            object.__setattr__(section, name, value)
        for check in cls._section_checks:
            try:
                getattr(section, check)()
            except ValueError as exc:
                problems.append(Problem(loc, "invalid", str(exc)))
                return _INVALID
        return section

    @classmethod
    def _field(
        cls,
        name: str,
        info: FieldInfo,
        raw: Any,
        loc: Loc,
        problems: list[Problem],
        earlier: Mapping[str, Any],
    ) -> Any:
        try:
            found = len(problems)
            value = _convert(info.annotation, raw, loc, problems)
            if len(problems) > found:
                return _INVALID
            message = _bounds(info, value)
            if message is not None:
                problems.append(Problem(loc, "invalid", message, raw))
                return _INVALID
            for check, takes_earlier in cls._field_checks[name]:
                if takes_earlier:
                    valid = {k: v for k, v in earlier.items() if v is not _INVALID}
                    value = getattr(cls, check)(value, valid)
                else:
                    value = getattr(cls, check)(value)
        except ValueError as exc:
            problems.append(Problem(loc, "invalid", str(exc), raw))
            return _INVALID
        return value

    def model_copy(self: _S, *, update: Mapping[str, Any] | None = None) -> _S:
        """A copy with some fields replaced (as given: not validated again)."""
        copy = object.__new__(type(self))
        for name in self.model_fields:
            object.__setattr__(copy, name, getattr(self, name))
        for name, value in (update or {}).items():
            if name not in self.model_fields:
                raise AttributeError(f"{type(self).__name__} has no field {name!r}")
            object.__setattr__(copy, name, value)
        return copy

    def _items(self) -> Iterator[tuple[str, Any]]:
        for name in self.model_fields:
            yield name, getattr(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: {name} cannot be set")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: {name} cannot be deleted")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(a == b for (_, a), (_, b) in zip(self._items(), other._items(), strict=True))

    def __hash__(self) -> int:
        return hash((type(self), *(value for _, value in self._items())))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._items())
        return f"{type(self).__name__}({fields})"


def _loc_part(key: Any) -> str | int:
    return key if isinstance(key, str | int) and not isinstance(key, bool) else repr(key)


def _bounds(info: FieldInfo, value: Any) -> str | None:
    """What a converted value breaks of its field's bounds, or None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if info.ge is not None and not value >= info.ge:
            return f"should be >= {_number(info.ge)}"
        if info.gt is not None and not value > info.gt:
            return f"should be > {_number(info.gt)}"
        if info.le is not None and not value <= info.le:
            return f"should be <= {_number(info.le)}"
    if isinstance(value, str | list | tuple | frozenset | dict):
        if info.min_length is not None and len(value) < info.min_length:
            return f"should have at least {info.min_length} {_units(value)}"
        if info.max_length is not None and len(value) > info.max_length:
            return f"should have at most {info.max_length} {_units(value)}"
    pattern = info.pattern
    if pattern is not None and isinstance(value, str) and not re.fullmatch(pattern, value):
        return f"should match {pattern}"
    return None


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _units(value: object) -> str:
    return "characters" if isinstance(value, str) else "items"


def _convert(annotation: Any, value: Any, loc: Loc, problems: list[Problem]) -> Any:
    """`value` as `annotation` says, or _INVALID with the problem added."""
    origin, args = origin_of(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return _union(args, value, loc, problems)
    if origin is Literal:
        if any(value == choice and type(value) is type(choice) for choice in args):
            return value
        return _invalid(loc, problems, f"expected one of {_choices(args)}", value)
    if origin in (list, tuple, frozenset):
        return _collection(origin, args[0], value, loc, problems)
    if origin is dict:
        return _mapping(args, value, loc, problems)
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return annotation._build(value, loc, problems)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        if isinstance(value, annotation):
            return value
        if isinstance(value, str):  # only text is looked up: the enum's error prints the value
            try:
                return annotation(value)
            except ValueError:
                pass
        choices = _choices([member.value for member in annotation])
        return _invalid(loc, problems, f"expected one of {choices}", value)
    convert = _SCALARS.get(annotation)
    if convert is None:
        raise TypeError(f"a config field of type {annotation!r} is not supported")
    converted = convert(value)
    if converted is _INVALID:
        return _invalid(loc, problems, f"expected {_EXPECTED[annotation]}", value)
    return converted


def _invalid(loc: Loc, problems: list[Problem], message: str, value: Any) -> Any:
    problems.append(Problem(loc, "invalid", message, value))
    return _INVALID


def _choices(values: Any) -> str:
    return ", ".join(repr(v) for v in values)


def _union(args: tuple[Any, ...], value: Any, loc: Loc, problems: list[Problem]) -> Any:
    if value is None and type(None) in args:
        return None
    arms = [arm for arm in args if arm is not type(None)]
    if len(arms) == 1:
        return _convert(arms[0], value, loc, problems)
    for arm in arms:
        attempt: list[Problem] = []
        converted = _convert(arm, value, loc, attempt)
        if not attempt:
            return converted
    names = " or ".join(_EXPECTED.get(arm, getattr(arm, "__name__", str(arm))) for arm in arms)
    return _invalid(loc, problems, f"expected {names}", value)


def _collection(kind: type, item: Any, value: Any, loc: Loc, problems: list[Problem]) -> Any:
    if not isinstance(value, list | tuple | set | frozenset):
        problems.append(Problem(loc, "not_a_collection", "expected a list", value))
        return _INVALID
    found = len(problems)
    items = [_convert(item, v, (*loc, i), problems) for i, v in enumerate(value)]
    if len(problems) > found:
        return _INVALID
    return kind(items)


def _mapping(args: tuple[Any, ...], value: Any, loc: Loc, problems: list[Problem]) -> Any:
    if not isinstance(value, Mapping):
        problems.append(Problem(loc, "not_a_collection", "expected a mapping", value))
        return _INVALID
    key_type, value_type = args
    found = len(problems)
    converted = {}
    for key, item in value.items():
        where = (*loc, _loc_part(key))
        converted[_convert(key_type, key, where, problems)] = _convert(
            value_type, item, where, problems
        )
    return _INVALID if len(problems) > found else converted


def _to_int(value: Any) -> Any:
    """A whole number of at most 63 bits (as the YAML reader bounds them), also from 5.0."""
    if isinstance(value, bool):
        return _INVALID
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and abs(value) <= MAX_WHOLE_NUMBER:
        return value
    return _INVALID


def _to_float(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _INVALID
    try:
        number = float(value)
    except OverflowError:  # a whole number of hundreds of digits
        return _INVALID
    return _INVALID if math.isnan(number) else number


_TIME = re.compile(r"\d\d?:\d\d(:\d\d)?([+-]\d\d:\d\d|Z)?")


def _to_time(value: Any) -> Any:
    """H:MM, HH:MM or HH:MM:SS (an offset is read, for a section check to refuse it)."""
    if isinstance(value, datetime.time):
        return value
    if isinstance(value, str) and _TIME.fullmatch(value):
        hours_digits = value.index(":")
        try:
            return datetime.time.fromisoformat(value if hours_digits == 2 else f"0{value}")
        except ValueError:  # 25:00
            return _INVALID
    return _INVALID


def _to_path(value: Any) -> Any:
    """A path from text; a NUL, which no file name can hold, is refused here, not at use."""
    return Path(value) if isinstance(value, str) and "\0" not in value else _INVALID


_SCALARS: dict[Any, Callable[[Any], Any]] = {
    bool: lambda v: v if isinstance(v, bool) else _INVALID,
    int: _to_int,
    float: _to_float,
    str: lambda v: v if isinstance(v, str) else _INVALID,
    Path: lambda v: v if isinstance(v, Path) else _to_path(v),
    datetime.time: _to_time,
}
_EXPECTED: dict[Any, str] = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "text",
    Path: "a path",
    datetime.time: "a time of day, HH:MM",
}
