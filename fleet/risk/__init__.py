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
- :mod:`fleet.risk.hourly` -- hourly means and derived values (dew point, surface RH).
- :mod:`fleet.risk.tracker` -- one placement's incremental state, serialisable.
- :mod:`fleet.risk.compare` -- before/after comparison over equal windows.
- :mod:`fleet.risk.bench` -- throughput measurement.

:mod:`fleet.risk.service` is the exception: it runs these on the database (stored readings
in, per-placement state, property levels and cases out).
"""
