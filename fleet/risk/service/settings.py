"""Risk engine settings, read from ``FLEET_RISK_*`` variables by :func:`get_risk_settings`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleet.risk.vtt import Sensitivity


class RiskSettings(BaseSettings):
    """Defaults for every borough; surveys refine f_Rsi per property or placement."""

    model_config = SettingsConfigDict(env_prefix="FLEET_RISK_", env_file=None, extra="ignore")

    sweep_s: float = Field(default=60.0, gt=0, description="Seconds between risk updates")
    sensitivity: Sensitivity = Field(
        default=Sensitivity.SENSITIVE, description="VTT material class of the watched surfaces"
    )
    f_rsi: float = Field(
        default=0.75, gt=0, le=1, description="Temperature factor used without a surface probe"
    )
    outdoor_temperature: float = Field(
        default=5.0, ge=-30, le=40, description="Outdoor °C assumed for surface estimates"
    )
    case_level: Literal["elevated", "high", "severe"] = Field(
        default="high",
        description="Property level that opens a case (a borough may override it with "
        "alert_settings['risk_case_level'])",
    )
    surface_days: float = Field(default=7.0, gt=0, le=31, description="BS 5250 mean window")
    recompute_max_days: int = Field(
        default=31, ge=1, le=366, description="How far back a late reading may recompute"
    )
    late_lookback_hours: int = Field(
        default=72,
        ge=1,
        le=24 * 31,
        description="Processed hours re-checked for late readings on each update",
    )
    batch: int = Field(default=200, ge=1, description="Properties per sweep transaction")


def get_risk_settings(**overrides: object) -> RiskSettings:
    """Build from the environment, with explicit overrides taking precedence."""
    return RiskSettings(**overrides)  # type: ignore[arg-type]
