"""Plugin discovery and venue construction: the one place that talks to pluggy.

A plugin is third-party code, so nothing it does at load time may take the
engine down: a plugin that fails to import, raises in ``register_venues``,
registers garbage, or whose factory raises or returns garbage is recorded
(:class:`PluginStatus`, :class:`VenueStatus`), logged, and shown by
``tornado-engine venues``, ``check-config``, ``GET /api/venues``, ``/health``
and ``/metrics``; every other venue keeps working. Discovery refuses
ambiguity rather than guess: two distributions claiming one entry-point name
are both refused, and so is a plugin whose hooks the engine would never call
(a misspelt hook name, a hook without ``@hookimpl``). Only the operator's own
mistakes (a misspelt plugin name, a bad option) stop the start, as a
:class:`ConfigError` that says how to fix them.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from tornado_engine.config import ConfigError, EngineConfig, VenueConfig
from tornado_engine.config.hints import did_you_mean
from tornado_engine.venues import hookspecs
from tornado_engine.venues.api import Venue, VenueSettings

log = logging.getLogger(__name__)

VenueFactory = Callable[[VenueSettings], Venue]

# Plugin states and venue states, as ``venues`` and /api/venues show them.
LOADED, FAILED, DISABLED = "loaded", "failed", "disabled"
RUNNING, UNAVAILABLE = "running", "unavailable"


@dataclass(frozen=True)
class VenueKind:
    kind: str
    factory: VenueFactory
    plugin: str


@dataclass
class PluginStatus:
    """One installed plugin: where it came from, what it provides, what went wrong."""

    name: str
    source: str
    state: str = LOADED
    kinds: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.state = FAILED
        self.errors.append(message)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "state": self.state,
            "kinds": sorted(self.kinds),
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class VenueStatus:
    """One venue of ``venues.yaml``: ``running``, ``disabled`` (by the operator) or ``unavailable``."""

    name: str
    kind: str
    plugin: str | None
    state: str
    tokens: tuple[str, ...]
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "plugin": self.plugin,
            "state": self.state,
            "tokens": list(self.tokens),
            "error": self.error,
        }


def _describe_exception(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def venue_problem(venue: object, name: str) -> str | None:
    """Why ``venue`` cannot be used as venue ``name``, or None when it can."""
    missing = [m for m in ("quote", "build", "swap", "supports") if not callable(getattr(venue, m, None))]
    if missing:
        return f"returned {type(venue).__name__}, not a Venue (no {', '.join(missing)} method)"
    if getattr(venue, "name", None) != name:
        return f"returned a venue named {getattr(venue, 'name', None)!r}, expected {name!r}"
    tokens = getattr(venue, "tokens", None)
    if not isinstance(tokens, (set, frozenset)) or not all(isinstance(t, str) for t in tokens):
        return f"returned a venue whose tokens are {tokens!r}, not a set of token symbols"
    return None


class PluginHost:
    """Loads plugins once, isolating each, and builds venues from config (again on reload)."""

    def __init__(
        self,
        extra_plugins: Iterable[object] = (),
        disabled: Iterable[str] = (),
        pm: pluggy.PluginManager | None = None,
    ) -> None:
        self.plugins: dict[str, PluginStatus] = {}
        self.disabled = tuple(disabled)
        self.venue_states: list[VenueStatus] = []
        self.last_reload: dict[str, Any] | None = None  # set by venues/reload.py
        if pm is None:
            pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
            pm.add_hookspecs(hookspecs)
            for name in self.disabled:
                pm.set_blocked(name)
            self._load_entry_points(pm)
            for plugin in extra_plugins:
                self._register(pm, plugin, None, "registered by the host program")
        self.pm = pm
        self.kinds, self.ambiguous = self._collect_kinds()

    # -- loading ---------------------------------------------------------------------

    def _load_entry_points(self, pm: pluggy.PluginManager) -> None:
        for name, claims in _entry_points().items():
            sources = list(claims)
            if pm.is_blocked(name):
                self.plugins[name] = PluginStatus(name, " and ".join(sources), DISABLED)
                log.info("plugin %s is disabled in engine.yaml (plugins.disabled)", name)
                continue
            if len(claims) > 1:
                status = PluginStatus(name, " and ".join(sources))
                status.fail(
                    f"entry point {name!r} is installed by {' and by '.join(sources)}; neither is loaded: "
                    "uninstall one, or rename one's entry point"
                )
                self.plugins[name] = status
                log.error("plugin %s %s", name, status.errors[-1])
                continue
            ((source, ep),) = claims.items()
            try:
                plugin = ep.load()
            except (Exception, SystemExit) as exc:
                status = PluginStatus(name, source)
                status.fail(f"could not be imported: {_describe_exception(exc)}")
                self.plugins[name] = status
                log.error("plugin %s (%s) failed to load; its venues are unavailable", name, source,
                          exc_info=exc)  # fmt: skip
                continue
            self._register(pm, plugin, name, source)

    def _register(self, pm: pluggy.PluginManager, plugin: object, name: str | None, source: str) -> None:
        try:
            registered = pm.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:  # a malformed hookimpl, a reused name
            label = name or str(getattr(plugin, "__name__", repr(plugin)))
            status = PluginStatus(label, source)
            status.fail(f"was rejected by the plugin manager: {_describe_exception(exc)}")
            self.plugins[label] = status
            log.error("plugin %s (%s) was rejected: %s", label, source, status.errors[-1])
            return
        if registered is not None:
            label = pm.get_name(plugin) or registered
            status = PluginStatus(label, source)
            self.plugins[label] = status
            for problem in _hook_problems(pm, plugin):
                status.fail(problem)
                log.error("plugin %s (%s) %s; it is not loaded", label, source, problem)
            if status.state == FAILED:
                pm.unregister(plugin)

    def _collect_kinds(self) -> tuple[dict[str, VenueKind], dict[str, list[str]]]:
        """Ask every plugin for its kinds; a kind claimed twice is usable by neither."""
        kinds: dict[str, VenueKind] = {}
        claims: dict[str, list[str]] = {}
        for impl in self.pm.hook.register_venues.get_hookimpls():
            plugin_name = self.pm.get_name(impl.plugin) or repr(impl.plugin)
            status = self.plugins.setdefault(plugin_name, PluginStatus(plugin_name, "registered directly"))
            offered: dict[str, VenueKind] = {}

            def register(
                kind: str, factory: VenueFactory, _status: PluginStatus = status, _offered: dict = offered
            ) -> None:
                if not isinstance(kind, str) or not kind:
                    _status.errors.append(f"registered a venue kind that is not a name: {kind!r} (ignored)")
                elif not callable(factory):
                    _status.errors.append(
                        f"registered {kind!r} with a factory that is not callable (ignored)"
                    )
                else:
                    _offered[kind] = VenueKind(kind, factory, _status.name)

            try:
                impl.function(register=register)
            except Exception as exc:
                status.fail(f"register_venues raised {_describe_exception(exc)}")
                log.error("plugin %s: register_venues raised; its venues are unavailable", status.name,
                          exc_info=exc)  # fmt: skip
                continue
            for problem in status.errors:
                log.error("plugin %s %s", status.name, problem)
            for kind, venue_kind in offered.items():
                claims.setdefault(kind, []).append(status.name)
                kinds.setdefault(kind, venue_kind)
                status.kinds.append(kind)
        ambiguous = {kind: names for kind, names in claims.items() if len(names) > 1}
        for kind, names in ambiguous.items():
            del kinds[kind]
            log.error("venue kind %r is registered by %s: disable all but one in plugins.disabled",
                      kind, " and ".join(names))  # fmt: skip
        return kinds, ambiguous

    def check_disabled(self, config: EngineConfig) -> None:
        """A disabled name that matches no installed plugin is a typo: say so."""
        installed = sorted(self.plugins)
        for name in self.disabled:
            if name not in self.plugins:
                hint = did_you_mean(name, installed)
                raise ConfigError(
                    config.plugins.file,
                    "plugins.disabled",
                    f"no installed plugin is named {name!r}{hint} (installed: {', '.join(installed)})",
                    config.plugins.line,
                )

    # -- venues ----------------------------------------------------------------------

    def build_venues(self, config: EngineConfig, keep: Mapping[str, Venue] | None = None) -> dict[str, Venue]:
        """Create every enabled venue; validate the disabled ones too, so a typo shows today.

        ``keep`` holds running venues whose config did not change (a reload):
        they are reused, not rebuilt, so their state survives. Records every
        venue's state in :attr:`venue_states` (only on success). Raises
        :class:`ConfigError` for the operator's mistakes, and when no venue
        at all can run.
        """
        keep = keep or {}
        self.check_disabled(config)
        venues: dict[str, Venue] = {}
        states: list[VenueStatus] = []
        venue: Venue | None
        for venue_config in config.venues.venues:
            if venue_config.name in keep:
                venue = keep[venue_config.name]
                provider = self._provider(venue_config.plugin)
                status = VenueStatus(venue.name, venue_config.plugin, provider, RUNNING, venue_config.tokens)
            else:
                venue, status = self._build_one(config, venue_config)
            states.append(status)
            if venue is not None:
                venues[venue_config.name] = venue
        if not venues:
            reasons = "; ".join(f"{s.name}: {s.error}" for s in states if s.state == UNAVAILABLE)
            raise ConfigError(
                config.venues.file,
                "venues",
                f"no venue is available ({reasons})"
                if reasons
                else "no venue is enabled: enable at least one",
            )
        self.venue_states = states
        return venues

    def _provider(self, kind: str) -> str | None:
        found = self.kinds.get(kind)
        return found.plugin if found else None

    def _build_one(self, config: EngineConfig, venue_config: VenueConfig) -> tuple[Venue | None, VenueStatus]:
        def state(value: str, error: str | None = None, plugin: str | None = None) -> VenueStatus:
            return VenueStatus(
                venue_config.name, venue_config.plugin, plugin, value, venue_config.tokens, error
            )

        kind = self.kinds.get(venue_config.plugin)
        if kind is None:
            error = self._missing_kind(config, venue_config)
            if not venue_config.enabled:
                log.warning("venue %s: %s (venue is disabled, so it is skipped)", venue_config.name, error)
                return None, state(DISABLED, error)
            log.error("venue %s is unavailable: %s", venue_config.name, error)
            return None, state(UNAVAILABLE, error)
        settings = VenueSettings(
            name=venue_config.name,
            kind=venue_config.plugin,
            tokens=frozenset(venue_config.tokens),
            options=venue_config.options,
            reference_prices=config.venues.reference_prices,
            latency_scale=config.simulation.latency_scale,
            seed=config.simulation.seed,
            decimals=config.venues.decimals,
        )
        try:
            venue = kind.factory(settings)
        except ConfigError:
            raise
        except Exception as exc:
            error = f"plugin {kind.plugin} could not create the venue: {_describe_exception(exc)}"
            log.error("venue %s is unavailable: %s", venue_config.name, error, exc_info=exc)
            return None, state(UNAVAILABLE, error, kind.plugin)
        venue_config.options.finish()
        problem = venue_problem(venue, venue_config.name)
        if problem is not None:
            error = f"plugin {kind.plugin} {problem}"
            log.error("venue %s is unavailable: %s", venue_config.name, error)
            return None, state(UNAVAILABLE, error, kind.plugin)
        if not venue_config.enabled:
            return None, state(DISABLED, None, kind.plugin)
        return venue, state(RUNNING, None, kind.plugin)

    def _missing_kind(self, config: EngineConfig, venue_config: VenueConfig) -> str:
        """Why no plugin provides the kind; raises when it is the operator's typo."""
        wanted = venue_config.plugin
        if wanted in self.ambiguous:
            return (
                f"venue kind {wanted!r} is registered by {' and '.join(self.ambiguous[wanted])}; "
                "disable all but one in engine.yaml plugins.disabled"
            )
        hint = did_you_mean(wanted, self.kinds)
        installed = ", ".join(sorted(self.kinds)) or "none"
        message = f"no installed plugin provides {wanted!r}{hint} (installed: {installed})"
        troubled = {n: p for n, p in self.plugins.items() if p.state in (FAILED, DISABLED)}
        if not troubled:
            if venue_config.enabled:
                raise venue_config.options.error("plugin", message)
            return message
        # A plugin that failed or was disabled may be the one that provides it.
        notes = "; ".join(f"{n} is {p.state}" for n, p in sorted(troubled.items()))
        return f"{message}; {notes}"

    def plugin_of(self, venue: str) -> str | None:
        """The plugin behind a configured venue (the watchdog names it)."""
        return next((v.plugin for v in self.venue_states if v.name == venue), None)

    def record_reload(self, outcome: dict[str, Any]) -> None:
        """Remember the last reload's result for /health and /metrics; ``at`` is added (epoch seconds)."""
        self.last_reload = {**outcome, "at": time.time()}

    def report(self) -> dict[str, Any]:
        """Plugins and venues with their states, as ``venues`` and /api/venues show them.

        ``lastReload`` (None until venues.yaml is reloaded) is the last reload's result.
        """
        return {
            "plugins": [p.as_json() for _, p in sorted(self.plugins.items())],
            "venues": [v.as_json() for v in self.venue_states],
            "lastReload": self.last_reload,
        }


def _entry_points() -> dict[str, dict[str, importlib.metadata.EntryPoint]]:
    """Entry-point name -> {"distribution version (target)": entry point} for every distinct claim.

    A distribution seen twice on ``sys.path`` (the same name and target) is one claim.
    """
    found: dict[str, dict[str, importlib.metadata.EntryPoint]] = {}
    seen: set[tuple[str, str, str]] = set()
    for dist in importlib.metadata.distributions():
        dist_name = dist.metadata["Name"]
        for ep in dist.entry_points:
            key = (ep.name, re.sub(r"[-_.]+", "-", dist_name).lower(), ep.value)
            if ep.group != hookspecs.PROJECT_NAME or key in seen:
                continue
            seen.add(key)
            found.setdefault(ep.name, {})[f"{dist_name} {dist.version} ({ep.value})"] = ep
    return found


def _hook_problems(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Hooks a plugin meant to implement that the engine would never call."""
    specs = sorted(name for name, caller in vars(pm.hook).items() if getattr(caller, "spec", None))
    problems = []
    implemented = set()
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.spec is None:
            problems.append(
                f"implements {caller.name!r}, which is not a tornado_engine hook"
                f"{did_you_mean(caller.name, specs)} (hooks: {', '.join(specs)})"
            )
        else:
            implemented.add(caller.name)
    marker = f"{hookspecs.PROJECT_NAME}_impl"
    for attribute in dir(plugin):
        if attribute.startswith("_") or attribute in implemented:
            continue
        function = getattr(plugin, attribute, None)
        if not callable(function) or hasattr(function, marker):
            continue
        if attribute in specs:
            problems.append(
                f"defines {attribute}() without @hookimpl, so the engine would never call it: "
                "decorate it with @tornado_engine.hookimpl"
            )
        elif not implemented and did_you_mean(attribute, specs) and attribute.islower():
            hint = did_you_mean(attribute, specs)
            problems.append(f"defines {attribute}() without @hookimpl and implements no hook{hint}")
    if not implemented and not problems:
        problems.append(
            f"implements no tornado_engine hook ({', '.join(specs)}): "
            "decorate it with @tornado_engine.hookimpl"
        )
    return problems


def plugin_manager(extra_plugins: Iterable[object] = (), blocked: Iterable[str] = ()) -> pluggy.PluginManager:
    """A loaded plugin manager (each plugin isolated); see :class:`PluginHost`."""
    return PluginHost(extra_plugins, blocked).pm


def venue_kinds(pm: pluggy.PluginManager) -> Mapping[str, VenueKind]:
    return PluginHost(pm=pm).kinds


def build_venues(config: EngineConfig, pm: pluggy.PluginManager) -> dict[str, Venue]:
    return PluginHost(pm=pm).build_venues(config)
