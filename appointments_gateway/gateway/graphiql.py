"""GraphiQL served by the gateway itself: no CDN, no third-party script, a strict CSP.

Strawberry's stock page loads React and GraphiQL from a public CDN: it is blank on a
machine without internet, and it runs someone else's script in a page that shows patient
data.  Here the page loads only files the gateway serves under ``/graphiql/static/``:

* React, ReactDOM, GraphiQL and its explorer plugin from the
  ``graphene-django-graphiql-static`` package (installed from the registry, pinned
  exactly in pyproject.toml, never committed); we read its data files only.
* the vendor package's ``graphql-ws`` client (the global ``graphqlWs``), for
  subscriptions over graphql-transport-ws on the same origin's ``/graphql``.
* ``init.js``, our own script (``static/graphiql-init.js`` in this package), which renders
  GraphiQL against ``/graphql`` on the same origin: queries and mutations over HTTP,
  subscriptions over the WebSocket, whose ``connection_init`` carries the Headers pane
  (an ``Authorization`` there reaches both).

The example operations (a query tab and a subscription tab) reach the script through
``<script type="application/json">`` blocks, which the browser never executes, so the
page holds no inline executable script and ``script-src 'self'`` suffices.  Every file
is read once, when the app is built.  ``connect-src 'self'`` covers the WebSocket too
(CSP Level 3 matches ``ws:``/``wss:`` of the page's own host).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "PAGE_HEADERS",
    "STATIC_PREFIX",
    "GraphiQLAssets",
    "graphiql_page",
    "page_response",
]

#: Where the assets are served; the route is ``STATIC_PREFIX + "{name}"``.
STATIC_PREFIX = "/graphiql/static/"

_VENDOR_PACKAGE = "graphene_django_graphiql_static"
_JS = "text/javascript; charset=utf-8"
_CSS = "text/css; charset=utf-8"

#: The allow-list: served name -> (package, path inside it, content type).  Nothing
#: else in either package is reachable.  The vendor package's fetch polyfill is left
#: out: every supported browser has fetch.
_FILES: Mapping[str, tuple[str, tuple[str, ...], str]] = {
    "react.production.min.js": (
        _VENDOR_PACKAGE,
        ("static", _VENDOR_PACKAGE, "react.production.min.js"),
        _JS,
    ),
    "react-dom.production.min.js": (
        _VENDOR_PACKAGE,
        ("static", _VENDOR_PACKAGE, "react-dom.production.min.js"),
        _JS,
    ),
    "graphiql.min.js": (_VENDOR_PACKAGE, ("static", _VENDOR_PACKAGE, "graphiql.min.js"), _JS),
    "graphiql.min.css": (_VENDOR_PACKAGE, ("static", _VENDOR_PACKAGE, "graphiql.min.css"), _CSS),
    "graphiql-plugin-explorer.umd.js": (
        _VENDOR_PACKAGE,
        ("static", _VENDOR_PACKAGE, "graphiql-plugin-explorer.umd.js"),
        _JS,
    ),
    "graphiql-plugin-explorer.css": (
        _VENDOR_PACKAGE,
        ("static", _VENDOR_PACKAGE, "style.css"),
        _CSS,
    ),
    "graphql-ws.min.js": (
        _VENDOR_PACKAGE,
        ("static", _VENDOR_PACKAGE, "graphql-ws.min.js"),
        _JS,
    ),
    "init.js": ("appointments_gateway.gateway", ("static", "graphiql-init.js"), _JS),
}

#: The order the page loads them in: each UMD bundle reads the globals of those before it.
_STYLESHEETS = ("graphiql.min.css", "graphiql-plugin-explorer.css")
_SCRIPTS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "graphiql-plugin-explorer.umd.js",
    "graphql-ws.min.js",
    "init.js",
)

#: The page's policy.  ``style-src`` needs ``'unsafe-inline'``: GraphiQL, CodeMirror and
#: React set ``style`` attributes (sizes of panes, positions of the cursor and hints), and
#: the page has one small ``<style>`` block; scripts stay strictly same-origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    "script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; "
    "img-src 'self' data:; "
    "font-src 'self' data:; "
    "base-uri 'none'; "
    "form-action 'none'; "
    "frame-ancestors 'none'"
)

PAGE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_STATIC_HEADERS: Mapping[str, str] = {
    "Cache-Control": "public, max-age=86400, immutable",
    "X-Content-Type-Options": "nosniff",
}


def _json_for_script_block(value: object) -> str:
    """JSON that cannot end its ``<script>`` block early nor open a comment in it."""
    return json.dumps(value).replace("</", "<\\/").replace("<!--", "<\\u0021--")


def graphiql_page(example_query: str, example_subscription: str | None = None) -> str:
    """The HTML page: local stylesheets and scripts, the examples as inert JSON."""
    subscription = (
        ""
        if example_subscription is None
        else '  <script type="application/json" id="example-subscription">'
        f"{_json_for_script_block(example_subscription)}</script>\n"
    )
    links = "\n".join(
        f'  <link rel="stylesheet" href="{STATIC_PREFIX}{name}">' for name in _STYLESHEETS
    )
    scripts = "\n".join(f'  <script src="{STATIC_PREFIX}{name}"></script>' for name in _SCRIPTS)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>GraphiQL · appointments gateway</title>
{links}
  <style>html, body, #graphiql {{ height: 100%; margin: 0; overflow: hidden; }}</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script type="application/json" id="example">{_json_for_script_block(example_query)}</script>
{subscription}{scripts}
</body>
</html>
"""


@dataclass(frozen=True)
class GraphiQLAssets:
    """The allow-listed files, read into memory once; ``endpoint`` serves them."""

    files: Mapping[str, tuple[bytes, str]]

    @classmethod
    def load(cls) -> GraphiQLAssets:
        loaded: dict[str, tuple[bytes, str]] = {}
        for name, (package, parts, content_type) in _FILES.items():
            loaded[name] = (files(package).joinpath(*parts).read_bytes(), content_type)
        return cls(loaded)

    async def endpoint(self, request: Request) -> Response:
        found = self.files.get(request.path_params["name"])
        if found is None:
            return PlainTextResponse("Not Found", status_code=404)
        body, content_type = found
        return Response(body, headers=dict(_STATIC_HEADERS), media_type=content_type)


def page_response(html: str) -> HTMLResponse:
    return HTMLResponse(html, headers=dict(PAGE_HEADERS))
