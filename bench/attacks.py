"""Hostile GraphQL documents, and a table of what admitting each one costs the gateway.

The documents are the shapes that froze or slowed a worker before admission became
linear (issue 10): fragments that spread the next one twice (2^n selections in about
25 bytes per n), aliases multiplied through fragments, long fragment chains, wide
selection sets, and the field repetitions that make graphql-core's overlap check
quadratic.  Tests (tests/schema/test_shape.py, tests/e2e/test_hostile.py) and this
benchmark share them.

``python -m bench.attacks`` prints, per document: its size, what admission decided, and
how long its HTTP round trip through the gateway (in process, over the in-process
sandbox) took, each text new so that nothing is cached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import httpx

__all__ = [
    "alias_fanout",
    "chain",
    "duplicate_fields",
    "families",
    "fanout",
    "sibling_fragments",
    "wide",
]


def fanout(n: int) -> str:
    """``F(i)`` spreads ``F(i-1)`` twice: 2^n selections if each spread were expanded."""
    parts = [f"query {{ ...F{n} }}", "fragment F0 on Query { __typename }"]
    parts += [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, n + 1)]
    return "\n".join(parts)


def alias_fanout(n: int) -> str:
    """Two aliased fields per level, each spreading the level below: 2^(n+1) aliases."""
    parts = [
        f"query {{ appointments(first: 1) {{ nodes {{ ...A{n} }} }} }}",
        "fragment A0 on Appointment { id }",
    ]
    parts += [
        f"fragment A{i} on Appointment {{ a: repeatedFrom {{ ...A{i - 1} }} "
        f"b: repeatedFrom {{ ...A{i - 1} }} }}"
        for i in range(1, n + 1)
    ]
    return "\n".join(parts)


def chain(n: int) -> str:
    """A chain of ``n`` fragments, each adding a field and spreading the next."""
    parts = [f"query {{ ...C{n} }}", "fragment C0 on Query { __typename }"]
    parts += [f"fragment C{i} on Query {{ version ...C{i - 1} }}" for i in range(1, n + 1)]
    return "\n".join(parts)


def wide(n: int) -> str:
    """One selection set of ``n`` fields."""
    return "{ " + " ".join(["__typename"] * n) + " }"


def duplicate_fields(n: int) -> str:
    """``n`` copies of one field with a selection: graphql-core compares every pair."""
    return "{ " + " ".join(["appointments(first: 1) { nodes { id } }"] * n) + " }"


def sibling_fragments(n: int) -> str:
    """``n`` different fragments spread side by side: every pair is compared."""
    spreads = " ".join(f"...S{i}" for i in range(n))
    fragments = " ".join(f"fragment S{i} on Query {{ __typename }}" for i in range(n))
    return f"{{ {spreads} }} {fragments}"


def families() -> Iterator[tuple[str, Callable[[int], str], tuple[int, ...]]]:
    """Each family with the sizes the table (and the e2e test) use."""
    yield "fan-out", fanout, (10, 16, 22, 30, 60)
    yield "alias fan-out", alias_fanout, (4, 8, 16)
    yield "chain", chain, (25, 50, 99, 200)
    yield "wide", wide, (500, 1000, 2000, 4000)
    yield "duplicate fields", duplicate_fields, (60, 125, 250, 500)
    yield "sibling fragments", sibling_fragments, (60, 125, 250, 500)


async def _admit(http: httpx.AsyncClient, document: str) -> tuple[float, str]:
    started = time.perf_counter()
    response = await http.post("/graphql", json={"query": document})
    elapsed = time.perf_counter() - started
    body = response.json()
    if body.get("errors"):
        error = body["errors"][0]
        return elapsed, f"{error['extensions']['code']}: {error['message'][:60]}"
    return elapsed, "runs"


def _tokens(document: str) -> int:
    from graphql.language import Lexer, Source, TokenKind

    lexer = Lexer(Source(document))
    count = 0
    while lexer.advance().kind is not TokenKind.EOF:
        count += 1
    return count


async def _main() -> None:
    from asgi_lifespan import LifespanManager

    from appointments_gateway.gateway import create_app
    from appointments_gateway.settings import Settings

    app = create_app(Settings(upstream_rate_limit=0))  # the in-process sandbox
    print("| document | n | bytes | tokens | outcome | HTTP round trip ms (best of 3) |")
    print("|---|---:|---:|---:|---|---:|")
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://127.0.0.1"
        ) as http,
    ):
        for name, make, sizes in families():
            for n in sizes:
                document = make(n)
                # A comment makes each text new: no parse or admission cache helps.
                runs = [await _admit(http, f"{document} # {k}") for k in range(3)]
                elapsed, outcome = min(runs)
                print(
                    f"| {name} | {n} | {len(document)} | {_tokens(document)} | {outcome} | "
                    f"{elapsed * 1000:.2f} |"
                )


if __name__ == "__main__":
    asyncio.run(_main())
