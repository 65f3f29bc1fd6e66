"""Rate limits and quotas on order intake, shared by every API process through Redis.

``rate`` keeps one GCRA state per client (one key, Redis' own clock), so a
client gets its rate with a burst whichever process it reaches; ``quotas``
counts a client's orders in flight and orders waiting for their socket from
the truth (the orders themselves), so nothing leaks; ``intake`` decides, for
one order, which limit (if any) refuses it and for how long.
"""

from tornado_engine.limits.intake import IntakeLimits, LimitPolicy, Refusal

__all__ = ["IntakeLimits", "LimitPolicy", "Refusal"]
