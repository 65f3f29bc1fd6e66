"""Reloading ``venues.yaml`` while orders run (SIGHUP).

Venues can be enabled, disabled, re-tuned or added without a restart. The
new file is validated exactly as at start-up; if anything is wrong, the
running venues stay and the log says why. Venues whose configuration did not
change keep their adapter object (and whatever state it holds), and an order
already routed keeps the venue object it chose: the executor looks venues up
through ``engine.venues`` at each stage, so replacing that dict, and the
order rules derived from it (:meth:`Engine.switch_venues`), is the whole
switch. From ``engine.yaml`` a reload applies the order limits
(:mod:`tornado_engine.config.changes`), fails naming engine.yaml when it is
broken, and logs every other setting that changed as needing a restart.
Plugins are loaded at start-up only: a venue whose plugin was installed since
asks for a restart.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import logging
import os
from dataclasses import dataclass
from typing import Any

from tornado_engine.config import (
    ENGINE_FILE,
    ConfigError,
    EngineConfig,
    VenueConfig,
    VenuesConfig,
    load_config,
)
from tornado_engine.config.changes import engine_changes
from tornado_engine.engine import Engine
from tornado_engine.venues.hookspecs import PROJECT_NAME

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    error: str | None = None
    applied: tuple[str, ...] = ()  # engine.yaml settings switched at run time (order limits)
    restart_needed: tuple[str, ...] = ()  # engine.yaml settings that changed; they apply after a restart

    def as_json(self) -> dict[str, Any]:
        """As /health shows it (``lastReload``)."""
        return {
            "ok": self.ok,
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": list(self.changed),
            "kept": list(self.kept),
            "applied": list(self.applied),
            "restartNeeded": list(self.restart_needed),
            "error": self.error,
        }


def _shared(venues: VenuesConfig) -> dict[str, Any]:
    """Everything in venues.yaml besides the venue entries (token prices, decimals ...)."""
    return {
        f.name: getattr(venues, f.name)
        for f in dataclasses.fields(venues)
        if f.name not in ("venues", "file")
    }


def _entry(venue: VenueConfig) -> Any:
    return (venue.plugin, venue.enabled, venue.tokens, repr(venue.options.as_dict()))


def plugins_installed_since_start(engine: Engine) -> list[str]:
    """Plugin entry points on disk now that the engine did not load at start-up."""
    importlib.invalidate_caches()
    on_disk = {ep.name for ep in importlib.metadata.entry_points(group=PROJECT_NAME)}
    return sorted(on_disk - set(engine.plugins.plugins))


def _missing_plugin_error(engine: Engine, fresh: EngineConfig) -> ConfigError | None:
    """A venue kind nothing loaded provides, with plugins installed since start: say restart."""
    new = plugins_installed_since_start(engine)
    for venue in fresh.venues.venues:
        if venue.enabled and venue.plugin not in engine.plugins.kinds and new:
            return venue.options.error(
                "plugin",
                f"no loaded plugin provides {venue.plugin!r}; plugins installed after start-up "
                f"({', '.join(new)}) are not loaded: restart to load newly installed plugins",
            )
    return None


def reload_venues(engine: Engine, config_dir: str | os.PathLike | None) -> ReloadResult:
    """Validate and switch to the venues.yaml in ``config_dir``; keep the running ones on any error."""
    old: EngineConfig = engine.config
    try:
        fresh = load_config(config_dir)
        missing_plugin = _missing_plugin_error(engine, fresh)
        if missing_plugin is not None:
            raise missing_plugin
        changes = engine_changes(old, fresh)
        config = changes.config.replace(venues=fresh.venues)
        same_shared = _shared(old.venues) == _shared(fresh.venues)
        before = {v.name: v for v in old.venues.venues}
        keep = {
            v.name: engine.venues[v.name]
            for v in fresh.venues.venues
            if same_shared
            and v.name in before
            and v.name in engine.venues
            and _entry(before[v.name]) == _entry(v)
        }
        venues = engine.plugins.build_venues(config, keep=keep)
    except ConfigError as exc:
        if os.path.basename(exc.file) == ENGINE_FILE:
            log.error("reload failed: engine.yaml is invalid; the running configuration stays: %s", exc)
        else:
            log.error("reload of venues.yaml failed; the running venues stay: %s", exc)
        result = ReloadResult(False, error=str(exc))
        engine.plugins.record_reload(result.as_json())
        return result
    previous = dict(engine.venues)
    engine.switch_venues(config, venues)
    result = ReloadResult(
        True,
        added=tuple(n for n in venues if n not in previous),
        removed=tuple(n for n in previous if n not in venues),
        changed=tuple(n for n in venues if n in previous and venues[n] is not previous[n]),
        kept=tuple(n for n in venues if n in previous and venues[n] is previous[n]),
        applied=changes.applied,
        restart_needed=changes.restart_needed,
    )
    engine.plugins.record_reload(result.as_json())
    log.info(
        "venues.yaml reloaded: added %s; removed %s; changed %s; unchanged %s",
        *(
            ", ".join(names) or "none"
            for names in (result.added, result.removed, result.changed, result.kept)
        ),
    )
    if changes.applied:
        log.info("engine.yaml reloaded: applied %s", ", ".join(changes.applied))
    if changes.restart_needed:
        log.warning(
            "engine.yaml changed; a reload applies only the order limits: restart to apply %s",
            ", ".join(changes.restart_needed),
        )
    return result
