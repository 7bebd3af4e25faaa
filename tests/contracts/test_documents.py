"""The contract documents are well-formed and match the fleet's own constants."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from fleet.ingest.profile import METRIC_UNITS
from tests.contracts.schemas import DOCS, asyncapi, schema_for_topic_leaf
from tests.fleet.packs import telemetry

SCHEMAS = sorted((DOCS / "schemas").glob("*.schema.json"))


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_each_schema_is_valid_draft_2020_12(path) -> None:  # type: ignore[no-untyped-def]
    Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_asyncapi_references_resolve() -> None:
    doc = asyncapi()
    assert doc["asyncapi"].startswith("3.")
    for op in doc["operations"].values():
        channel = op["channel"]["$ref"].rsplit("/", 1)[1]
        assert channel in doc["channels"]
    for message in doc["components"]["messages"].values():
        assert (DOCS / message["payload"]["schema"]["$ref"]).exists()


def test_every_device_topic_is_documented() -> None:
    from fleet.ingest.topics import DOWNSTREAM_LEAVES, Upstream

    addresses = {c["address"] for c in asyncapi()["channels"].values()}
    for leaf in [u.value for u in Upstream] + sorted(DOWNSTREAM_LEAVES - {"ota"}):
        assert f"cs/v1/d/{{device_id}}/{leaf}" in addresses


def test_schema_units_match_the_ingest_profile() -> None:
    schema = json.loads((DOCS / "schemas" / "senml-telemetry.schema.json").read_text())
    record = schema["$defs"]["record"]
    assert set(record["properties"]["n"]["enum"]) == set(METRIC_UNITS)
    units = {
        rule["if"]["properties"]["n"]["const"]: rule["then"]["properties"]["u"]["const"]
        for rule in record["allOf"]
    }
    assert units == METRIC_UNITS


def test_fleet_test_packs_validate() -> None:
    pack = json.loads(telemetry("cs-test-0001", 1763850000, [(0, 20.0, 50.0), (900, 20.5, 51)]))
    schema_for_topic_leaf("up").validate(pack)
    bad = [{**pack[0], "u": "K"}]
    assert not schema_for_topic_leaf("up").is_valid(bad)
