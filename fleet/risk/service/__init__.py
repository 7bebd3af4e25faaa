"""The risk engine on the database: stored readings in, per-placement state and levels out.

:mod:`fleet.risk` computes; this package persists. :mod:`.update` advances one placement from
where it stopped (or recomputes from a late reading's hour), :mod:`.batch` does the same for a
batch of properties with a few set-based queries, :mod:`.levels` turns placement states into
property levels, :mod:`.sweep` runs it all (``RiskWorker`` in the background), and
:mod:`.queries` and :mod:`.analytics` read the results for the API and the dashboard, always
through borough scoping.
"""
