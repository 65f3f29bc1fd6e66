"""Plugin discovery and venue construction: the one place that talks to pluggy."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pluggy

from tornado_engine import hookspecs
from tornado_engine.config import ConfigError, EngineConfig
from tornado_engine.venue import Venue, VenueSettings

log = logging.getLogger(__name__)

VenueFactory = Callable[[VenueSettings], Venue]


@dataclass(frozen=True)
class VenueKind:
    kind: str
    factory: VenueFactory
    plugin: str


def plugin_manager(extra_plugins: Iterable[object] = (), blocked: Iterable[str] = ()) -> pluggy.PluginManager:
    """Load installed plugins from the ``tornado_engine`` entry-point group.

    ``blocked`` names entry points the operator disabled; ``extra_plugins`` are
    registered directly (tests use them for misbehaving venues).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
    for plugin in extra_plugins:
        pm.register(plugin)
    return pm


def venue_kinds(pm: pluggy.PluginManager) -> dict[str, VenueKind]:
    """Ask every plugin for its venue kinds; two plugins claiming one kind is an error."""
    kinds: dict[str, VenueKind] = {}
    for impl in pm.hook.register_venues.get_hookimpls():
        plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)

        def register(kind: str, factory: VenueFactory, _plugin: str = plugin_name) -> None:
            if not isinstance(kind, str) or not kind:
                raise TypeError(f"plugin {_plugin} registered a venue kind that is not a name: {kind!r}")
            if not callable(factory):
                raise TypeError(f"plugin {_plugin} registered {kind!r} with a factory that is not callable")
            if kind in kinds:
                raise ValueError(
                    f"venue kind {kind!r} is registered by both {kinds[kind].plugin} and {_plugin}"
                )
            kinds[kind] = VenueKind(kind, factory, _plugin)

        impl.function(register=register)
    return kinds


def build_venues(config: EngineConfig, pm: pluggy.PluginManager) -> dict[str, Venue]:
    """Create every enabled venue; validate the disabled ones too, so a typo shows today."""
    kinds = venue_kinds(pm)
    file = config.venues.file
    venues: dict[str, Venue] = {}
    for venue_config in config.venues.venues:
        kind = kinds.get(venue_config.plugin)
        if kind is None:
            hint = difflib.get_close_matches(venue_config.plugin, list(kinds), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            installed = ", ".join(sorted(kinds)) or "none"
            error = venue_config.options.error(
                "plugin",
                f"no installed plugin provides {venue_config.plugin!r}{extra} (installed: {installed})",
            )
            if venue_config.enabled:
                raise error
            log.warning("%s (venue is disabled, so it is skipped)", error)
            continue
        settings = VenueSettings(
            name=venue_config.name,
            kind=venue_config.plugin,
            tokens=frozenset(venue_config.tokens),
            options=venue_config.options,
            reference_prices=config.venues.reference_prices,
            latency_scale=config.simulation.latency_scale,
            seed=config.simulation.seed,
        )
        try:
            venue = kind.factory(settings)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(
                file,
                f"venues.{venue_config.name}",
                f"plugin {kind.plugin} could not create the venue: {type(exc).__name__}: {exc}",
                venue_config.options.line_of("plugin"),
            ) from exc
        venue_config.options.finish()
        if venue_config.enabled:
            venues[venue_config.name] = venue
    if not venues:
        raise ConfigError(file, "venues", "no venue is enabled: enable at least one")
    return venues
