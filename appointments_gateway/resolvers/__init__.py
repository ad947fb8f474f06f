"""Use cases between the GraphQL schema and the upstream client: what to fetch, and fetching.

Nothing here knows Strawberry or the shape of a GraphQL response: the schema hands in
plain facts (``prefetch.Wanted``, ``connections.ConnectionWants``) and builds its objects
from the records that come back, and nothing here imports the schema
(``tests/test_layers.py``).

Reads:

* ``connections.py``: the appointment connections (the root list, a patient's,
  practitioner's or business's, ``repeats``);
* ``lists.py``: every read of the appointments list, where list rows come from upstream;
* ``children.py``: one connection under many parents, as one combined list call;
* ``prefetch.py``: the calendar's batching, each selected relation in one call a page;
* ``relations.py``: the records an appointment links to, one table the rest derives from;
* ``loaders.py``: the per-request dataloaders, where rows by id come from upstream;
* ``nodes.py``: records by Relay id; ``pagination.py``: cursors and page plans;
  ``criteria.py``: filter and order, as ``q[]`` and ``sort``; ``ids.py``: global ids.

Writes: ``writes.py``, with ``write_input.py``, ``user_errors.py`` and
``idempotency.py``.  Both: ``context.py`` (the per-request ``Context``) and
``errors.py`` (the errors a client sees).
"""

from appointments_gateway.resolvers.context import Context

__all__ = ["Context"]
