"""The simulator's HTTP/WebSocket server: one venue's routes plus the /_sim control interface.

Control interface (stable; JSON in, JSON out; requests to /_sim/* are not counted in stats;
handlers in control.py, faults/control.py, the venue's package and venues/base.py):

    GET  /_sim/stats          counters: {"requests", "requests_by_path", "errors_by_code",
                              "http_status", "ws_connections", "ws_connections_total",
                              "ws_subscriptions", "subscriptions_by_stream", "ws_messages_sent",
                              "ws_messages_received", "ws_closed_by_server", "orders", "ticks",
                              "since"}. errors_by_code keys are venue codes as strings ("-1021");
                              WebSocket error replies count as "ws:<code>". Binance adds its
                              rate-limit keys (venues/binance/ratelimits.py): "http_429",
                              "http_418" (totals), "weight_used" {ip: REQUEST_WEIGHT used in the
                              current minute}, "raw_requests" {ip: in the current 5 minutes},
                              "sapi_weight_used" {ip}, "max_weight_in_any_minute" {ip: highest
                              weight of accepted (not 429/418) requests in one minute window},
                              "orders_10s" / "orders_1d" {api_key: count in the current window},
                              "bans" {ip: {"until": ms, "retry_after": s, "offences": n}} (active
                              only), "rate_limits_enforced". Per-IP/per-key maps omit zeros.
    POST /_sim/reset_stats    zero the counters (not the current-connection gauges, and not the
                              rate-limit pools or bans: only http_429/418 and the maxima)
    GET  /_sim/info           {"venue", "seed", "markets", "tick", "paused", "clock_offset_ms",
                              "server_time", ...venue facts}
    GET  /_sim/ccxt           ?exchange=<ccxt id> (default: the venue's own; binance also
                              speaks binanceus): how unmodified ccxt / ccxt.pro talk to this
                              simulator -> {"exchange", "speaks": [ids], "urls": {"api": ccxt's
                              complete urls['api'] map for that id, REST and WebSocket, every
                              URL on this simulator at the address the request used}, "options"
                              (constructor options, e.g. spot-only market loading),
                              "config": {"urls", "options"} (pass to ccxt.pro.<id>(...) with
                              "apiKey"/"secret"), "how", "python" (a snippet), "notes" (what
                              differs for this id)}; 400 {"error"} for an id it does not speak.
                              Served by every venue (venues/base.py, data in venues/ccxt.py)
    POST /_sim/clock          {"offset_ms": 20000}: the venue clock runs 20 s ahead of the wall
                              clock (signed requests then look 20 s old) -> {"offset_ms",
                              "server_time"}
    POST /_sim/tick           {"n": 1}: step all prices n times now -> {"tick"}
    POST /_sim/pause          {"paused": true}: stop (or resume) the background price loop
    POST /_sim/price          {"symbol": "BTCUSDT", "price": "65000"}: move the mid and last
                              price (book and streams follow); stops the new last price reaches
                              trigger and resting orders the new book crosses fill (maker, at
                              their price, up to the crossing liquidity), with their user data
                              events -> {"symbol", "price"}
    POST /_sim/orders/fill    {"api_key", "symbol", "order_id" | "client_order_id", "qty"?}:
                              a maker fill of qty (default: all that remains) of an open,
                              working order at its own price, with its events -> {"order_id",
                              "status", "executed_qty"}; 404 unknown key/symbol, 400 otherwise
    POST /_sim/accounts       {"api_key"?, "secret"?, "balances"?: {"USDT": "100000"}} ->
                              {"api_key", "secret", "balances"} (409 if the key exists)
    GET  /_sim/accounts/{key} {"api_key", "balances": {asset: {"free", "locked"}},
                              "open_orders"}

Faults (faults/; unknown fields are refused with 400; GET /_sim/stats counts them under
"faults_injected": {"ws_dropped", "ws_stalled", "ws_frames_delayed", "depth_gaps", "rest_5xx",
"rest_timeouts", "maintenance_rest", "maintenance_ws_refused", "order_timeouts",
"order_rejects", "bad_numbers", "bad_number_messages"}; start-up flags --fault-* and
--clock-offset-ms in config.py). Connection selection, where accepted:
{"fraction"?: 0.5, "streams"?: ["btcusdt@ticker"]} = the connections subscribed to any of the
streams (default: every connection), then that share of them rounded half up (default: all),
picked with a generator seeded by the simulator's seed; no selection = every connection.

    POST /_sim/ws/disconnect  {"code"?: 1001, ...selection}: close the selected WebSockets ->
                              {"closed": n}
    POST /_sim/ws/mute        {"muted"?: true, "seconds"?: 5, ...selection}: a stall (half-open
                              link): keep the sockets open but send nothing, answer no pings,
                              send no server pings. Without a selection every connection is
                              muted, including ones opened later; with one only the selected
                              open ones. "seconds": unmute them by themselves after that long.
                              {"muted": false} unmutes everything -> {"muted", "connections": n
                              muted by this call, "seconds"}
    POST /_sim/ws/delay       {"ms": 200, "jitter_ms"?: 50}: hold every outgoing frame (pongs
                              too) ms +- jitter_ms (uniform, seeded), order per connection kept;
                              {"ms": 0} turns it off -> {"ms", "jitter_ms"}
    POST /_sim/depth/gap      {"symbol": "BTCUSDT", "count"?: 1}: open `count` gaps in the
                              symbol's diff-depth events: a gap withholds one event from every
                              subscriber (its changes still apply to the simulator's book, so a
                              fresh REST snapshot is consistent), so the next delivered event's
                              U is past the previous u + 1; with count > 1 withheld and
                              delivered events alternate (count visible jumps). Only events
                              someone is subscribed to use gaps up; count 0 cancels pending
                              gaps -> {"symbol", "pending"}; 404 for an unknown symbol
    POST /_sim/rest/faults    {"error_rate"?: 0.3, "status"?: 503, "timeout_rate"?: 0.1,
                              "timeout_s"?: 30, "paths"?: ["/api/v3/ticker/24hr"] (exact, or a
                              prefix ending in "*"; default every venue path), "seed"?: n
                              (default the simulator's), "body"?: "json" | "html"}: replaces
                              the REST faults. Each matching request draws once from the seeded
                              generator: a share answers `status` with the venue's body for it
                              (Binance: 503 {"code": -1001, "msg": "Internal error; ..."}, other
                              5xx {"code": -1000, ...}; "html" or by default 502/504: a CDN's
                              HTML error page), a share is held timeout_s with no answer (then
                              504 HTML; released to its handler if the faults change or are
                              cleared). WebSocket upgrades and /_sim are never hit. {} or zero
                              rates turn it off -> the settings + {"active"}; unknown fields 400
    POST /_sim/maintenance    {"on"?: true}: venue maintenance: REST answers the venue's
                              maintenance error (Binance: 503 {"code": 1, "msg": "System is
                              under maintenance."}; /sapi/v1/system/status answers {"status": 1,
                              "msg": "system_maintenance"}), open WebSockets are closed (1001)
                              and upgrades refused (same 503) while on -> {"on", "closed"}
    POST /_sim/orders/timeout_next  {"count"?: 1, "delay_s"?: 30, "mode"?: "delay" | "drop"}:
                              the next `count` order placements (POST /api/v3/order) are
                              accepted and executed (their user data events go out at once)
                              but answered only after delay_s, or never: the connection is
                              dropped ("drop"). Replaces a pending one; count 0 cancels ->
                              {"pending", "delay_s", "mode"}. Faults/clear answers held ones.
    POST /_sim/orders/reject_next   {"code"?: -2010, "msg"?: "Account has insufficient balance
                              for requested action.", "status"?: 400, "count"?: 1}: the next
                              `count` order placements are refused with that venue error and
                              nothing is placed -> {"pending", "code", "msg", "status"}
    POST /_sim/faults/bad_numbers  {"channel": "ticker" | "depth" | "trade" | "rest_ticker",
                              "fields"?: [...], "values"?: ["NaN", "Infinity", "-Infinity",
                              "abc", ""], "count"?: 1, "fraction"?: 0.5, "symbols"?: ["BTCUSDT"]}:
                              the next `count` messages of the channel (stream events of
                              @ticker/@miniTicker/@bookTicker/!ticker@arr, @depth/@depthN,
                              @trade/@aggTrade; REST /api/v3/ticker/24hr, /bookTicker, /price
                              answers) about those symbols (default any) carry a non-number in
                              each of `fields` (ticker and rest_ticker: bid, bid_qty, ask,
                              ask_qty, last, last_qty, open, high, low, volume, quote_volume,
                              change, change_pct, vwap, prev_close; depth: bid_price, bid_qty,
                              ask_price, ask_qty of the side's first level; trade: price, qty;
                              default every field of the channel) that the message has; the
                              values are used in turn, one per message. A "fraction" spoils
                              that seeded share of the messages, `count` of them (default: until
                              cleared). Each channel has one such fault (a new one replaces it;
                              count 0 cancels it); a message none of whose fields occur is not
                              counted. Values must not be finite numbers; everything else in
                              the message stays Binance's format -> {"bad_numbers": {channel:
                              {"channel", "fields", "values", "remaining", "fraction",
                              "symbols", "spoiled"}}}. /_sim/stats counts "bad_numbers" (values
                              replaced) and "bad_number_messages" under "faults_injected".
    GET  /_sim/faults         every fault in force: {"active": [names], "ws_mute": {"all",
                              "connections", "seconds_left"}, "ws_delay": {"ms", "jitter_ms"},
                              "depth_gaps": {symbol: pending}, "rest": {settings as above},
                              "rest_hanging": n requests held now (held order answers too),
                              "maintenance", "clock_offset_ms", "orders": {"timeout_next",
                              "reject_next"}, "bad_numbers": {channel: as above},
                              ...venue faults (binance: "throttle_next": {"pending",
                              "retry_after", "ip"}, "bans": {ip: {"until", "retry_after"}})}.
                              Names: ws_mute, ws_delay, depth_gaps, rest, maintenance,
                              clock_offset, order_timeouts, order_rejects, bad_numbers,
                              throttle_next, bans
    POST /_sim/faults/clear   everything above off: unmute, no delay, no pending gaps, no REST
                              faults (held requests go on to their handlers), maintenance off,
                              clock offset 0, no pending order timeouts / rejects, no bad
                              numbers, pending
                              throttle dropped, bans lifted ->
                              {"cleared": [names that were active], ...GET /_sim/faults}

Rate limits (venues that model them: binance; rules in venues/binance/ratelimits.py):

    GET  /_sim/ratelimits     -> {"enforce", "limits": {"REQUEST_WEIGHT", "RAW_REQUESTS",
                              "ORDERS_10S", "ORDERS_1D"}, "ban_after", "ban_first_seconds",
                              "ban_max_seconds", "rateLimits": [as exchangeInfo reports them]}
    POST /_sim/ratelimits     {"REQUEST_WEIGHT"?: 1200, "RAW_REQUESTS"?: n, "ORDERS_10S"?: 10,
                              "ORDERS_1D"?: n, "enforce"?: true, "ban_after"?: 10,
                              "ban_first_seconds"?: 2, "ban_max_seconds"?: 30, "reset"?: true}:
                              change the limits in force (exchangeInfo follows at once); "reset"
                              clears every pool, ban, offence count, pending throttle and the
                              429/418 totals first -> same shape as GET. Unknown fields -> 400.
    POST /_sim/ban            {"ip": "127.0.0.1", "seconds": 3}: ban the IP now (418 on every
                              request; 0 lifts a ban; not an offence for escalation) ->
                              {"ip", "until" (venue-clock ms), "seconds"}
    POST /_sim/throttle_next  {"n": 1, "retry_after": 2, "ip"?: "10.0.0.1"}: the next n requests
                              (of that IP, or of anyone) answer 429 -1003 with Retry-After: 2,
                              without charging weight; replaces a pending throttle ->
                              {"pending", "retry_after", "ip"}

Kraken (venues/kraken/; each module's docstring has the details):

    GET/POST /_sim/kraken/limits   the decaying REST and per-pair trading counters per key and
                              tier (ratelimit_control.py): {"tiers": {key: "pro"}},
                              {"reset": true}
    POST /_sim/kraken/lockout {"api_key", "seconds"}: EGeneral:Temporary lockout now (0 lifts)
    GET/POST /_sim/kraken/status   {"status": "online" | "maintenance" | "cancel_only" |
                              "post_only"}: SystemStatus and the WebSocket status channel
                              (state.py); /_sim/faults/clear sets it online again

Coinbase (venues/coinbase/):

    GET/POST /_sim/coinbase/limits  private 30/s per key, public 10/s per IP (control.py)
    POST /_sim/coinbase/products/state  a product's state (trading_disabled, cancel_only,
                              limit_only, post_only)
    POST /_sim/coinbase/keys  a new account with a generated CDP key (EC P-256 or Ed25519)
    POST /_sim/coinbase/ws/gap     {"count", "channel"?, ...selection}: skip sequence numbers
    POST /_sim/coinbase/ws/error   {"message"?, ...selection}: an error frame now
    GET /_sim/coinbase/ws, POST /_sim/coinbase/ws/limits  the WebSocket connection and
                              message limits
                              (ws_control.py); `--generate-key [ec|ed25519]` prints a key

Errors: 400 {"error": "..."} for bad control input, 404 for unknown symbols / keys.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web

from exchanges.simulator.config import SimulatorConfig, add_arguments, config_from_args
from exchanges.simulator.control import SimControl
from exchanges.simulator.engine import Engine
from exchanges.simulator.faults import FaultControl, fault_middleware
from exchanges.simulator.venues import VENUES, Venue

log = logging.getLogger(__name__)

ENGINE_KEY = web.AppKey("engine", Engine)
VENUE_KEY = web.AppKey("venue", Venue)
CONFIG_KEY = web.AppKey("config", SimulatorConfig)


@web.middleware
async def _count_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Count every venue request (incl. 404s and WebSocket upgrades) by route and status."""
    if request.path.startswith("/_sim/"):
        return await handler(request)
    stats = request.app[ENGINE_KEY].stats
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else "<unmatched>"
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        stats.count_request(path, exc.status)
        raise
    stats.count_request(path, response.status)
    return response


def build_app(engine: Engine, venue: Venue, config: SimulatorConfig) -> web.Application:
    app = web.Application(
        # the fault middleware sits inside the counter, so injected answers are counted too
        middlewares=[_count_requests, fault_middleware(venue.faults, venue)],
        client_max_size=8 * 1024 * 1024,
    )
    app[ENGINE_KEY] = engine
    app[VENUE_KEY] = venue
    app[CONFIG_KEY] = config
    venue.routes(app)
    venue.sim_routes(app)
    SimControl(engine, venue, config).routes(app)
    FaultControl(engine, venue).routes(app)
    return app


class RunningSimulator:
    """A started simulator: where it listens and how to stop it."""

    def __init__(
        self,
        config: SimulatorConfig,
        engine: Engine,
        venue: Venue,
        runner: web.AppRunner,
        port: int,
        tick_task: asyncio.Task[None],
    ) -> None:
        self.config = config
        self.engine = engine
        self.venue = venue
        self.runner = runner
        self.host = config.host
        self.port = port
        self._tick_task = tick_task

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def close(self) -> None:
        self._tick_task.cancel()
        try:
            await self._tick_task
        except asyncio.CancelledError:
            pass
        await self.venue.shutdown()
        await self.runner.cleanup()


def create(config: SimulatorConfig) -> tuple[Engine, Venue]:
    """Engine (with the configured accounts) and venue, not yet serving."""
    try:
        venue_cls = VENUES[config.venue]
    except KeyError:
        raise ValueError(f"unknown venue {config.venue!r} (known: {sorted(VENUES)})") from None
    engine = Engine(venue_cls.load_markets(config), config.engine_config())
    for api_key, secret in config.accounts:
        engine.create_account(api_key, secret)
    return engine, venue_cls(engine, config)


async def serve(config: SimulatorConfig) -> RunningSimulator:
    """Start serving `config` on the running event loop; returns once the port is bound."""
    engine, venue = create(config)
    app = build_app(engine, venue, config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    port = runner.addresses[0][1]
    tick_task = asyncio.create_task(engine.run(), name="simulator-ticks")
    return RunningSimulator(config, engine, venue, runner, port, tick_task)


async def run_forever(config: SimulatorConfig) -> None:
    """Serve until SIGINT/SIGTERM."""
    server = await serve(config)
    accounts = ", ".join(k for k, _ in config.accounts) or "none (POST /_sim/accounts)"
    print(
        f"{config.venue} simulator on {server.base_url} (ws {server.ws_url}), "
        f"{len(server.engine.markets)} markets, seed {config.seed}, accounts: {accounts}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread / not supported
            pass
    try:
        await stop.wait()
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m exchanges.simulator --venue binance --port 8900 --seed 1 --account k:s`."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m exchanges.simulator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:  # e.g. a fault rate outside 0..1
        parser.error(str(exc))
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run_forever(config))
    return 0
