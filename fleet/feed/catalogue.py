"""The metric catalogue and sensor models: what each SenML record name means in the feed.

This module is the code side of the published data standard (the files in standard/ next to
it); tests keep the two in step, and keep the catalogue equal to the ingest profile's metric
names and units.
Ids are part of the public standard: never renumber an entry, only add new ones.
"""

from __future__ import annotations

from dataclasses import dataclass

STANDARD_NAME = "cs-feed"
STANDARD_VERSION = "1.1.0"
OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"


@dataclass(frozen=True)
class Metric:
    """One observed property: a SenML record name with its unit and meaning."""

    id: int  # the SensorThings ObservedProperty id
    name: str  # SenML record name and ObservedProperty name
    senml_unit: str
    label: str
    definition: str  # what is observed (CF standard name or QUDT quantity kind)
    description: str
    unit_name: str
    unit_symbol: str
    unit_definition: str
    purpose: str  # why the fleet measures it; shown on Datastreams and the public register
    public: bool  # False: operational data, only in the borough-internal full feed


METRICS: tuple[Metric, ...] = (
    Metric(
        1,
        "temperature",
        "Cel",
        "Air temperature",
        "http://vocab.nerc.ac.uk/standard_name/air_temperature/",
        "Indoor air temperature in the room where the sensor is placed.",
        "degree Celsius",
        "°C",
        "http://qudt.org/vocab/unit/DEG_C",
        "Assess condensation and mould risk (dew point, surface humidity) and cold homes.",
        True,
    ),
    Metric(
        2,
        "humidity",
        "%RH",
        "Relative humidity",
        "http://vocab.nerc.ac.uk/standard_name/relative_humidity/",
        "Indoor air relative humidity (with respect to water) in the room.",
        "percent relative humidity",
        "%",
        "http://qudt.org/vocab/unit/PERCENT_RH",
        "Detect sustained damp conditions that lead to mould growth.",
        True,
    ),
    Metric(
        3,
        "surface_temperature",
        "Cel",
        "Surface temperature",
        "http://vocab.nerc.ac.uk/standard_name/surface_temperature/",
        "Temperature of a wall or window surface measured by a contact probe.",
        "degree Celsius",
        "°C",
        "http://qudt.org/vocab/unit/DEG_C",
        "Estimate humidity at cold surfaces where mould starts.",
        True,
    ),
    Metric(
        4,
        "co2",
        "ppm",
        "Carbon dioxide",
        "http://vocab.nerc.ac.uk/standard_name/mole_fraction_of_carbon_dioxide_in_air/",
        "CO2 mole fraction in indoor air, a proxy for ventilation.",
        "parts per million",
        "ppm",
        "http://qudt.org/vocab/unit/PPM",
        "Judge whether rooms are ventilated enough to clear moisture.",
        True,
    ),
    Metric(
        5,
        "pressure",
        "Pa",
        "Air pressure",
        "http://vocab.nerc.ac.uk/standard_name/air_pressure/",
        "Barometric air pressure at the sensor.",
        "pascal",
        "Pa",
        "http://qudt.org/vocab/unit/PA",
        "Correct humidity and CO2 calculations for weather.",
        True,
    ),
    Metric(
        6,
        "battery_voltage",
        "V",
        "Battery voltage",
        "http://qudt.org/vocab/quantitykind/Voltage",
        "Voltage of the sensor's battery.",
        "volt",
        "V",
        "http://qudt.org/vocab/unit/V",
        "Keep battery sensors working: plan battery changes before data stops.",
        False,
    ),
    Metric(
        7,
        "battery",
        "%EL",
        "Battery charge",
        "http://qudt.org/vocab/quantitykind/StateOfCharge",
        "Estimated remaining battery charge.",
        "percent of full charge",
        "%",
        "http://qudt.org/vocab/unit/PERCENT",
        "Keep battery sensors working: plan battery changes before data stops.",
        False,
    ),
)

METRICS_BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}
METRICS_BY_ID: dict[int, Metric] = {m.id: m for m in METRICS}


@dataclass(frozen=True)
class SensorModel:
    """A sensing part (SensorThings Sensor), described by its datasheet."""

    id: int
    name: str
    description: str
    datasheet: str
    metrics: tuple[str, ...]


SENSORS: tuple[SensorModel, ...] = (
    SensorModel(
        1,
        "Sensirion SHT41",
        "Digital temperature and relative humidity sensor on I2C (±0.2 °C, ±1.8 %RH).",
        "https://sensirion.com/products/catalog/SHT41",
        ("temperature", "humidity"),
    ),
    SensorModel(
        2,
        "Sensirion SCD41",
        "Photoacoustic NDIR CO2 sensor with temperature and humidity on I2C.",
        "https://sensirion.com/products/catalog/SCD41",
        ("co2", "temperature", "humidity"),
    ),
    SensorModel(
        3,
        "Bosch BME280",
        "Temperature, humidity and barometric pressure sensor on I2C.",
        "https://www.bosch-sensortec.com/products/environmental-sensors/humidity-sensors-bme280/",
        ("pressure", "temperature", "humidity"),
    ),
    SensorModel(
        4,
        "Analog Devices DS18B20",
        "1-Wire digital thermometer used as a wall or window surface probe.",
        "https://www.analog.com/en/products/ds18b20.html",
        ("surface_temperature",),
    ),
    SensorModel(
        5,
        "ESP32 ADC battery monitor",
        "Battery voltage through a resistor divider on the ESP32 ADC; charge is estimated.",
        "https://docs.espressif.com/projects/esp-idf/en/stable/esp32/api-reference/peripherals/adc_oneshot.html",
        ("battery_voltage", "battery"),
    ),
)

SENSORS_BY_ID: dict[int, SensorModel] = {s.id: s for s in SENSORS}

# Which part measures a metric on a given board; boards not listed use DEFAULT_SENSOR.
BOARD_SENSORS: dict[str, dict[str, int]] = {
    "devkitc-sht41": {"temperature": 1, "humidity": 1},
}
DEFAULT_SENSOR: dict[str, int] = {
    "temperature": 1,
    "humidity": 1,
    "surface_temperature": 4,
    "co2": 2,
    "pressure": 3,
    "battery_voltage": 5,
    "battery": 5,
}


def sensor_for(board: str, metric: str) -> int:
    return BOARD_SENSORS.get(board, {}).get(metric, DEFAULT_SENSOR[metric])


def unit_of_measurement(metric: Metric) -> dict[str, str]:
    return {
        "name": metric.unit_name,
        "symbol": metric.unit_symbol,
        "definition": metric.unit_definition,
    }
