"""OGC SensorThings API v1.1 read side: data model, in-memory entities, SQL Observations."""
