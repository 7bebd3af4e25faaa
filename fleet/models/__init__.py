"""All models, imported here so metadata is complete for migrations."""

from fleet.models.access import ApiToken, AuditEntry, LoginSession, User, user_boroughs
from fleet.models.base import Base
from fleet.models.device import Device
from fleet.models.health import Alert, HealthSnapshot, StateChange
from fleet.models.reading import Reading
from fleet.models.registry import Borough, Estate, HardwareModel, Placement, Property, Tag
from fleet.models.rejected import RejectedMessage

__all__ = [
    "Alert",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Borough",
    "Device",
    "Estate",
    "HardwareModel",
    "HealthSnapshot",
    "LoginSession",
    "Placement",
    "Property",
    "Reading",
    "RejectedMessage",
    "StateChange",
    "Tag",
    "User",
    "user_boroughs",
]
