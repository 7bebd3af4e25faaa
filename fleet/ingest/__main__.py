"""`python -m fleet.ingest`: the standalone ingest worker, the same command as `fleet ingest`.

Delegating keeps one path for settings, logging and start-up errors (one line, exit 2).
"""

from __future__ import annotations

import sys

from fleet.cli import main

if __name__ == "__main__":
    sys.argv = ["fleet", "ingest", *sys.argv[1:]]
    main()
