"""Kraken spot: market records (AssetPairs) and the venue's own order rules. No protocol
servers yet; see markets and rules."""
