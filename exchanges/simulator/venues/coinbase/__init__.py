"""Coinbase Advanced Trade: market records (products) and the venue's own order rules. No
protocol servers yet; see markets and rules."""
