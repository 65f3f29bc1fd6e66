"""Reloading ``venues.yaml`` while orders run (SIGHUP).

Venues can be enabled, disabled, re-tuned or added without a restart. The
new file is validated exactly as at start-up; if anything is wrong, the
running venues stay and the log says why. Venues whose configuration did not
change keep their adapter object (and whatever state it holds), and an order
already routed keeps the venue object it chose: the executor looks venues up
through ``engine.venues`` at each stage, so replacing that dict, and the
order rules derived from it (:meth:`Engine.switch_venues`), is the whole
switch. ``engine.yaml`` is read at start-up only.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Any

from tornado_engine.config import ConfigError, EngineConfig, VenueConfig, VenuesConfig, load_config
from tornado_engine.engine import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    error: str | None = None


def _shared(venues: VenuesConfig) -> dict[str, Any]:
    """Everything in venues.yaml besides the venue entries (token prices, decimals ...)."""
    return {
        f.name: getattr(venues, f.name)
        for f in dataclasses.fields(venues)
        if f.name not in ("venues", "file")
    }


def _entry(venue: VenueConfig) -> Any:
    return (venue.plugin, venue.enabled, venue.tokens, repr(venue.options.as_dict()))


def reload_venues(engine: Engine, config_dir: str | os.PathLike | None) -> ReloadResult:
    """Validate and switch to the venues.yaml in ``config_dir``; keep the running ones on any error."""
    old: EngineConfig = engine.config
    try:
        fresh = load_config(config_dir)
        config = old.replace(venues=fresh.venues)
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
        log.error("reload of venues.yaml failed; the running venues stay: %s", exc)
        return ReloadResult(False, error=str(exc))
    previous = dict(engine.venues)
    engine.switch_venues(config, venues)
    result = ReloadResult(
        True,
        added=tuple(n for n in venues if n not in previous),
        removed=tuple(n for n in previous if n not in venues),
        changed=tuple(n for n in venues if n in previous and venues[n] is not previous[n]),
        kept=tuple(n for n in venues if n in previous and venues[n] is previous[n]),
    )
    log.info(
        "venues.yaml reloaded: added %s; removed %s; changed %s; unchanged %s",
        *(
            ", ".join(names) or "none"
            for names in (result.added, result.removed, result.changed, result.kept)
        ),
    )
    return result
