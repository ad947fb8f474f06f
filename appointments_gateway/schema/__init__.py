"""The GraphQL schema, built by ``build_schema()``.

Types, inputs, enums and scalars (``types.py``, ``inputs.py``, ``mutation_inputs.py``,
``arguments.py``, ``enums.py``, ``scalars.py``), the root fields (``query.py``,
``mutations.py``), the look-ahead that tells the resolvers what a query selects
(``selection.py``), error masking (``errors.py``), admission before a document runs
(``admission.py``, ``shape.py``, ``time_budget.py``, and the upstream cost bound in
``cost.py``) and the extensions that report on each operation (``extensions.py``,
``observe.py``).  Fetching is ``resolvers/``'s: the schema imports it, never the reverse.
"""

from appointments_gateway.schema.build import build_schema

__all__ = ["build_schema"]
