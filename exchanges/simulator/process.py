"""Run the simulator in its own OS process (benchmarks, multi-process tests).

    with run_in_process("binance", seed=1, tick_interval=0.2) as sim:
        key, secret = sim.create_account(balances={"USDT": "1000"})
        ex = point_ccxt_at(ccxt.async_support.binance({...}), sim)

Where `testing.run_in_thread` shares the caller's interpreter (and its GIL) with the venue,
this one does not: what a benchmark measures is then the client's own work plus the wire, as
against a venue on another machine. Everything goes over the simulator's HTTP controls
(/_sim/...), so the handle offers only what those controls offer.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class SimulatorProcess:
    """`python -m exchanges.simulator` on a free loopback port; stop() (or the `with` block's
    end) terminates it."""

    def __init__(self, venue: str, *args: str, **options: Any) -> None:
        self.venue = venue
        self.port = free_port()
        argv = [sys.executable, "-m", "exchanges.simulator", "--venue", venue]
        argv += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "WARNING"]
        for name, value in options.items():
            flag = "--" + name.replace("_", "-")
            if value is True:
                argv.append(flag)
            elif value is False:
                argv.append("--no-" + name.replace("_", "-"))
            else:
                argv += [flag, str(value)]
        argv += list(args)
        self.argv = argv
        self._proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 30.0) -> SimulatorProcess:
        # our own interpreter and module with flags built above: no shell, no outside input
        self._proc = subprocess.Popen(self.argv, cwd=ROOT, stdout=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"simulator exited with {self._proc.returncode}: {self.argv}")
            try:
                self.get("/_sim/info")
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError("simulator process did not start in time")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ controls
    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        # always http://127.0.0.1:<port>: the scheme is ours, never a caller's
        req = urllib.request.Request(  # noqa: S310
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        with urllib.request.urlopen(req, timeout=10) as answer:  # noqa: S310 (loopback URL)
            return json.loads(answer.read() or b"null")

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body if body is not None else {})

    def ccxt(self, exchange_id: str | None = None) -> dict[str, Any]:
        """The GET /_sim/ccxt answer (see testing.point_ccxt_at)."""
        query = "" if exchange_id is None else f"?exchange={exchange_id}"
        try:
            answer: dict[str, Any] = self.get("/_sim/ccxt" + query)
        except urllib.error.HTTPError as exc:
            raise ValueError(exc.read().decode(errors="replace")) from None
        return answer

    def create_account(
        self, balances: dict[str, str] | None = None, api_key: str | None = None
    ) -> tuple[str, str]:
        body: dict[str, Any] = {"balances": balances or {}}
        if api_key is not None:
            body["api_key"] = api_key
        made = self.post("/_sim/accounts", body)
        return str(made["api_key"]), str(made["secret"])


def run_in_process(venue: str = "binance", *args: str, **options: Any) -> SimulatorProcess:
    """Start `python -m exchanges.simulator --venue <venue> <options as --flags> <args>` and
    return once it answers; options are the command line's (`tick_interval=0.2` is
    `--tick-interval 0.2`, `enforce_rate_limits=False` is `--no-enforce-rate-limits`)."""
    return SimulatorProcess(venue, *args, **options).start()
