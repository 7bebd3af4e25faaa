"""All models, imported here so metadata is complete for migrations."""

from fleet.models.access import (
    ApiToken,
    AuditEntry,
    LoginSession,
    SignInFailures,
    User,
    user_boroughs,
)
from fleet.models.base import Base
from fleet.models.device import DesiredConfig, Device, DeviceCommand
from fleet.models.feed import (
    FeedDatastream,
    FeedKey,
    FeedPolicy,
    FeedThing,
    PropertyConsent,
    PropertyGeo,
)
from fleet.models.health import Alert, HealthSnapshot, StateChange
from fleet.models.identity import DeviceCertificate, WifiProfile
from fleet.models.installation import DeviceInstallation
from fleet.models.ota import (
    Release,
    ReleaseBlob,
    Rollout,
    RolloutDevice,
    TrustedKey,
    UpdateEvent,
    VersionPin,
)
from fleet.models.reading import Reading
from fleet.models.registry import Borough, Estate, HardwareModel, Placement, Property, Tag
from fleet.models.rejected import RejectedMessage
from fleet.models.risk import (
    Case,
    CaseEvent,
    PlacementRisk,
    PropertyRisk,
    RiskHour,
    RiskLevelChange,
    RiskProfile,
)

__all__ = [
    "Alert",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Borough",
    "Case",
    "CaseEvent",
    "DesiredConfig",
    "Device",
    "DeviceCertificate",
    "DeviceCommand",
    "DeviceInstallation",
    "Estate",
    "FeedDatastream",
    "FeedKey",
    "FeedPolicy",
    "FeedThing",
    "HardwareModel",
    "HealthSnapshot",
    "LoginSession",
    "Placement",
    "PlacementRisk",
    "Property",
    "PropertyConsent",
    "PropertyGeo",
    "PropertyRisk",
    "Reading",
    "RejectedMessage",
    "Release",
    "ReleaseBlob",
    "RiskHour",
    "RiskLevelChange",
    "RiskProfile",
    "Rollout",
    "RolloutDevice",
    "SignInFailures",
    "StateChange",
    "Tag",
    "TrustedKey",
    "UpdateEvent",
    "User",
    "VersionPin",
    "WifiProfile",
    "user_boroughs",
]
