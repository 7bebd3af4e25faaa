"""Damp and mould risk computation.

Pure functions and small state objects with no database or web dependency, so the same code
scores a live stream of readings (one hour or one sample at a time, with state persisted
between calls) and recomputes history in bulk, and can be tested in isolation.

Modules:

- :mod:`fleet.risk.psychro` -- Magnus vapour pressure, dew point, surface humidity.
- :mod:`fleet.risk.vtt` -- VTT (Hukka-Viitanen) mould growth index.
- :mod:`fleet.risk.lim` -- lowest isopleth for mould (LIM) check.
- :mod:`fleet.risk.rules` -- Approved Document F, BS 5250 and CO2 rules over time series
  (engines in :mod:`fleet.risk.rolling`, evidence records in :mod:`fleet.risk.violation`).
- :mod:`fleet.risk.level` -- combined property risk level with evidence.
- :mod:`fleet.risk.workdays` -- working days and Awaab's Law deadlines.
- :mod:`fleet.risk.bench` -- throughput measurement.
"""
