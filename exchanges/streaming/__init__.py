"""Holding venue connections for as long as a process owns them: the machinery shared by the
market-data streams (monitoring) and the own-order streams (orders).

- `lease`: an exclusive, expiring claim on one stream, held in Redis, renewed by its holder;
- `host`: the worker's stream host, a thread with its own event loop per held stream, and the
  `shutdown` event that tells every holder of the process to let go;
- `backoff`: the redial policy after a failed connection;
- `store`: the Redis clients a holder writes its live state with;
- `tickers`: the latest ticker per symbol, as the streams store it and its readers read it.

Nothing here imports monitoring or orders: a user of the host hands it a coroutine factory
per stream, so the host never needs to know what a stream is.
"""
