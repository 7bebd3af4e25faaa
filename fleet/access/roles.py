"""Roles and the API scopes each role carries."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    TECHNICIAN = "technician"
    READONLY = "readonly"


class Scope(StrEnum):
    DEVICES_READ = "devices:read"
    DEVICES_WRITE = "devices:write"
    COMMANDS = "commands:send"
    ALERTS_WRITE = "alerts:write"
    REGISTRY_WRITE = "registry:write"
    AUDIT_READ = "audit:read"
    ENROL = "devices:enrol"
    USERS_ADMIN = "users:admin"
    INGEST_READ = "ingest:read"
    FEED_PUBLIC = "feed:public"
    FEED_FULL = "feed:full"
    RELEASES_WRITE = "releases:write"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.ADMIN: frozenset(Scope),
    Role.STAFF: frozenset(
        {
            Scope.DEVICES_READ,
            Scope.COMMANDS,
            Scope.ALERTS_WRITE,
            Scope.REGISTRY_WRITE,
            Scope.AUDIT_READ,
            Scope.FEED_PUBLIC,
            Scope.FEED_FULL,
        }
    ),
    Role.TECHNICIAN: frozenset(
        {Scope.DEVICES_READ, Scope.DEVICES_WRITE, Scope.ENROL, Scope.FEED_PUBLIC}
    ),
    Role.READONLY: frozenset({Scope.DEVICES_READ, Scope.FEED_PUBLIC}),
}


def parse_scopes(values: list[str]) -> frozenset[Scope]:
    unknown = [v for v in values if v not in {s.value for s in Scope}]
    if unknown:
        known = ", ".join(s.value for s in Scope)
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known scopes: {known}")
    return frozenset(Scope(v) for v in values)
