"""One process of a scaled-out fleet runs the background jobs: the lease is held by one
connection at a time and passes on when its holder goes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from fleet.core.lease import Lease


@pytest.fixture
def engines(postgres_url: str) -> Iterator[tuple[Engine, Engine]]:
    first, second = create_engine(postgres_url), create_engine(postgres_url)
    try:
        yield first, second
    finally:
        first.dispose()
        second.dispose()


def _eventually(condition: object, what: str) -> None:
    # The server ends a terminated session asynchronously: poll, bounded.
    deadline = time.monotonic() + 10
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.postgres
def test_one_replica_holds_the_lease_until_it_lets_go(engines: tuple[Engine, Engine]) -> None:
    a, b = Lease(engines[0]), Lease(engines[1])
    assert a.held()
    assert not b.held()
    assert a.held()  # and keeps it
    a.release()
    assert b.held()
    assert not a.held()
    b.release()


@pytest.mark.postgres
def test_a_replica_whose_database_session_ends_loses_the_lease(
    engines: tuple[Engine, Engine], postgres_url: str
) -> None:
    a, b = Lease(engines[0], recheck_s=0), Lease(engines[1], recheck_s=0)
    assert a.held()
    holder = engines[0].connect()
    try:
        pids = holder.execute(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND objid = :k AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"k": a.key},
        ).scalars()
        admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for pid in list(pids):
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        admin.dispose()
    finally:
        holder.close()
    _eventually(b.held, "the other replica never took the lease over")
    assert not a.held()  # it notices, and does not run the jobs beside the new holder
    b.release()


def test_a_single_sqlite_process_always_holds_it() -> None:
    engine = create_engine("sqlite://")
    assert Lease(engine).held() and Lease(engine).held()
    engine.dispose()
