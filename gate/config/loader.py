"""Read the YAML config into typed models; every problem names the file, the key and the line."""

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from gate.config.base import MAX_WHOLE_NUMBER, Problem, Section, ValidationError
from gate.errors import ConfigError
from gate.files import read_bounded
from gate.logtext import printable, shortened

M = TypeVar("M", bound=Section)

MAX_CONFIG_BYTES = 1_048_576
"""A gate's config is a few kilobytes; anything near this is not one (and would be parsed
on every start and reload)."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    file: str
    key: str
    line: int | None
    message: str

    def __str__(self) -> str:
        """One line, escaped and cut as a whole: its key, message and value may all come
        from the file's text."""
        where = f"{self.file}:{self.line}" if self.line else self.file
        return printable(f"{where}: {self.key or '(top level)'}: {self.message}", _LINE_CHARS)


class InvalidConfig(ConfigError):
    """The file parsed but does not describe a valid gate; carries every problem found."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


MAX_CONFIG_VALUES = 100_000
"""A gate's config holds hundreds of values (thousands with long deny lists); aliases can make
a small file stand for billions, each of which would be checked."""

_SHOWN_CHARS = 80  # of a wrong value, in its error: enough to recognise it
_LINE_CHARS = 1000  # of a whole error line: a message naming every allowed key fits
_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_NUMBER_DIGITS = 70  # more than any number under MAX_WHOLE_NUMBER or a float's 17 digits needs


class ConfigYaml(yaml.SafeLoader):
    """YAML as a gate's config is read: safe, with YAML 1.2's numbers rather than PyYAML's 1.1.

    - `1e3` and `5e-1` are numbers (1.1 wants a dot and a signed exponent);
    - `7:00` and `17:30:15` are text, for the fields that read times (1.1 reads them as the
      base-60 numbers 420 and 63015), `2024-01-01` is text (1.1: a date), and `030` is
      thirty (1.1: octal 24; 1.2 writes that `0o30`);
    - whole numbers are at most MAX_WHOLE_NUMBER, and a number of more than 70 characters is
      refused before it is built (PyYAML builds base-60 numbers in quadratic time);
    - the collection tags no config uses (`!!omap`, `!!pairs`, `!!set`, `!!binary`,
      `!!timestamp`) are refused: the value count of the loader cannot see into them;
    - so are merge keys (`<<`): PyYAML builds them before any count, and up to 6.0.3 (Debian
      bookworm has 6.0) with every repeat, so 534 bytes took 75 s and 1.7 GB; 6.0.4 also
      changed which merged mapping wins.
    """

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        for key, _value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                raise _refused(key, "a merge key (<<) is not used in a gate config")
        super().flatten_mapping(node)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(str(node.value).replace("_", "")) > _NUMBER_DIGITS:
            raise _refused(node, f"a number of more than {_NUMBER_DIGITS} characters")
        text = str(self.construct_scalar(node)).replace("_", "")
        prefixed = text.lstrip("+-")[:2].lower() in ("0x", "0o", "0b")
        value = int(text, 0 if prefixed else 10)  # 030 is thirty, as in YAML 1.2, not octal
        if abs(value) > MAX_WHOLE_NUMBER:
            raise _refused(node, f"a whole number larger than {MAX_WHOLE_NUMBER}")
        return value

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        if len(str(node.value).replace("_", "")) > _NUMBER_DIGITS:
            raise _refused(node, f"a number of more than {_NUMBER_DIGITS} characters")
        return super().construct_yaml_float(node)

    def construct_unused(self, node: yaml.Node) -> Any:
        raise _refused(node, f"{node.tag} is not used in a gate config")


def _refused(node: yaml.Node, why: str) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(None, None, why, node.start_mark)


ConfigYaml.yaml_implicit_resolvers = {  # SafeLoader's, but its numbers and dates
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigYaml.add_implicit_resolver(
    _INT,
    re.compile(r"^[-+]?(?:[0-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+)$"),
    list("-+0123456789"),
)
ConfigYaml.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
ConfigYaml.add_constructor(_INT, ConfigYaml.construct_yaml_int)
ConfigYaml.add_constructor(_FLOAT, ConfigYaml.construct_yaml_float)
for _tag in ("omap", "pairs", "set", "binary", "timestamp"):
    ConfigYaml.add_constructor(f"tag:yaml.org,2002:{_tag}", ConfigYaml.construct_unused)


def parse_yaml(text: str, file: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for lines) and its data, or InvalidConfig saying why not."""
    try:
        return yaml.compose(text, Loader=ConfigYaml), yaml.load(text, Loader=ConfigYaml)
    except RecursionError:
        raise InvalidConfig([ConfigProblem(file, "", None, "nested too deeply")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = shortened(getattr(exc, "problem", None) or str(exc), _SHOWN_CHARS)
        raise InvalidConfig([ConfigProblem(file, "", line, f"invalid YAML: {problem}")]) from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        # what PyYAML's constructors raise on an explicit tag they cannot build (`!!bool foo`)
        reason = shortened(str(exc).split(";")[0], _SHOWN_CHARS)  # not Python's advice
        problem = f"invalid YAML: cannot read a value: {type(exc).__name__} {reason}"
        raise InvalidConfig([ConfigProblem(file, "", None, problem)]) from None


def read_config_text(path: Path) -> str:
    """The text of a config file, bounded by MAX_CONFIG_BYTES; ConfigError naming the file."""
    try:
        raw = read_bounded(path, MAX_CONFIG_BYTES)
        if raw is None:
            raise ConfigError(f"{path}: config file too large (more than {MAX_CONFIG_BYTES} bytes)")
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None


def load_model(path: Path, model: type[M], text: str | None = None) -> M:
    """Load `path` (or `text`, as if it were that file's) and validate it as `model`, raising
    ConfigError with every problem found."""
    file = str(path)
    if text is None:
        text = read_config_text(path)
    root, data = parse_yaml(text, file)
    if data is None:
        data = {}
    problems = list(_duplicate_keys(file, root))
    if not isinstance(data, dict):
        problems.append(ConfigProblem(file, "", 1, "expected a mapping of sections at the top"))
        raise InvalidConfig(problems)
    if _values(data, {}) > MAX_CONFIG_VALUES:
        message = f"more than {MAX_CONFIG_VALUES} values once its aliases are expanded"
        raise InvalidConfig([*problems, ConfigProblem(file, "", None, message)])
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        problems.extend(_describe(file, root, model, exc))
    if problems:
        raise InvalidConfig(problems)
    return config


def _values(data: Any, counted: dict[int, int]) -> int:
    """How many values `data` stands for with every alias expanded: a node met again through
    an alias counts again, but is walked once (`counted`), so a billion laughs costs no time;
    a node met inside itself stands for values without end."""
    if not isinstance(data, dict | list):
        return 1
    known = counted.get(id(data))
    if known is None:
        counted[id(data)] = MAX_CONFIG_VALUES + 1  # while it is walked: met again, a cycle
        items = data.values() if isinstance(data, dict) else data
        known = counted[id(data)] = 1 + sum(_values(item, counted) for item in items)
    return known


def _describe(
    file: str, root: yaml.Node | None, model: type[Section], exc: ValidationError
) -> Iterator[ConfigProblem]:
    children = _Children()
    for problem in exc.problems:
        key = problem.where
        node = _node_at(root, problem.loc, children)
        line = node.start_mark.line + 1 if node is not None else None
        yield ConfigProblem(file, key, line, _message(problem, model))


def _message(problem: Problem, model: type[Section]) -> str:
    if problem.kind == "unknown_key":
        allowed = _allowed_keys(model, problem.loc[:-1])
        hint = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return f"unknown key{hint}"
    if problem.kind == "missing":
        return problem.message
    inside_a_list = any(isinstance(part, int) for part in problem.loc)
    if inside_a_list or problem.kind == "not_a_collection":
        return problem.message  # an entry of a list, maybe a person's id in a deny list: unsaid
    got = problem.value
    if not isinstance(got, str | int | float | bool):
        return problem.message
    shown = f"'{shortened(got, _SHOWN_CHARS)}'" if isinstance(got, str) else repr(got)
    return f"{problem.message} (got {shown})"


def _allowed_keys(model: type[Section], loc: tuple[Any, ...]) -> list[str]:
    """The keys a section accepts, found by walking the model along `loc`."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, Section)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = field.annotation
        for arg in getattr(current, "__args__", ()):
            if isinstance(arg, type) and issubclass(arg, Section):
                current = arg
    if isinstance(current, type) and issubclass(current, Section):
        return sorted(current.model_fields)
    return []


class _Children:
    """The children of each mapping node by key, indexed when first asked for: every
    problem's node found in one step per level, however many keys and problems."""

    def __init__(self) -> None:
        self._index: dict[int, dict[str, tuple[yaml.Node, yaml.Node]]] = {}

    def of(self, node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
        index = self._index.get(id(node))
        if index is None:
            index = self._index[id(node)] = {}
            for key_node, value_node in node.value:
                index.setdefault(str(key_node.value), (key_node, value_node))
        return index.get(key)


def _node_at(root: yaml.Node | None, loc: tuple[Any, ...], children: _Children) -> yaml.Node | None:
    """The YAML node a validation error points at, or the deepest existing parent."""
    node = root
    last = len(loc) - 1
    for depth, part in enumerate(loc):
        child = None
        if isinstance(node, yaml.MappingNode):
            pair = children.of(node, str(part))
            if pair is not None:
                child = pair[0] if depth == last else pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if 0 <= part < len(node.value) else None
        if child is None:
            return node
        node = child
    return node


def _duplicate_keys(
    file: str, node: yaml.Node | None, path: str = "", visited: set[int] | None = None
) -> Iterator[ConfigProblem]:
    """YAML silently keeps the last of two equal keys: a typo'd copy would hide the first.

    Each node is visited once: an alias points at a node already walked, and following
    every alias of nested aliases ("billion laughs") would take exponential time.
    """
    visited = set() if visited is None else visited
    if node is None or id(node) in visited:
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = f"{path}.{key_node.value}" if path else str(key_node.value)
            if key_node.value in seen:
                line = key_node.start_mark.line + 1
                yield ConfigProblem(file, key, line, "key appears more than once")
            seen.add(key_node.value)
            yield from _duplicate_keys(file, value_node, key, visited)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(file, item, f"{path}.{index}", visited)
