"""The console in headless Chromium against a real uvicorn server, Redis, PostgreSQL and worker:
runs appear live, a run's page shows its step bars and graph (running, failed, pending), retry
from the page, tenancy, and 10,000 runs paged. Set CIRCUIT_CONSOLE_SCREENSHOT=docs/console.png
to save the picture of a real run shown in the README."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
from tests.interfaces.conftest import OTHER, OWN, token

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium; see make system-deps)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def _page(browser: Any, server: str, credential: str, path: str = "#/runs") -> Any:
    """A fresh browser context signed in the way a person does: pasting a credential into the page."""
    page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{server}/{path}")
    page.fill("#token", credential)
    page.click("#auth button[type=submit]")
    return page


def _publish(server: str, type_: str, data: dict[str, Any]) -> str:
    event_id = f"console-{uuid.uuid4()}"
    body = {"id": event_id, "type": type_, "source": "console-test", "data": data}
    r = httpx.post(f"{server}/v1/events", json=body, headers={"Authorization": f"Bearer {token('producer')}"})
    assert r.status_code == 202, r.text
    return event_id


def test_live_runs_a_run_page_and_retry(server: str, browser: Any) -> None:
    from workers.runtime import runtime

    page = _page(browser, server, token("operator"))
    page.wait_for_selector("#runs")
    gate = f"gate-{uuid.uuid4()}"
    slow = _publish(server, "test.counted", {"gate": gate, "pause": 2.5})
    quick = _publish(server, "test.sequence", {"n": 2})

    # the runs appear in the list by themselves (polling), with their status colours
    row = page.locator("#runs tbody tr.run-row", has_text=slow)
    row.wait_for()
    page.locator("#runs tbody tr.run-row", has_text=quick).locator(".badge.status-succeeded").wait_for()

    # one run: the step that runs now shows as running, in the bars and in the graph
    row.click()
    page.wait_for_selector("#graph")
    page.locator('#timeline g.bar.status-running[data-step="pause"]').wait_for()
    assert "status-running" in (page.get_attribute('#graph g.node[data-step="pause"]', "class") or "")
    assert page.is_enabled("#cancel") and not page.is_enabled("#retry")
    assert page.locator("#event-box").inner_text().count(gate) == 1

    # it fails at the closed gate: failed step, pending step after it, the error shown
    page.locator("#run-status .badge.status-failed").wait_for(timeout=20_000)
    bars = {b.get_attribute("data-step"): b.get_attribute("class") for b in page.locator("#timeline g.bar").all()}
    assert bars.keys() == {"one", "pause", "two"}
    assert "status-succeeded" in bars["one"] and "status-failed" in bars["two"]
    nodes = {n.get_attribute("data-step"): n.get_attribute("class") for n in page.locator("#graph g.node").all()}
    assert list(nodes) == ["one", "pause", "two", "three"]
    assert "status-failed" in nodes["two"] and "status-pending" in nodes["three"]
    assert f"gate {gate} is closed" in page.locator("#steps").inner_text()

    # open the gate and retry from the page: the run goes running, then succeeded
    runtime().redis.set(gate, "1")
    page.click("#retry")
    page.locator("#notice", has_text="Retried").wait_for()
    page.locator("#run-status .badge.status-running, #run-status .badge.status-succeeded").wait_for()
    page.locator("#run-status .badge.status-succeeded").wait_for(timeout=20_000)
    page.locator('#graph g.node.status-succeeded[data-step="three"]').wait_for()
    shot = os.environ.get("CIRCUIT_CONSOLE_SCREENSHOT")
    if shot:
        page.screenshot(path=str(ROOT / shot), full_page=True)

    # the circuits view and the circuit's own page with its graph and last runs
    page.click("nav a[data-view=circuits]")
    page.click('#circuits tr[data-name="t-counted"]')
    page.locator('#circuit-graph g.node[data-step="three"]').wait_for()
    page.click("nav a[data-view=dead]")
    page.wait_for_selector("#dead")
    page.context.close()


def test_a_viewer_of_another_tenant_sees_nothing(server: str, browser: Any) -> None:
    event_id = _publish(server, "test.sequence", {"n": 1})
    own = _page(browser, server, token("viewer"), f"#/runs?event={event_id}")
    own.locator("#runs tbody tr.run-row").first.wait_for()
    run_id = own.locator("#runs tbody tr.run-row").first.get_attribute("data-id")
    own.context.close()

    other = _page(browser, server, token("viewer", OTHER), f"#/runs?event={event_id}")
    other.wait_for_selector("#run-count")
    other.wait_for_timeout(1500)  # a poll or two
    assert other.locator("#runs tbody tr").count() == 0
    other.goto(f"{server}/#/run/{run_id}")
    other.locator("#notice.error").wait_for()
    assert "no run" in other.locator("#notice").inner_text()
    assert other.locator("#timeline g.bar").count() == 0
    other.context.close()

    nobody = browser.new_context().new_page()
    nobody.goto(f"{server}/#/runs")
    assert "Sign in" in nobody.locator("#notice.error").inner_text()
    nobody.context.close()


def test_ten_thousand_runs_are_paged(server: str, browser: Any, ledger: Any) -> None:
    from storage.ledger import apply_batch

    tenant = f"big-{uuid.uuid4().hex[:6]}"
    t0 = time.time() - 20_000
    apply_batch(
        ledger,
        [
            {"k": "run", "run_id": f"{tenant}-{i:05d}", "circuit": "t-sequence", "version": "1",
             "event_id": f"{tenant}-e{i}", "at": t0 + i, "tenant": tenant}
            for i in range(10_000)
        ],
    )  # fmt: skip
    page = _page(browser, server, token("viewer", tenant))
    started = time.monotonic()
    page.locator("#runs tbody tr.run-row").nth(99).wait_for()
    first = time.monotonic() - started
    assert page.locator("#runs tbody tr.run-row").count() == 100
    assert page.locator("#runs tbody tr.run-row").first.get_attribute("data-id") == f"{tenant}-09999"
    for pages in (2, 3):  # scrolling to the end loads the next page
        page.locator("#more").scroll_into_view_if_needed()
        page.locator("#runs tbody tr.run-row").nth(pages * 100 - 1).wait_for()
    assert page.locator("#runs tbody tr.run-row").count() == 300
    assert first < 3.0, f"the first page took {first:.2f}s"
    page.context.close()
    assert OWN != tenant
