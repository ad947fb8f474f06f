"""GraphiQL in a real headless browser, with no network beyond the gateway.

Debian's chromium, driven by Playwright's bundled driver (no browser is downloaded).  The
gateway runs as a real server on 127.0.0.1 (uvicorn in a thread, in-process sandbox
behind it); every request the page makes to any other origin is aborted and recorded.
The test runs the example operation with GraphiQL's run button and waits for its data;
another runs the subscription tab over a WebSocket and sees a change arrive.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from appointments_gateway.gateway import create_app
from appointments_gateway.settings import Settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
        reason="chromium is not installed (apt-get install chromium); CI installs it",
    ),
]


@pytest.fixture
def gateway_origin() -> Iterator[str]:
    """The gateway served by uvicorn on a free loopback port, in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # WebSockets on: GraphiQL runs subscriptions over graphql-transport-ws.
    config = uvicorn.Config(
        create_app(Settings(sync_interval=0.2, sync_start_after=0)),
        log_config=None,
        lifespan="on",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the gateway did not start"
        assert thread.is_alive(), "the gateway stopped while starting"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def test_graphiql_runs_the_example_with_no_network_beyond_the_gateway(gateway_origin):
    from playwright.sync_api import ConsoleMessage, Route, sync_playwright

    left: list[str] = []
    console: list[str] = []
    page_errors: list[str] = []

    def only_the_gateway(route: Route) -> None:
        url = route.request.url
        if url == gateway_origin or url.startswith(gateway_origin + "/"):
            route.continue_()
        else:
            left.append(url)
            route.abort()

    def on_console(message: ConsoleMessage) -> None:
        console.append(f"{message.type}: {message.text}")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_the_gateway)
            # Injected by the driver (outside the page's CSP): any violation is logged.
            page.add_init_script(
                "document.addEventListener('securitypolicyviolation', e => console.error("
                "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
            )
            page.on("console", on_console)
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.goto(gateway_origin + "/graphql", wait_until="load")
            run = page.locator(".graphiql-execute-button")
            run.wait_for(state="visible", timeout=20_000)
            page.wait_for_function(
                "() => document.querySelector('.graphiql-query-editor')"
                "?.textContent.includes('query Calendar')",
                timeout=20_000,
            )
            run.click()
            result = page.locator(".result-window")
            result.get_by_text('"totalCount"').wait_for(timeout=30_000)
            shown = result.inner_text()
        finally:
            browser.close()

    assert '"appointments"' in shown
    assert '"errors"' not in shown
    assert left == [], f"requests left the gateway's origin: {left}"
    assert page_errors == []
    violations = [m for m in console if "CSP violation" in m or "Content Security Policy" in m]
    assert violations == [], violations
    assert not [m for m in console if m.startswith("error")], console


def test_graphiql_runs_the_subscription_example_over_a_websocket(gateway_origin):
    import httpx
    from playwright.sync_api import ConsoleMessage, sync_playwright

    console: list[str] = []
    page_errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        console.append(f"{message.type}: {message.text}")

    with sync_playwright() as playwright, httpx.Client(base_url=gateway_origin) as http:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("console", on_console)
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.add_init_script(
                "document.addEventListener('securitypolicyviolation', e => console.error("
                "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
            )
            page.goto(gateway_origin + "/graphql", wait_until="load")
            tabs = page.locator(".graphiql-tab")
            tabs.nth(1).wait_for(state="visible", timeout=20_000)
            tabs.nth(1).click()
            page.wait_for_function(
                "() => document.querySelector('.graphiql-query-editor')"
                "?.textContent.includes('subscription LiveCalendar')",
                timeout=20_000,
            )
            page.locator(".graphiql-execute-button").click()
            result = page.locator(".result-window")
            first = http.post(
                "/graphql", json={"query": "{ appointments(first: 1) { nodes { id } } }"}
            ).json()["data"]["appointments"]["nodes"][0]["id"]
            mutation = (
                "mutation($id: ID!) { updateAppointment(input: {id: $id, notes: "
                '"Seen in GraphiQL"}) { userErrors { code } } }'
            )
            deadline = time.monotonic() + 30
            shown = ""
            while '"UPDATED"' not in shown and time.monotonic() < deadline:
                # Until the socket is up and subscribed, a change may go unseen: again.
                http.post("/graphql", json={"query": mutation, "variables": {"id": first}})
                page.wait_for_timeout(500)
                shown = result.inner_text()
        finally:
            browser.close()

    assert '"UPDATED"' in shown, shown
    assert '"appointmentChanged"' in shown
    assert page_errors == []
    violations = [m for m in console if "CSP violation" in m or "Content Security Policy" in m]
    assert violations == [], violations
