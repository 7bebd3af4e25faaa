"""Failed sign-ins slow the next ones down, per account and per address.

Without it a password can be guessed online as fast as argon2 verifies (several per second
per connection). After a few failures an account (or an address trying many accounts) must
wait, the wait doubling with each further failure up to a cap; a success clears the
account's count and a quiet hour forgets any count.

The counts live in the database (``sign_in_failures``), so every API process and every
restart sees the same ones: N replicas behind a load balancer do not give a guesser N times
the allowance. A failure is one upsert per key, atomic on SQLite and PostgreSQL, so failures
arriving at several processes at once are all counted. Rows are keyed by a SHA-256 of the
e-mail or the address, never the text, and a failure deletes the rows quiet for an hour, so a
spray of addresses leaves at most an hour of them. Times are wall-clock UTC: processes on
different machines share it, unlike a monotonic clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from fleet.models.access import SignInFailures
from fleet.models.base import utcnow

FREE_FAILURES = 5  # an account's typos before any wait
ADDRESS_FREE_FAILURES = 20  # one address trying many accounts
FIRST_WAIT_S = 30.0
MAX_WAIT_S = 15 * 60.0
FORGET_AFTER = timedelta(hours=1)  # a quiet hour clears the count
_MAX_DOUBLINGS = 16  # far past the cap; keeps 2**n a small number for any count


@dataclass
class SignInThrottle:
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime] = utcnow

    def wait_s(self, email: str, address: str) -> float:
        """Seconds before a sign-in for `email` from `address` will be checked; 0: now."""
        account, place = _account_key(email), _address_key(address)
        with self.sessions() as session:
            rows = session.execute(
                select(
                    SignInFailures.key, SignInFailures.failures, SignInFailures.last_failed_at
                ).where(SignInFailures.key.in_((account, place)))
            ).all()
        now = self.clock()
        counts = {key: (failures, last) for key, failures, last in rows}
        return max(
            _wait(counts.get(account), FREE_FAILURES, now),
            _wait(counts.get(place), ADDRESS_FREE_FAILURES, now),
        )

    def failed(self, email: str, address: str) -> None:
        now = self.clock()
        with self.sessions.begin() as session:
            # Keys in one order in every process, so two failures cannot wait on each other.
            for key in sorted((_account_key(email), _address_key(address))):
                session.execute(_count_failure(session, key, now))
            # Rows another process holds are left for a later failure: the purge never waits.
            quiet = (
                select(SignInFailures.key)
                .where(SignInFailures.last_failed_at < now - FORGET_AFTER)
                .with_for_update(skip_locked=True)
            )
            session.execute(delete(SignInFailures).where(SignInFailures.key.in_(quiet)))

    def succeeded(self, email: str) -> None:
        with self.sessions.begin() as session:
            session.execute(delete(SignInFailures).where(SignInFailures.key == _account_key(email)))


def _account_key(email: str) -> str:
    return _digest(f"account:{email.strip().lower()}")


def _address_key(address: str) -> str:
    return _digest(f"address:{address}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _count_failure(session: Session, key: str, now: datetime) -> Any:
    """Insert the key's first failure, or add one in the same statement (a read then a write
    would let two processes both write the same count); a count quiet for an hour restarts."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(SignInFailures).values(key=key, failures=1, last_failed_at=now)
    return stmt.on_conflict_do_update(
        index_elements=[SignInFailures.key],
        set_={
            "failures": case(
                (SignInFailures.last_failed_at < now - FORGET_AFTER, 1),
                else_=SignInFailures.failures + 1,
            ),
            "last_failed_at": now,
        },
    )


def _wait(count: tuple[int, datetime] | None, free: int, now: datetime) -> float:
    if count is None:
        return 0.0
    failures, last = count
    if failures < free or now - last > FORGET_AFTER:
        return 0.0
    wait = min(MAX_WAIT_S, FIRST_WAIT_S * 2 ** min(failures - free, _MAX_DOUBLINGS))
    return max(0.0, (last - now).total_seconds() + wait)
