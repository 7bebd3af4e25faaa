"""Damp and mould cases with Awaab's Law deadlines.

A case is opened when a property's risk reaches the configured level (or by staff), and
records the dates landlords must evidence: when they became aware, the investigation, the
written summary to the tenant, safety work, further works, and when works were completed.
Deadlines come from :mod:`fleet.risk.workdays`; every step is audited; after works, the case
compares the risk before and after over equal windows.

- :mod:`.service` -- open, link, record steps, close (borough-scoped).
- :mod:`.deadlines` -- each step's deadline and whether it is pending, done, late or overdue.
- :mod:`.policy` -- further works or none; when sensor risk opens a case again after a close.
- :mod:`.compare` -- before/after comparison on the stored hourly risk data.
- :mod:`.evidence` -- the printable evidence document of a case or property.
"""
