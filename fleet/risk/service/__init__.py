"""The risk engine on the database: stored readings in, per-placement state and levels out.

:mod:`fleet.risk` computes; this package persists. :mod:`.update` advances each placement
from where it stopped (or recomputes from a late reading's hour), :mod:`.worker` runs that in
the background, :mod:`.queries` and :mod:`.analytics` read the results for the API and the
dashboard, always through borough scoping.
"""
