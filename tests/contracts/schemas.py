"""Load the documented contracts (AsyncAPI + JSON Schemas) for tests."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

DOCS = Path(__file__).resolve().parents[2] / "docs"


@cache
def asyncapi() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    return doc


def schema_for_topic_leaf(leaf: str) -> Draft202012Validator:
    """The validator of the message documented for `cs/v1/d/{device_id}/<leaf>`."""
    doc = asyncapi()
    for channel in doc["channels"].values():
        if channel["address"] == f"cs/v1/d/{{device_id}}/{leaf}":
            (message,) = channel["messages"].values()
            name = message["$ref"].rsplit("/", 1)[1]
            ref = doc["components"]["messages"][name]["payload"]["schema"]["$ref"]
            return Draft202012Validator(json.loads((DOCS / ref).read_text()))
    raise KeyError(f"no channel for leaf {leaf!r} in docs/asyncapi.yaml")
