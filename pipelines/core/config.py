"""Typed pipeline settings: dataclasses with a docstring per field, checked up front.

Every pipeline family has one config dataclass (`pipelines.<family>.config`); the content
pipelines (pdf, web, images) extend `PostStageConfig`, and every run also has
`RunSettings` (task size, shard bounds). A config is built from CLI flags or from a dict
(`from_dict`: a run.json read back by `retry`, a DAG's params, a test), then `validate`d:
every problem of every field, nested ones included, is gathered into ONE `ConfigError`
before anything runs. `to_dict` is what run.json records, with every default filled in, so
a retry runs with exactly the settings of the first attempt.

Stages never receive these objects: `build_stages` hands their DoFns plain, picklable
values (ints, strings, dicts).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, TypeVar

from pipelines.core.shards import DEFAULT_MAX_BYTES, DEFAULT_MAX_COUNT
from pipelines.core.split import DEFAULT_VALIDATION_FRACTION

C = TypeVar("C", bound="Config")


class ConfigError(ValueError):
    """Settings with one or more problems (all listed in the message, one a line)."""

    def __init__(self, problems: list[str], what: str = "settings"):
        self.problems = list(problems)
        super().__init__(f"{len(problems)} problem(s) with the {what}:\n  - "
                         + "\n  - ".join(self.problems))


@dataclass
class Config:
    """Base of every settings dataclass: building from dicts, checking, recording."""

    # Keys older run.json files hold that are no longer settings (dropped when read back).
    LEGACY_KEYS: typing.ClassVar[tuple[str, ...]] = ()

    def problems(self) -> list[str]:
        """Value problems of this config's own fields (types are checked by `check`)."""
        return []

    def start_ahead(self, beam_args: Sequence[str]) -> None:
        """Start now, on other cores, what this pipeline's first stage will need in this
        process (a child process, say), while the driver imports Apache Beam, plans and
        starts the runner; called by `pipelines.core.runner.run_pipeline` before those.
        Only what is harmless where the run then stops or never takes it. Nothing by
        default."""

    def check(self) -> list[str]:
        """Every problem: wrong types, then value problems, nested configs included.

        Value checks see the fields of the wrong type at their defaults, so one bad type
        does not hide the other fields' problems.
        """
        return type_problems(self) + sanitized(self).problems()

    def validate(self: C) -> C:
        """Return self, or raise one `ConfigError` listing every problem."""
        found = self.check()
        if found:
            raise ConfigError(found, f"{type(self).__name__} settings")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (what run.json records)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any] | None) -> C:
        """Build and validate from a dict; unknown keys are problems like any other."""
        problems: list[str] = []
        config = build(cls, dict(data or {}), "", problems)
        problems += config.check()
        if problems:
            raise ConfigError(problems, f"{cls.__name__} settings")
        return config

    @classmethod
    def coerce(cls: type[C], value: "C | Mapping[str, Any] | None") -> C:
        """`value` as a validated `cls`: a dict goes through `from_dict`."""
        if isinstance(value, cls):
            return value.validate()
        return cls.from_dict(value)


def validate_all(*configs: Config) -> None:
    """Check several configs together and raise one `ConfigError` for all of them."""
    problems = [p for config in configs for p in config.check()]
    if problems:
        raise ConfigError(problems)


# -- the settings every run has ------------------------------------------------------------
@dataclass
class RunSettings(Config):
    """How a run is cut into resumable tasks and bounded shards (any pipeline)."""

    task_size: int = 8
    """Inputs per task, the resumable unit of work: a killed run redoes at most the tasks
    in flight."""
    max_bytes: int = DEFAULT_MAX_BYTES
    """A shard is closed before it would grow beyond this many bytes."""
    max_count: int = DEFAULT_MAX_COUNT
    """A shard is closed when it holds this many samples."""
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION
    """Share of source documents held out for validation (the manifest's ``split``
    column, decided per document: `pipelines.core.split`); 0 holds none out."""

    def problems(self) -> list[str]:
        found = [f"{name} must be >= 1 (got {getattr(self, name)})"
                 for name in ("task_size", "max_bytes", "max_count") if getattr(self, name) < 1]
        if not 0 <= self.validation_fraction < 1:
            found.append(f"validation_fraction must be within [0, 1) "
                         f"(got {self.validation_fraction})")
        return found

    @property
    def shard_bounds(self) -> dict[str, int]:
        """The `ShardWriter` bounds, as keyword arguments."""
        return {"max_bytes": self.max_bytes, "max_count": self.max_count}


OCR_POLICIES = ("missing", "always")


@dataclass
class PostStageConfig(Config):
    """The optional stages content pipelines end with: OCR, charts, taxonomy labels.

    As a library default every post stage is off (a pipeline run from code does only its
    own stage); the CLI turns them on unless told otherwise (see `CLI_POST_STAGES`).
    """

    ocr: str | None = None
    """OCR backend for images without a trustworthy text layer (rapidocr, paddleocr,
    tesseract); None skips OCR."""
    ocr_policy: str = "missing"
    """'missing': OCR only where no trustworthy text exists; 'always': also where ground
    truth exists (to measure OCR against it)."""
    charts: bool = False
    """Detect charts and recover their data."""
    label: bool = False
    """Label every sample with a leaf of the use-case taxonomy."""
    label_threshold: float | None = None
    """Confidence below which a sample stays 'unlabeled' (None: the labeler's default)."""

    def problems(self) -> list[str]:
        found = []
        if self.ocr == "none" or self.ocr == "":
            found.append("ocr must be a backend name or None (not a string meaning none)")
        if self.ocr_policy not in OCR_POLICIES:
            found.append(f"ocr_policy must be one of {OCR_POLICIES} (got {self.ocr_policy!r})")
        if self.label_threshold is not None and not 0 <= self.label_threshold <= 1:
            found.append(f"label_threshold must be within 0..1 (got {self.label_threshold})")
        return found


# What the CLI's post-stage flags default to (`--ocr rapidocr`, charts and labels on).
CLI_POST_STAGES = PostStageConfig(ocr="rapidocr", charts=True, label=True)


# -- building from dicts and checking types ------------------------------------------------
def build(cls: type, data: dict[str, Any], prefix: str, problems: list[str]) -> Any:
    """An instance of dataclass `cls` from `data`, nested dataclasses from nested dicts.

    Unknown keys and nested values of the wrong shape are appended to `problems` (with
    their dotted path) rather than raised, so that one error can list them all.
    """
    for key in getattr(cls, "LEGACY_KEYS", ()):
        data.pop(key, None)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        problems.append(f"unknown setting(s) {', '.join(prefix + k for k in unknown)}; "
                        f"known: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name in fields:
        if name not in data:
            continue
        value, kind = data[name], hints.get(name, Any)
        if dataclasses.is_dataclass(kind) and isinstance(kind, type):
            if isinstance(value, Mapping):
                value = build(kind, dict(value), f"{prefix}{name}.", problems)
            elif not isinstance(value, kind):
                problems.append(f"{prefix}{name} must be a mapping (got {value!r})")
                continue
        values[name] = value
    return cls(**values)


def type_problems(config: Any, prefix: str = "") -> list[str]:
    """Fields whose value does not match its annotation (recursing into dataclasses)."""
    found = []
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value, kind = getattr(config, field.name), hints.get(field.name, Any)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            found += type_problems(value, f"{prefix}{field.name}.")
            if isinstance(value, Config):
                found += [f"{prefix}{field.name}.{p}" for p in value.problems()]
        elif not matches(value, kind):
            found.append(f"{prefix}{field.name} must be {describe(kind)} (got {value!r})")
    return found


def sanitized(config: Any) -> Any:
    """A copy of dataclass `config` with every ill-typed field back at its default."""
    hints = typing.get_type_hints(type(config))
    changes = {}
    for field in dataclasses.fields(config):
        if not field.init:
            continue
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes[field.name] = sanitized(value)
        elif not matches(value, hints.get(field.name, Any)):
            if field.default is not dataclasses.MISSING:
                changes[field.name] = field.default
            elif field.default_factory is not dataclasses.MISSING:
                changes[field.name] = field.default_factory()
    return dataclasses.replace(config, **changes) if changes else config


def matches(value: Any, kind: Any) -> bool:
    """Whether `value` fits the annotation `kind` (the shapes settings use)."""
    if kind is Any or kind is object:
        return True
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, k) for k in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin in (list, tuple):
        args = [a for a in typing.get_args(kind) if a is not Ellipsis]
        return isinstance(value, (list, tuple)) and all(
            matches(v, args[0]) for v in value) if args else isinstance(value, (list, tuple))
    if origin is dict or kind is dict:
        return isinstance(value, Mapping)
    if isinstance(kind, type):
        return isinstance(value, kind)
    return True


TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
              type(None): "None", list: "a list", tuple: "a list", dict: "a mapping"}


def describe(kind: Any) -> str:
    """A type annotation in words, for error messages."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(k) for k in typing.get_args(kind))
    if origin is not None:
        return TYPE_NAMES.get(origin, f"a {origin.__name__}")
    return TYPE_NAMES.get(kind, f"a {getattr(kind, '__name__', str(kind))}")
