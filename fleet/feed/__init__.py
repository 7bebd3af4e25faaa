"""The downstream feed: SensorThings API, SenML MQTT feed, CSV export and privacy rules."""
