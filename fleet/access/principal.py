"""Who is asking: the identity, role, scopes and boroughs behind a request."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.access.roles import Role, Scope


class Forbidden(Exception):
    """The principal may not do this; the message says what is missing."""


@dataclass(frozen=True)
class Principal:
    actor: str  # for the audit log: "user:3 ana@borough.gov.uk", "token:7", "admin-token"
    role: Role
    scopes: frozenset[Scope]
    # None means every borough (admins); otherwise only these borough ids.
    borough_ids: frozenset[int] | None
    user_id: int | None = None
    csrf_token: str | None = None  # set for browser sessions

    @property
    def all_boroughs(self) -> bool:
        return self.borough_ids is None

    def can_see(self, borough_id: int | None) -> bool:
        if self.borough_ids is None:
            return True
        return borough_id is not None and borough_id in self.borough_ids

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this needs the {scope.value!r} permission")


SYSTEM = Principal(actor="system", role=Role.ADMIN, scopes=frozenset(Scope), borough_ids=None)
