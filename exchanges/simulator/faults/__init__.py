"""Fault injection: the failures xcon's stream supervisor, circuit breaker and alerts must survive.

What can be injected (control endpoints in server.py's docstring; start-up flags in config.py):

- WebSocket drops: close all connections, a fraction of them, or those subscribed to given
  streams (`ConnSelection`).
- WebSocket stalls: selected (or all) connections stay open but get nothing, not even pongs
  (a half-open link), optionally ending by themselves after some seconds.
- WebSocket delay: every outgoing frame of every connection is held `ms` +- `jitter_ms`
  (order per connection is kept: frames leave one connection's queue in order).
- Depth gaps: a diff-depth event of a symbol is withheld from every subscriber while its
  changes still apply to the simulator's book, so the following event's U jumps past the
  previous u + 1 (the client's book is really missing changes) and a fresh REST snapshot is
  consistent again. Several gaps alternate withheld and delivered events.
- REST 5xx and timeouts at a seeded rate, optionally only on some paths.
- Maintenance: REST answers the venue's maintenance error (the venue's system-status endpoint
  says so), WebSockets are closed and refused.
- Order placement faults: the next n orders are placed and executed but their HTTP answer is
  held for a while or the connection dropped without one (the client cannot know whether its
  order exists), or the next n placements are refused with a given venue error code and text.
- Bad numbers: the next n (or a seeded share of) public stream events or REST ticker answers
  of a channel carry "NaN", "Infinity", "abc", "" ... in chosen numeric fields (numbers.py;
  the venue maps the fields to its wire keys and spoils its own messages).
- Clock offset lives in clock.py; it is reported and cleared here with the rest.

Split of work: state.py holds `Faults`, plain state shared by the server and the venue (the
venue's hot paths read a few attributes of it), and the settings of each fault; control.py is
the HTTP side: `FaultControl` serves the /_sim fault endpoints and owns the timers,
`fault_middleware` applies the REST and maintenance faults. Venue specifics (error bodies,
which connections exist) come through the `FaultHooks` protocol, which `venues.Venue`
implements, so this package imports no venue.

Cost when nothing is active: one attribute test per REST request (the middleware), and per
WebSocket frame one attribute test for the delay and one per-connection flag for the stall;
per rendered stream event and REST ticker answer one emptiness test for the bad numbers.
"""

from __future__ import annotations

from exchanges.simulator.faults.control import (
    FaultControl,
    FaultHooks,
    fault_middleware,
    gateway_page,
)
from exchanges.simulator.faults.numbers import CHANNEL_FIELDS, BadNumberFault, BadNumbers
from exchanges.simulator.faults.state import (
    FAULT_COUNTERS,
    BodyKind,
    ConnSelection,
    Faults,
    OrderReject,
    OrderTimeout,
    OrderTimeoutMode,
    RestFaultSettings,
    WsDelay,
)

__all__ = [
    "CHANNEL_FIELDS",
    "FAULT_COUNTERS",
    "BadNumberFault",
    "BadNumbers",
    "BodyKind",
    "ConnSelection",
    "FaultControl",
    "FaultHooks",
    "Faults",
    "OrderReject",
    "OrderTimeout",
    "OrderTimeoutMode",
    "RestFaultSettings",
    "WsDelay",
    "fault_middleware",
    "gateway_page",
]
