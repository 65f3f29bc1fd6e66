"""Hook specifications: the whole surface a venue plugin implements."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "tornado_engine"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_venues(register):
    """Register the venue kinds this plugin provides.

    Call ``register(kind, factory)`` once per kind. ``kind`` is the name
    operators write as ``plugin:`` in ``venues.yaml``; ``factory`` is called
    with a :class:`tornado_engine.VenueSettings` for every configured venue of
    that kind and returns a :class:`tornado_engine.Venue`. The hook itself does
    no I/O: venue I/O happens in the adapter's async methods.

    :param register: callable ``register(kind: str, factory: Callable[[VenueSettings], Venue])``
    """
