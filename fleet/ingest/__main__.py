"""`python -m fleet.ingest`: the standalone ingest worker, configured by FLEET_* variables."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from fleet.core.settings import get_settings
from fleet.ingest.service import IngestConfigError, run_ingest
from fleet.observability.logging import log_format_from_env, setup_logging


def main() -> int:
    try:
        fmt = log_format_from_env()
    except ValueError as exc:
        print(f"fleet ingest: {exc}", file=sys.stderr)
        return 2
    setup_logging(verbose=False, fmt=fmt)
    try:
        run_ingest(get_settings())
    except (ValidationError, IngestConfigError) as exc:
        print(f"fleet ingest: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
