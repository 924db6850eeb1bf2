"""Signals the exchanges app sends; other apps (monitoring) record and alert on them.

breaker_changed(sender, account_id, label, old, new, reason, open_for_s): a circuit breaker
changed state. Sent with `asend` from async code; receivers may be sync (Django runs them in
a thread) and must not raise.
"""

from django.dispatch import Signal

breaker_changed = Signal()
