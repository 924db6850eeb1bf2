"""WebSocket tokens (POST /0/private/GetWebSocketsToken): token -> account, 15 minutes.

Kraken: "the token should be used within 15 minutes of creation"; once a private connection
is established with it, the token stays valid for that connection. The simulator checks only
the first part: `account_for` answers None for an unknown or expired token, and the private
WebSocket (ws.py) checks the token when a subscription names it.
"""

from __future__ import annotations

import base64
import secrets

from exchanges.simulator.clock import Clock

VALID_S = 900


class Tokens:
    def __init__(self, clock: Clock, valid_s: int = VALID_S) -> None:
        self._clock = clock
        self.valid_s = valid_s
        #: token -> (api key, expiry in venue-clock ms)
        self._tokens: dict[str, tuple[str, int]] = {}

    def issue(self, account_key: str) -> str:
        """A new token for the account of `account_key` (a base64 string like Kraken's)."""
        now = self._clock.now_ms()
        self._forget_expired(now)
        token = base64.b64encode(secrets.token_bytes(30)).decode()
        self._tokens[token] = (account_key, now + self.valid_s * 1000)
        return token

    def account_for(self, token: str) -> str | None:
        """The API key the token was issued to, None if unknown or expired."""
        entry = self._tokens.get(token)
        if entry is None or entry[1] <= self._clock.now_ms():
            return None
        return entry[0]

    def _forget_expired(self, now: int) -> None:
        if len(self._tokens) > 1000:
            self._tokens = {t: e for t, e in self._tokens.items() if e[1] > now}
