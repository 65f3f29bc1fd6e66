"""A setting is declared once, on its dataclass field, and read from YAML by that declaration.

``port: int = setting(3000, minimum=0, maximum=65535)`` holds the key's name,
type, default and bounds; :func:`read_settings` reads the whole dataclass from
its section with them. No parser repeats a default, so the dataclass, the
parser and ``config/engine.yaml`` (checked by a test) cannot drift apart.
"""

from __future__ import annotations

import types
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from tornado_engine.config.section import REQUIRED, ConfigSection

T = TypeVar("T")
RULE = "tornado_engine.config.rule"  # the metadata key a setting's Rule is stored under


@dataclass(frozen=True)
class Rule:
    """What a setting's value must be beyond its type (which comes from the annotation)."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()
    any_case: bool = False  # str: matched and stored in upper case


def setting(
    default: Any = MISSING,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    choices: tuple[str, ...] = (),
    any_case: bool = False,
) -> Any:
    """A dataclass field read from YAML; without ``default`` the key is required."""
    rule = Rule(minimum, maximum, exclusive_minimum, choices, any_case)
    if default is MISSING:
        return field(metadata={RULE: rule})
    return field(default=default, metadata={RULE: rule})


def setting_fields(cls: type) -> list[Field]:
    """The fields of ``cls`` declared with :func:`setting`, in declaration (= reading) order."""
    return [f for f in fields(cls) if RULE in f.metadata]


def read_settings(section: ConfigSection, cls: type[T], **given: Any) -> T:
    """``cls`` read from ``section``, then any other key rejected; ``given`` fills non-setting fields."""
    annotations = get_type_hints(cls)
    values = {f.name: _read(section, f, annotations[f.name]) for f in setting_fields(cls)}
    section.finish()
    return cls(**values, **given)


def _read(section: ConfigSection, setting_field: Field, annotation: Any) -> Any:
    key, rule = setting_field.name, setting_field.metadata[RULE]
    default = REQUIRED if setting_field.default is MISSING else setting_field.default
    kind = _without_none(annotation)
    if kind is bool:
        return section.get_bool(key, default)
    if kind in (int, float):
        return section.get_number(
            key,
            default,
            minimum=rule.minimum,
            maximum=rule.maximum,
            integer=kind is int,
            exclusive_minimum=rule.exclusive_minimum,
        )
    if kind is str:
        return section.get_str(key, default, choices=rule.choices, any_case=rule.any_case)
    if kind == tuple[str, ...]:
        return tuple(section.get_str_list(key, default))
    raise TypeError(f"setting {key!r}: no reader for {annotation!r}")


def _without_none(annotation: Any) -> Any:
    """``int`` for ``int | None``: an optional setting is read as its type, with None as default."""
    if get_origin(annotation) in (Union, types.UnionType):
        (kind,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        return kind
    return annotation
