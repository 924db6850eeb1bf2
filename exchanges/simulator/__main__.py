"""`python -m exchanges.simulator --venue binance --port 8900 --seed 1 --account KEY:SECRET`."""

from __future__ import annotations

import sys

from exchanges.simulator.server import main

if __name__ == "__main__":
    sys.exit(main())
