"""CDP API key material: what an account's secret is, its public half, and fresh key pairs.

An account's secret (SimulatorConfig.accounts, POST /_sim/accounts) is one of:

- a PEM EC P-256 private key ("-----BEGIN EC PRIVATE KEY-----", as the CDP portal hands it
  out, or PKCS#8 "BEGIN PRIVATE KEY"): the key signs ES256 JWTs;
- an Ed25519 key as the CDP portal shows it: base64 of 64 bytes (the 32-byte seed, then the
  public key; 88 characters), or of the 32-byte seed alone, or a PKCS#8 PEM: EdDSA JWTs;
- anything else: a legacy HMAC secret (CB-ACCESS-SIGN headers, no JWT).

`generate_key` makes a fresh pair with a key name in CDP's form, for `--generate-key` and for
tests; `cdp_key_json` is the JSON file the CDP portal downloads ({"name", "privateKey"}).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

KEY_TYPES = ("ec", "ed25519")


@dataclass(frozen=True)
class KeyMaterial:
    """The public side of an account's key: `jwt_alg` "ES256" / "EdDSA", or None for a legacy
    HMAC secret (then `public_key` is None)."""

    jwt_alg: str | None
    public_key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | None

    def public_pem(self) -> str | None:
        if self.public_key is None:
            return None
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()


LEGACY = KeyMaterial(None, None)


def key_material(secret: str) -> KeyMaterial:
    """Classify `secret` (module docstring) and derive its public key. A PEM that does not
    load, or an EC key on another curve, is a ValueError: such an account cannot sign."""
    text = secret.strip()
    if text.startswith("-----BEGIN"):
        # PEM files written on Windows or pasted through a form may carry \r or literal \n
        pem = text.replace("\\n", "\n").replace("\r", "").encode()
        try:
            private = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"the PEM private key does not load: {exc}") from None
        if isinstance(private, ec.EllipticCurvePrivateKey):
            if not isinstance(private.curve, ec.SECP256R1):
                raise ValueError(f"EC key on {private.curve.name}, CDP keys are P-256")
            return KeyMaterial("ES256", private.public_key())
        if isinstance(private, ed25519.Ed25519PrivateKey):
            return KeyMaterial("EdDSA", private.public_key())
        raise ValueError("the PEM key is neither EC P-256 nor Ed25519")
    seed = _ed25519_seed(text)
    if seed is not None:
        return KeyMaterial("EdDSA", ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key())
    return LEGACY


def _ed25519_seed(text: str) -> bytes | None:
    """The 32-byte seed of a base64 Ed25519 key (64 bytes seed + public, or the seed alone),
    None if `text` is not one. A 64-byte key whose second half is not the seed's public key
    is not one either."""
    if len(text) not in (44, 88) or not text.endswith("="):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) == 32:
        return raw
    if len(raw) != 64:
        return None
    seed = raw[:32]
    public = ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key()
    if public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) != raw[32:]:
        return None
    return seed


def new_key_name() -> str:
    """A key name in CDP's form: organizations/{uuid}/apiKeys/{uuid}."""
    return f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}"


def generate_key(kind: str = "ec") -> str:
    """A fresh private key as the CDP portal hands it out: "ec" a SEC1 PEM P-256 key,
    "ed25519" base64 of seed + public key (88 characters)."""
    if kind == "ec":
        private = ec.generate_private_key(ec.SECP256R1())
        return private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
    if kind == "ed25519":
        ed = ed25519.Ed25519PrivateKey.generate()
        seed = ed.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        public = ed.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return base64.b64encode(seed + public).decode()
    raise ValueError(f"key type must be one of {', '.join(KEY_TYPES)}, got {kind!r}")


def cdp_key_json(name: str, private_key: str) -> str:
    """The JSON the CDP portal downloads for a key ({"name", "privateKey"})."""
    return json.dumps({"name": name, "privateKey": private_key}, indent=2)


def secret_from_file_text(text: str) -> str:
    """The private key in a key file: a PEM (or base64 Ed25519) file as is, or the CDP
    portal's JSON download ({"name", "privateKey"})."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            raise ValueError("key file is neither a PEM nor CDP's JSON") from None
        key = data.get("privateKey") if isinstance(data, dict) else None
        if not isinstance(key, str) or not key:
            raise ValueError("CDP key JSON has no privateKey")
        return key
    return stripped + "\n" if stripped.startswith("-----BEGIN") else stripped
