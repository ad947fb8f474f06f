"""GraphiQL from the gateway itself: a strict CSP, same-origin assets only, over HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest

from appointments_gateway.gateway import create_app
from appointments_gateway.gateway.graphiql import CONTENT_SECURITY_POLICY, graphiql_page
from appointments_gateway.schema.example import EXAMPLE_QUERY
from appointments_gateway.settings import Settings

HTML = {"Accept": "text/html"}


class Page(HTMLParser):
    """Every URL the page references, and every <script> with its type and body."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self._in_script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "action", "data", "poster", "srcset") and value:
                self.urls.append(value)
            assert not name.startswith("on"), f"inline event handler {name} on <{tag}>"
        if tag == "script":
            self._in_script = {**dict(attrs), "body": ""}
            self.scripts.append(self._in_script)

    def handle_data(self, data: str) -> None:
        if self._in_script is not None:
            self._in_script["body"] = (self._in_script["body"] or "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def example_of(html: str) -> str:
    """The example operation the page hands its init script."""
    (block,) = [s for s in parse(html).scripts if s.get("id") == "example"]
    assert block["type"] == "application/json"
    example = json.loads(block["body"] or "")
    assert isinstance(example, str)
    return example


@pytest.fixture
async def gateway(serve) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(Settings())) as client:
        yield client


async def test_the_page_has_a_strict_content_security_policy(gateway):
    response = await gateway.get("/graphql", headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_the_page_references_only_same_origin_urls(gateway):
    html = (await gateway.get("/graphql", headers=HTML)).text
    page = parse(html)
    assert page.urls, "the page references no assets"
    for url in page.urls:
        parts = urlsplit(url)
        assert not parts.scheme, url
        assert not parts.netloc, url
        assert url.startswith("/graphiql/static/"), url
    assert "cdn" not in html.lower()
    assert "unpkg" not in html.lower()


async def test_the_page_has_no_inline_executable_script(gateway):
    page = parse((await gateway.get("/graphql", headers=HTML)).text)
    for script in page.scripts:
        if script.get("src"):
            assert not (script["body"] or "").strip()
        else:
            assert script.get("type") == "application/json", script


async def test_the_page_opens_with_the_example(gateway):
    assert example_of((await gateway.get("/graphql", headers=HTML)).text) == EXAMPLE_QUERY


def test_the_example_cannot_close_its_script_block():
    hostile = "query { x } # </script><script>alert(1)</script> <!-- <script>"
    html = graphiql_page(hostile)
    assert "</script><script>alert" not in html
    assert example_of(html) == hostile
    assert len(parse(html).scripts) == len(parse(graphiql_page("{ x }")).scripts)


async def test_every_referenced_static_file_is_served_with_its_type(gateway):
    page = parse((await gateway.get("/graphql", headers=HTML)).text)
    expected = {".js": "text/javascript", ".css": "text/css"}
    for url in page.urls:
        response = await gateway.get(url)
        assert response.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert response.headers["content-type"].split(";")[0] == expected[suffix], url
        assert response.headers["cache-control"] == "public, max-age=86400, immutable"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert len(response.content) > 500, url
    sizes = {url: len((await gateway.get(url)).content) for url in page.urls}
    assert sizes["/graphiql/static/graphiql.min.js"] > 500_000
    assert sizes["/graphiql/static/react-dom.production.min.js"] > 100_000
    init = (await gateway.get("/graphiql/static/init.js")).text
    assert "createFetcher" in init
    assert 'getElementById("example")' in init


@pytest.mark.parametrize(
    "name",
    [
        "nope.js",
        "views.py",
        "__init__.py",
        "fetch.umd.js",  # in the vendor package, but not on the allow-list
        "graphiql-init.js",  # our file under its package name, not its served name
        "..%2F..%2Fgraphql.py",
        "..%2Fgraphiql.py",
    ],
)
async def test_unknown_static_names_are_not_found(gateway, name):
    response = await gateway.get("/graphiql/static/" + name)
    assert response.status_code == 404
    assert b"import" not in response.content


async def test_paths_below_the_static_route_are_not_found(gateway):
    for path in ("/graphiql/static/", "/graphiql/static/a/b.js", "/graphiql/static/../app.py"):
        assert (await gateway.get(path)).status_code == 404, path


async def test_graphiql_off_serves_no_page_and_no_static_route(serve):
    async with serve(create_app(Settings(graphiql=False))) as client:
        page = await client.get("/graphql", headers=HTML)
        assets = [
            await client.get("/graphiql/static/" + name)
            for name in ("graphiql.min.js", "init.js", "graphiql.min.css")
        ]
    assert page.status_code == 404
    assert "content-security-policy" not in page.headers
    assert [a.status_code for a in assets] == [404, 404, 404]
