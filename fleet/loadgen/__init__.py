"""Simulated device fleets for load and fault tests: many asyncio MQTT clients in one process."""
