"""SimulatorConfig: everything needed to start one simulated venue, plus its command line."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from exchanges.simulator.engine import EngineConfig
from exchanges.simulator.faults import RestFaultSettings


@dataclass
class SimulatorConfig:
    """Configuration of one simulator process/server.

    Accounts are (api_key, secret) pairs created at start with the default balances; more can be
    added at run time with POST /_sim/accounts.

    Market data: each venue ships its market list in `exchanges/simulator/data/`. `markets_file`
    overrides it with a file in the same format; `fixtures_dir` (default: env
    XCON_FIXTURES_DIR) points at a fixtures tree holding `markets/<venue>.json`.
    """

    venue: str = "binance"
    host: str = "127.0.0.1"
    #: 0 = pick a free port
    port: int = 0
    seed: int = 1
    accounts: list[tuple[str, str]] = field(default_factory=list)
    tick_interval: float = 0.25
    #: spread each tick's market updates over this many slices of the interval
    tick_slices: int = 1
    synthetic_markets: int = 0
    #: seconds between server pings on each WebSocket (Binance: 20)
    ws_ping_interval: float = 20.0
    #: close a WebSocket that sent no pong for this long (Binance: 60)
    ws_pong_timeout: float = 60.0
    #: frames queued per WebSocket before the server drops it as a slow consumer
    ws_send_queue: int = 10_000
    #: messages a market-stream connection may send per second (text, ping and pong frames;
    #: Binance: 5, and a connection over it is disconnected); 0: not enforced
    ws_incoming_per_s: int = 5
    markets_file: Path | None = None
    fixtures_dir: Path | None = None
    #: refuse requests past the venue's rate limits like the venue does (429, then 418 bans);
    #: off, everything is still counted and reported in headers and /_sim/stats
    enforce_rate_limits: bool = True
    #: Binance REQUEST_WEIGHT per client IP per minute
    rate_limit_request_weight: int = 6000
    #: Binance RAW_REQUESTS per client IP per 5 minutes
    rate_limit_raw_requests: int = 300_000
    #: Binance ORDERS per API key per 10 seconds / per day
    rate_limit_orders_10s: int = 50
    rate_limit_orders_1d: int = 160_000
    #: an IP refused with 429 more than this many times in one minute window gets banned (418)
    ban_after_429s: int = 10
    #: first automatic ban; each further one of the same IP doubles, up to ban_max_seconds
    #: (Binance: 2 minutes to 3 days; tests use a few seconds)
    ban_first_seconds: float = 120.0
    ban_max_seconds: float = 259_200.0
    volatility: float = 0.0002
    book_depth: int = 100
    fee_rate: Decimal = Decimal("0.001")
    default_balances: dict[str, Decimal] | None = None
    #: the venue clock runs this far ahead of the wall clock (POST /_sim/clock changes it)
    clock_offset_ms: int = 0
    # Faults in force from the start (faults/; the /_sim controls change them later)
    rest_faults: RestFaultSettings = field(default_factory=RestFaultSettings)
    #: hold every outgoing WebSocket frame this long (+- jitter)
    ws_delay_ms: int = 0
    ws_delay_jitter_ms: int = 0
    #: start in maintenance: REST refused with the venue's maintenance error, WebSockets refused
    maintenance: bool = False

    def __post_init__(self) -> None:
        # accept ["KEY:SECRET", ...] as well as [("KEY", "SECRET"), ...]
        self.accounts = [
            parse_account(a) if isinstance(a, str) else (str(a[0]), str(a[1]))
            for a in self.accounts
        ]
        if self.fixtures_dir is None and os.environ.get("XCON_FIXTURES_DIR"):
            self.fixtures_dir = Path(os.environ["XCON_FIXTURES_DIR"])

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            seed=self.seed,
            tick_interval=self.tick_interval,
            tick_slices=self.tick_slices,
            volatility=self.volatility,
            book_depth=self.book_depth,
            maker_fee=self.fee_rate,
            taker_fee=self.fee_rate,
            default_balances=self.default_balances,
            clock_offset_ms=self.clock_offset_ms,
        )


def parse_account(spec: str) -> tuple[str, str]:
    """'KEY:SECRET' -> ('KEY', 'SECRET').

    A secret written '@PATH' is read from that file: a PEM private key (Coinbase's CDP keys:
    'organizations/.../apiKeys/...:@cdp_key.pem'), or the JSON the CDP portal downloads
    ({"name", "privateKey"}: its privateKey). '@PATH' alone, without a key, takes the key name
    from such a JSON file too. ValueError for a file that cannot be read."""
    if spec.startswith("@"):
        data = _key_file_json(spec[1:])
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{spec[1:]}: a key file without a key name needs KEY:@PATH")
        return name, _secret_of(data, spec[1:])
    key, sep, secret = spec.partition(":")
    if not sep or not key or not secret:
        raise ValueError(f"account must be KEY:SECRET, got {spec!r}")
    if secret.startswith("@"):
        secret = _read_secret(secret[1:])
    return key, secret


def _read_text(path: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the key file {path!r}: {exc}") from None


def _key_file_json(path: str) -> dict[str, Any]:
    try:
        data = json.loads(_read_text(path))
    except ValueError:
        raise ValueError(f'{path}: not a JSON key file ({{"name", "privateKey"}})') from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON key file")
    return data


def _secret_of(data: dict[str, Any], path: str) -> str:
    secret = data.get("privateKey")
    if not isinstance(secret, str) or not secret:
        raise ValueError(f"{path}: the key file has no privateKey")
    return secret


def _read_secret(path: str) -> str:
    """The secret in a key file: a PEM (kept with its final newline) or a one-line secret,
    or the privateKey of a CDP JSON download."""
    text = _read_text(path).strip()
    if text.startswith("{"):
        return _secret_of(_key_file_json(path), path)
    if not text:
        raise ValueError(f"{path}: the key file is empty")
    return text + "\n" if text.startswith("-----BEGIN") else text


class _GenerateKey(argparse.Action):
    """--generate-key ec|ed25519: print a fresh CDP key pair as the CDP portal's JSON download
    ({"name", "privateKey"}, plus the public key) and exit. Save it and start the simulator
    with --account @FILE (or KEYNAME:@FILE with the PEM alone)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        from exchanges.simulator.venues.coinbase.keys import (
            generate_key,
            key_material,
            new_key_name,
        )

        kind = str(values or "ec")
        secret = generate_key(kind)
        body = {
            "name": new_key_name(),
            "privateKey": secret,
            "publicKey": key_material(secret).public_pem(),
        }
        print(json.dumps(body, indent=2), flush=True)
        parser.exit(0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulator's options; shared by `python -m exchanges.simulator` and the Django
    management command (so none of them may clash with Django's own, e.g. -v)."""
    from exchanges.simulator.venues import VENUES

    parser.add_argument("--venue", default="binance", choices=sorted(VENUES))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900, help="0 = any free port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="KEY:SECRET",
        help=(
            "create an account at start (repeatable); SECRET may be @FILE (a PEM key or a CDP "
            "JSON key file), and @FILE alone takes the key name from a CDP JSON key file"
        ),
    )
    parser.add_argument(
        "--generate-key",
        action=_GenerateKey,
        nargs="?",
        const="ec",
        choices=("ec", "ed25519"),
        help="print a fresh Coinbase CDP key pair (JSON: name, privateKey, publicKey) and exit",
    )
    parser.add_argument("--tick-interval", type=float, default=0.25, help="seconds per price step")
    parser.add_argument(
        "--tick-slices",
        type=int,
        default=1,
        help="spread each step's market updates over this many slices of the interval",
    )
    parser.add_argument(
        "--synthetic-markets",
        type=int,
        default=0,
        metavar="N",
        help="add N generated markets (SYN0001USDT ...)",
    )
    parser.add_argument("--ws-ping-interval", type=float, default=20.0)
    parser.add_argument("--ws-pong-timeout", type=float, default=60.0)
    parser.add_argument("--markets-file", type=Path, default=None)
    parser.add_argument("--book-depth", type=int, default=100)
    parser.add_argument(
        "--volatility", type=float, default=0.0002, help="std dev of log price per tick"
    )
    parser.add_argument(
        "--enforce-rate-limits",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="answer 429 / 418 past the venue's rate limits (default: on)",
    )
    parser.add_argument(
        "--request-weight-limit",
        type=int,
        default=6000,
        metavar="N",
        help="request weight per IP per minute",
    )
    parser.add_argument(
        "--orders-10s-limit", type=int, default=50, metavar="N", help="orders per key per 10 s"
    )
    parser.add_argument(
        "--ban-first-seconds",
        type=float,
        default=120.0,
        help="first automatic IP ban; doubles for repeat offenders",
    )
    parser.add_argument(
        "--clock-offset-ms",
        type=int,
        default=0,
        metavar="MS",
        help="venue clock ahead (+) or behind (-) the wall clock",
    )
    faults = parser.add_argument_group(
        "faults", "in force from the start; POST /_sim/... changes them (see server.py)"
    )
    faults.add_argument(
        "--fault-rest-error-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="share of REST requests answered with --fault-rest-status",
    )
    faults.add_argument("--fault-rest-status", type=int, default=503, metavar="CODE")
    faults.add_argument(
        "--fault-rest-timeout-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="share of REST requests held without an answer for --fault-rest-timeout-s",
    )
    faults.add_argument("--fault-rest-timeout-s", type=float, default=30.0, metavar="S")
    faults.add_argument(
        "--fault-rest-path",
        action="append",
        default=[],
        metavar="PATH",
        help="only these REST paths (repeatable; a trailing * matches a prefix)",
    )
    faults.add_argument(
        "--fault-rest-seed", type=int, default=None, metavar="N", help="default: --seed"
    )
    faults.add_argument(
        "--fault-rest-body",
        choices=("json", "html"),
        default=None,
        help="error body (default: HTML for 502/504, the venue's JSON otherwise)",
    )
    faults.add_argument(
        "--fault-ws-delay-ms",
        type=int,
        default=0,
        metavar="MS",
        help="hold every outgoing WebSocket frame this long",
    )
    faults.add_argument("--fault-ws-jitter-ms", type=int, default=0, metavar="MS")
    faults.add_argument(
        "--fault-maintenance",
        action="store_true",
        help="start in maintenance (REST refused, WebSockets refused)",
    )


def config_from_args(args: argparse.Namespace | Mapping[str, Any]) -> SimulatorConfig:
    """Build a config from parsed options (an argparse Namespace or Django's options dict)."""
    opts: Mapping[str, Any] = vars(args) if isinstance(args, argparse.Namespace) else args
    return SimulatorConfig(
        venue=str(opts.get("venue", "binance")),
        host=str(opts.get("host", "127.0.0.1")),
        port=int(opts.get("port", 8900)),
        seed=int(opts.get("seed", 1)),
        accounts=[parse_account(a) for a in opts.get("account") or []],
        tick_interval=float(opts.get("tick_interval", 0.25)),
        tick_slices=int(opts.get("tick_slices", 1)),
        synthetic_markets=int(opts.get("synthetic_markets", 0)),
        ws_ping_interval=float(opts.get("ws_ping_interval", 20.0)),
        ws_pong_timeout=float(opts.get("ws_pong_timeout", 60.0)),
        markets_file=opts.get("markets_file"),
        book_depth=int(opts.get("book_depth", 100)),
        volatility=float(opts.get("volatility", 0.0002)),
        enforce_rate_limits=bool(opts.get("enforce_rate_limits", True)),
        rate_limit_request_weight=int(opts.get("request_weight_limit", 6000)),
        rate_limit_orders_10s=int(opts.get("orders_10s_limit", 50)),
        ban_first_seconds=float(opts.get("ban_first_seconds", 120.0)),
        clock_offset_ms=int(opts.get("clock_offset_ms") or 0),
        rest_faults=RestFaultSettings(
            error_rate=float(opts.get("fault_rest_error_rate") or 0.0),
            status=int(opts.get("fault_rest_status") or 503),
            timeout_rate=float(opts.get("fault_rest_timeout_rate") or 0.0),
            timeout_s=float(opts.get("fault_rest_timeout_s") or 30.0),
            paths=tuple(opts.get("fault_rest_path") or ()) or None,
            seed=opts.get("fault_rest_seed"),
            body=opts.get("fault_rest_body"),
        ),
        ws_delay_ms=int(opts.get("fault_ws_delay_ms") or 0),
        ws_delay_jitter_ms=int(opts.get("fault_ws_jitter_ms") or 0),
        maintenance=bool(opts.get("fault_maintenance", False)),
    )
