"""All models, imported here so metadata is complete for migrations."""

from fleet.models.base import Base
from fleet.models.device import Device
from fleet.models.reading import Reading
from fleet.models.rejected import RejectedMessage

__all__ = ["Base", "Device", "Reading", "RejectedMessage"]
