"""Coinbase Advanced Trade authentication: CDP API keys and the JWT signed for every request.

A CDP key is a key name (`organizations/{org}/apiKeys/{id}`) and a private key. The simulator
keeps each account's key pair (the account's secret is the private key it was given or
generated, see `keys.py`) and verifies requests with the PUBLIC half only:

- REST: header `Authorization: Bearer <JWT>`. ES256 (EC P-256 keys, PEM) or EdDSA (Ed25519
  keys: 64 bytes, seed then public key, base64 = 88 characters) as ccxt 4.5.90's
  `create_auth_token` builds them: header {alg, kid = key name, nonce, typ}, payload {sub = key
  name, iss "coinbase-cloud" (EdDSA: "cdp"), aud ["retail_rest_api_proxy"] (EdDSA:
  ["cdp_service"]), nbf, iat, exp = nbf + 120, uri "METHOD host/path" (EdDSA: uris [...])}.
  The signature of ES256 is the raw r || s (64 bytes), base64url, as JWS requires.
- The `uri` claim is "METHOD host/path" without the query. Coinbase's SDKs write the host bare
  ("api.coinbase.com/api/v3/..."); ccxt strips only "https://" from the URL, so against this
  simulator's http:// address its claim keeps "http://". Both spellings of the host the
  request reached (its Host header) are accepted; any other method, host or path is refused.
- Refused (401): a token that is not a JWT, an algorithm other than the key's, kid / sub not
  naming the same known key, a signature that does not verify with that key's public key
  (e.g. signed with another key), nbf in the future, exp in the past or more than
  `MAX_LIFETIME_S` after nbf, a missing or reused nonce (a nonce is remembered until its
  token expires), a wrong uri claim.
- WebSocket (`verify_ws_jwt`): the same token without a uri claim (ccxt.pro's `user` channel
  subscription carries it in the frame) and with its nonce reusable (ccxt.pro reuses one
  token for 120 s); returns the account's API key or None. `verify_ws_legacy` checks the
  HMAC fields ccxt.pro sends instead for keys that are not CDP key names / PEMs.
- Legacy keys (any other secret): ccxt's HMAC headers CB-ACCESS-KEY, CB-ACCESS-TIMESTAMP
  (seconds, within `LEGACY_WINDOW_S` of the venue clock) and CB-ACCESS-SIGN = hex
  HMAC-SHA256(secret, timestamp + METHOD + path + body), where a v2 GET path includes its
  query. This is what a simulator account made with a random secret (POST /_sim/accounts)
  signs with.

Every refusal carries a reason (`AuthError.reason`) the HTTP layer reports in the
X-Sim-Auth-Reason header and in /_sim/stats, never in Coinbase's own body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from exchanges.simulator.accounts import Account
from exchanges.simulator.clock import Clock
from exchanges.simulator.venues.coinbase.keys import KeyMaterial, key_material

#: a token may live at most this long (Coinbase: two minutes; ccxt sets exp = nbf + 120)
MAX_LIFETIME_S = 120
#: a legacy CB-ACCESS-TIMESTAMP may be this far from the venue clock
LEGACY_WINDOW_S = 30
ES256_AUDIENCE = "retail_rest_api_proxy"
ES256_ISSUER = "coinbase-cloud"
EDDSA_AUDIENCE = "cdp_service"
EDDSA_ISSUER = "cdp"


class AuthError(Exception):
    """A request Coinbase would answer 401; `reason` says why (for the simulator's users)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Token:
    """A decoded JWT: its parts and the text its signature covers."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _b64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise AuthError("token part is not base64url") from None


def decode_token(token: str) -> Token:
    """Split and decode a JWT without verifying it (AuthError if it is not one)."""
    if not token.isascii():
        raise AuthError("token is not ASCII")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise AuthError("token is not a JWT")
    try:
        header = json.loads(_b64url(parts[0]))
        payload = json.loads(_b64url(parts[1]))
    except (ValueError, UnicodeDecodeError):
        raise AuthError("token header or payload is not JSON") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise AuthError("token header or payload is not an object")
    return Token(header, payload, f"{parts[0]}.{parts[1]}".encode(), _b64url(parts[2]))


def verify_signature(material: KeyMaterial, token: Token) -> None:
    """Check the token's signature with the key's public key (AuthError if it fails)."""
    public = material.public_key
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            if len(token.signature) != 64:
                raise AuthError("ES256 signature is not 64 bytes (r || s)")
            r = int.from_bytes(token.signature[:32], "big")
            s = int.from_bytes(token.signature[32:], "big")
            public.verify(
                encode_dss_signature(r, s), token.signing_input, ec.ECDSA(hashes.SHA256())
            )
        elif isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(token.signature, token.signing_input)
        else:
            raise AuthError("key cannot verify a JWT")
    except InvalidSignature:
        raise AuthError("signature does not verify with the key's public key") from None


def _number(payload: Mapping[str, Any], name: str) -> float:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthError(f"claim {name} missing or not a number")
    return float(value)


class Nonces:
    """JWT nonces seen, each kept until its token's exp (then a replay is refused by exp)."""

    def __init__(self) -> None:
        self._until: dict[tuple[str, str], float] = {}

    def use(self, api_key: str, nonce: str, exp: float, now: float) -> None:
        if len(self._until) > 10_000:
            self._until = {k: v for k, v in self._until.items() if v >= now}
        key = (api_key, nonce)
        if self._until.get(key, -1.0) >= now:
            raise AuthError("nonce already used")
        self._until[key] = exp


class CoinbaseAuth:
    """Verifies requests against the engine's accounts (module docstring for the rules)."""

    def __init__(self, accounts: Mapping[str, Account], clock: Clock) -> None:
        self.accounts = accounts
        self.clock = clock
        self.nonces = Nonces()
        self._materials: dict[tuple[str, str], KeyMaterial] = {}

    def material(self, account: Account) -> KeyMaterial:
        """The account's key material (parsed once per api key and secret)."""
        cache_key = (account.api_key, account.secret)
        found = self._materials.get(cache_key)
        if found is None:
            try:
                found = key_material(account.secret)
            except ValueError as exc:
                raise AuthError(f"the account's key is unusable: {exc}") from None
            self._materials[cache_key] = found
        return found

    # -- JWT ---------------------------------------------------------------------------------
    def verify_jwt(
        self, token_text: str, expected_uris: tuple[str, ...] | None, *, once: bool = True
    ) -> Account:
        """The account whose key signed this token, all claims checked; `expected_uris` the
        acceptable uri claims (None: a WebSocket token, which has none); `once`: its nonce
        must be new (REST; a WebSocket token is reused until it expires: ccxt.pro signs one
        per 120 s for every subscription). AuthError if not."""
        token = decode_token(token_text)
        kid = token.header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("header kid missing")
        account = self.accounts.get(kid)
        if account is None:
            raise AuthError("unknown key (kid)")
        material = self.material(account)
        alg = token.header.get("alg")
        if alg != material.jwt_alg:
            raise AuthError(f"alg {alg!r} is not the key's {material.jwt_alg!r}")
        payload = token.payload
        if payload.get("sub") != kid:
            raise AuthError("claim sub does not name the key of kid")
        verify_signature(material, token)
        eddsa = material.jwt_alg == "EdDSA"
        aud = payload.get("aud")
        audience = EDDSA_AUDIENCE if eddsa else ES256_AUDIENCE
        if not (aud == audience or (isinstance(aud, list) and audience in aud)):
            raise AuthError(f"claim aud is not {audience!r}")
        now = self.clock.now_ms() / 1000
        nbf, exp = _number(payload, "nbf"), _number(payload, "exp")
        if nbf > now:
            raise AuthError("token not yet valid (nbf in the future)")
        if exp <= now:
            raise AuthError("token expired")
        if exp - nbf > MAX_LIFETIME_S:
            raise AuthError(f"token lifetime over {MAX_LIFETIME_S} s")
        if expected_uris is not None:
            claimed = payload.get("uris") if eddsa else [payload.get("uri")]
            if not isinstance(claimed, list) or not any(u in expected_uris for u in claimed):
                raise AuthError("uri claim does not match the request")
        nonce = token.header.get("nonce")
        if not isinstance(nonce, str) or not nonce:
            raise AuthError("header nonce missing")
        if once:
            self.nonces.use(kid, nonce, exp, now)
        return account

    def verify_ws_jwt(self, token: str) -> str | None:
        """The API key of the account a WebSocket subscription's JWT (no uri claim) was signed
        for, or None if Coinbase would refuse it (unknown key, bad signature, expired, ...)."""
        try:
            return self.verify_jwt(token, None, once=False).api_key
        except AuthError:
            return None

    def verify_ws_legacy(
        self, api_key: str, timestamp: str, signature: str, channel: str, product_ids: list[str]
    ) -> str | None:
        """The API key of a WebSocket subscription signed the legacy way (ccxt.pro does so for
        any key that is neither a key name nor a PEM, e.g. Ed25519 keys): hex HMAC-SHA256 of
        timestamp + channel + ",".join(product_ids) with the secret, timestamp within
        LEGACY_WINDOW_S of the venue clock. None if Coinbase would refuse it."""
        account = self.accounts.get(api_key) if api_key else None
        if account is None or not timestamp.isdigit():
            return None
        if abs(int(timestamp) - self.clock.now_ms() / 1000) > LEGACY_WINDOW_S:
            return None
        text = f"{timestamp}{channel}{','.join(product_ids)}"
        expected = hmac.new(account.secret.encode(), text.encode(), hashlib.sha256).hexdigest()
        if not signature.isascii() or not hmac.compare_digest(expected, signature):
            return None
        return account.api_key

    # -- legacy HMAC -------------------------------------------------------------------------
    def verify_legacy(
        self, headers: Mapping[str, str], method: str, signed_path: str, body: str
    ) -> Account:
        api_key = headers.get("CB-ACCESS-KEY", "")
        account = self.accounts.get(api_key) if api_key else None
        if account is None:
            raise AuthError("unknown key (CB-ACCESS-KEY)")
        if self.material(account).jwt_alg is not None:
            raise AuthError("a CDP key must sign a JWT, not CB-ACCESS-SIGN")
        stamp = headers.get("CB-ACCESS-TIMESTAMP", "")
        if not stamp.isdigit() or abs(int(stamp) - self.clock.now_ms() / 1000) > LEGACY_WINDOW_S:
            raise AuthError("request timestamp expired")
        expected = hmac.new(
            account.secret.encode(), f"{stamp}{method}{signed_path}{body}".encode(), hashlib.sha256
        ).hexdigest()
        given = headers.get("CB-ACCESS-SIGN", "")
        if not given.isascii() or not hmac.compare_digest(expected, given):
            raise AuthError("invalid signature (CB-ACCESS-SIGN)")
        return account


def expected_uris(method: str, host: str, path: str) -> tuple[str, ...]:
    """The uri claims a request to `path` on `host` may carry (module docstring)."""
    return (f"{method} {host}{path}", f"{method} http://{host}{path}")
