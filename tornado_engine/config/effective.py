"""``tornado-engine config``: every effective setting, with where its value came from.

An operator asking "why is the fee 0.03?" gets the answer on one line: the
value, and its origin (``default``, ``engine.yaml:12``, or the environment
variable that filled it). Secrets are masked: a password in a URL, and the
whole value of any key whose name says it is a secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tornado_engine.config.env import references
from tornado_engine.config.loader import ENGINE_SECTIONS, resolve_config_dir
from tornado_engine.config.model import ENGINE_FILE, VENUES_FILE, EngineConfig, PluginsConfig, TokenConfig
from tornado_engine.config.settings import setting_fields
from tornado_engine.config.yaml_file import read_yaml_as_written

# Read by ``serve`` over the files' values (the command-line flags override both).
ENVIRONMENT_OVERRIDES = {"server.port": "PORT", "redis.url": "REDIS_URL"}
MASK = "***"
VENUE_KEYS = ("plugin", "enabled", "tokens")  # read by the engine; every other key is the plugin's
ALIGN_AT = 56  # origins line up in a column unless the value is longer
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s]+)(?P<at>@)", re.I)
_SECRET_KEY = re.compile(r"password|passwd|secret|api_?key|private_?key|credential|auth", re.I)


@dataclass(frozen=True)
class Effective:
    key: str
    value: Any
    origin: str


def mask_secrets(key: str, value: Any) -> Any:
    """``value`` fit to print: URL passwords masked, secret-named keys masked whole."""
    if value is None:
        return None
    if _SECRET_KEY.search(key.rpartition(".")[2]):
        return MASK
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['at']}", value)
    if isinstance(value, (list, tuple)):
        return [mask_secrets(key, item) for item in value]
    return value


def _as_written(path: Path) -> Mapping[str, Any]:
    return _mapping(read_yaml_as_written(path) if path.exists() else None)


def _origin(mapping: Mapping[str, Any], key: str, file: str, environ: Mapping[str, str]) -> str | None:
    """Where ``mapping[key]`` came from, or None when the key is not written (a default)."""
    if mapping.get(key) is None:
        return None
    where = f"{file}:{getattr(mapping, 'key_lines', {}).get(key, '?')}"
    used = [name for name in references(mapping[key]) if environ.get(name)]
    return f"environment {', '.join(used)} (via {where})" if used else where


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def effective_settings(
    config: EngineConfig, path: str | os.PathLike | None, environ: Mapping[str, str] = os.environ
) -> Iterator[Effective]:
    """Every engine setting, token and venue key in force, with its origin; nothing masked yet."""
    directory = resolve_config_dir(path)
    engine = _as_written(directory / ENGINE_FILE)
    for name, cls in {**ENGINE_SECTIONS, "plugins": PluginsConfig}.items():
        written = _mapping(engine.get(name))
        for setting in setting_fields(cls):
            key = f"{name}.{setting.name}"
            value = getattr(getattr(config, name), setting.name)
            origin = _origin(written, setting.name, ENGINE_FILE, environ) or "default"
            variable = ENVIRONMENT_OVERRIDES.get(key)
            if variable and environ.get(variable):
                value, origin = environ[variable], f"environment {variable}"
                if key == "server.port" and value.isdigit():
                    value = int(value)
            yield Effective(key, _plain(value), origin)
    venues = _as_written(directory / VENUES_FILE)
    tokens = _mapping(venues.get("tokens"))
    for symbol in config.venues.reference_prices:
        written = _mapping(tokens.get(symbol))
        values: dict[str, Any] = {
            "reference_price": config.venues.reference_prices[symbol],
            "decimals": config.venues.decimals.get(symbol),
        }
        for setting in setting_fields(TokenConfig):
            origin = _origin(written, setting.name, VENUES_FILE, environ) or "default"
            yield Effective(f"tokens.{symbol}.{setting.name}", values[setting.name], origin)
    entries = _mapping(venues.get("venues"))
    for venue in config.venues.venues:
        written = _mapping(entries.get(venue.name))
        key = f"venues.{venue.name}"
        yield Effective(f"{key}.plugin", venue.plugin, _origin(written, "plugin", VENUES_FILE, environ) or "")
        for field, value in (("enabled", venue.enabled), ("tokens", list(venue.tokens))):
            origin = _origin(written, field, VENUES_FILE, environ) or "default"
            yield Effective(f"{key}.{field}", value, origin)
        options = {k: v for k, v in venue.options.as_dict().items() if k not in VENUE_KEYS}
        yield from _written_values(key, options, written, environ)


def _mapping(value: Any) -> Mapping[str, Any]:
    """A mapping as written, or an empty one for anything else (the loader already rejected those)."""
    return value if isinstance(value, Mapping) else {}


def _written_values(
    key: str, values: Mapping[str, Any], written: Mapping[str, Any], environ: Mapping[str, str]
) -> Iterator[Effective]:
    """Values as written (a plugin's options), nested mappings one line per leaf, each at its line."""
    for name, value in values.items():
        inner = written.get(name)
        if isinstance(value, Mapping) and isinstance(inner, Mapping):
            yield from _written_values(f"{key}.{name}", value, inner, environ)
        else:
            origin = _origin(written, name, VENUES_FILE, environ) or VENUES_FILE
            yield Effective(f"{key}.{name}", value, origin)


def render_effective(settings: Iterator[Effective]) -> str:
    """One line a setting: ``key = value   # origin``; secrets masked; other venue options default."""
    rows = [(s.key, _show(mask_secrets(s.key, s.value)), s.origin) for s in settings]
    width = min(max((len(f"{k} = {v}") for k, v, _ in rows), default=0), ALIGN_AT)
    lines = [f"{f'{k} = {v}':<{width}}  # {origin}" for k, v, origin in rows]
    lines.append("# venue options not listed take their plugin's defaults (see config/venues.yaml)")
    return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "~"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)
