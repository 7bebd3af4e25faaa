"""Migrations build exactly the models' schema, upgrade populated databases and go back down."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from fleet.core.db import alembic_config, make_engine
from fleet.models import Base
from fleet.models.device import DEVICE_FILLFACTOR


def test_head_matches_models_and_round_trips(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    cfg = alembic_config(empty_database_url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")
            conn.execute(
                text(
                    "insert into devices (device_id, board, status, created_at) "
                    "values ('cs-old-0001', 'devkitc-sht41', 'online', CURRENT_TIMESTAMP)"
                )
            )
            command.upgrade(cfg, "head")
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            assert diff == []
            if conn.dialect.name == "postgresql":
                # Storage parameters are not compared above; the ingest's HOT updates need it.
                options = conn.execute(
                    text("select reloptions from pg_class where relname = 'devices'")
                ).scalar()
                assert options == [f"fillfactor={DEVICE_FILLFACTOR}"]
            row = conn.execute(text("select state, power_mode from devices")).one()
            assert tuple(row) == ("unknown", "mains")
            command.downgrade(cfg, "base")
            tables = set(conn.dialect.get_table_names(conn)) - {"alembic_version"}
            assert tables == set()
    finally:
        engine.dispose()
