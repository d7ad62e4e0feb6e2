"""The dashboard in headless Chromium (Debian's package, driven by Playwright) against a demo
running in real time: live values move, and every figure shown matches the API.

Screenshots go to tests/artifacts/ (dashboard.png, dashboard-phone.png).

Registry names: a panel named in ``ps100_panels`` (``sunarchive panels set``, which asks the
running demo) is shown by that name, its series name the tooltip; a rename shows after a
reload.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.cli import clean_env, cli
from tests.support.ports import free_port
from tests.support.serving import wait_serving

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parent / "artifacts"
TOKEN = "dashboard-reader"
WRITE_TOKEN = "dashboard-writer"
TOKENS = {"SUNARCHIVE_HTTP_READ_TOKENS": json.dumps([TOKEN]),
          "SUNARCHIVE_HTTP_WRITE_TOKENS": json.dumps([WRITE_TOKEN])}
TIMEZONE = "Europe/Berlin"
TODAY = "2026-06-21"
PREFILL_START = f"{TODAY}T08:00:00+02:00"   # four hours stored as fast as possible first,
LIVE_START = f"{TODAY}T12:00:00+02:00"      # then real time from noon, when the sun shines
PANELS = 3
MEASUREMENT = "ps100_readings"
CHROMIUM_FLAGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"]
PANEL_VALUES = """() => Object.fromEntries(
    [...document.querySelectorAll('[data-testid^="PREFIX-"]')].map(e =>
        [e.dataset.testid.slice('PREFIX-'.length),
         {value: e.dataset.value, text: e.textContent, time: e.dataset.time,
          samples: e.dataset.samples}]))"""


def chromium_path() -> str:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        pytest.fail("Chromium is not installed (no `chromium` on PATH, no /usr/bin/chromium): "
                    "`make test` installs it (Debian package chromium) before the tests run",
                    pytrace=False)
    return found


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the demo's store ``d.duckdb``."""
    return tmp_path_factory.mktemp("dashboard")


@pytest.fixture(scope="module")
def server(demo_folder: Path) -> Iterator[str]:
    """A real-time demo of three panels, with four hours of the same day stored before it."""
    folder = demo_folder
    db = folder / "d.duckdb"
    cli("demo", "--db", str(db), "--no-http", "--no-console", "--panels", str(PANELS),
        "--speed", "0", "--duration", str(4 * 3600), "--start", PREFILL_START,
        "--timezone", TIMEZONE, cwd=folder)
    port = free_port()
    env = clean_env(TOKENS)
    log = (folder / "demo.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "sunarchive", "demo", "--db", str(db), "--http-port", str(port),
         "--no-console", "--panels", str(PANELS), "--duration", "600", "--start", LIVE_START,
         "--timezone", TIMEZONE],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_serving(url, process, folder / "demo.log")
        yield url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def api(url: str, path: str, **params: Any) -> Any:
    response = httpx.get(url + path, params=params, timeout=10,
                         headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    return response.json()


def open_dashboard(browser: Browser, url: str, errors: list[str], **context: Any) -> Page:
    """The dashboard with the token in the fragment, once live values and the first refresh
    are shown."""
    page = browser.new_context(**context).new_page()
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{url}/#token={TOKEN}")
    page.wait_for_function("() => document.querySelector('[data-testid=\"total-power\"]')"
                           ".dataset.value !== undefined && document.querySelector("
                           "'[data-testid=\"today-kwh\"]').dataset.value !== undefined",
                           timeout=20_000)
    return page


def panel_values(page: Page, prefix: str) -> dict[str, dict[str, Any]]:
    values: dict[str, dict[str, Any]] = page.evaluate(PANEL_VALUES.replace("PREFIX", prefix))
    return values


def today_energy(url: str) -> dict[str, Any]:
    rows = api(url, "/api/v1/energy", measurement=MEASUREMENT, period="day",
               start=f"{TODAY}T00:00:00+02:00", end="2026-06-22T00:00:00+02:00")["rows"]
    assert [r["period"] for r in rows] == [TODAY]
    row: dict[str, Any] = rows[0]
    return row


def today_samples(url: str) -> dict[str, int]:
    body = api(url, f"/api/v1/measurements/{MEASUREMENT}", tier="5min", fields="power",
               start=f"{TODAY}T00:00:00+02:00", end="2026-06-22T00:00:00+02:00")
    out: dict[str, int] = {}
    for row in body["rows"]:
        record = dict(zip(body["columns"], row, strict=True))
        out[record["panel_id"]] = out.get(record["panel_id"], 0) + record["sample_count"]
    return out


def same_second(a: str, b: str) -> bool:
    return datetime.fromisoformat(a) == datetime.fromisoformat(b)


def test_dashboard_shows_what_the_api_says(server: str, browser: Browser) -> None:
    errors: list[str] = []
    page = open_dashboard(browser, server, errors, viewport={"width": 1280, "height": 900})
    assert page.evaluate("() => [location.hash, sessionStorage.getItem('sunarchive-token')]"
                         ) == ["", TOKEN], "the token moves from the URL to sessionStorage"
    assert page.evaluate("() => window.dashboard.state.timezone") == TIMEZONE

    # live: every panel's power moves with the WebSocket feed, about once a second
    seen: dict[str, set[tuple[str, str]]] = {}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for name, shown in panel_values(page, "panel-power").items():
            seen.setdefault(name, set()).add((shown["time"], shown["value"]))
        if seen and all(len({v for _, v in pairs}) >= 2 and len({t for t, _ in pairs}) >= 2
                        for pairs in seen.values()):
            break
        page.wait_for_timeout(250)
    else:
        pytest.fail(f"live power did not move: {seen}")
    assert page.get_attribute('[data-testid="connection"]', "class") == "connection live"

    # one panel shown per series, in every list
    series = api(server, "/api/v1/series")
    names = {s["tags"]["panel_id"] for s in series if s["measurement"] == MEASUREMENT}
    assert len(names) == PANELS
    for prefix in ("panel-power", "panel-kwh", "completeness"):
        assert set(panel_values(page, prefix)) == names, prefix

    # live power per panel and the total equal /api/v1/latest read at the same second
    for _ in range(40):
        before = panel_values(page, "panel-power")
        total = page.evaluate("() => document.querySelector('[data-testid=\"total-power\"]')"
                              ".dataset.value")
        latest = {r["tags"]["panel_id"]: r for r in
                  api(server, "/api/v1/latest", measurement=MEASUREMENT)}
        after = panel_values(page, "panel-power")
        if before == after and all(same_second(before[n]["time"], latest[n]["time"])
                                   for n in names):
            break
        page.wait_for_timeout(150)
    else:
        pytest.fail("never read the page and /api/v1/latest within the same second")
    for name in names:
        watts = latest[name]["values"]["power_avg"]
        assert watts > 0, "the simulated sun shines at noon"
        assert float(before[name]["value"]) == pytest.approx(watts, abs=1e-9)
        assert before[name]["text"] == f"{watts:.1f} W"
    assert float(total) == pytest.approx(sum(r["values"]["power_avg"] for r in latest.values()),
                                         abs=1e-6)

    # today's kWh (per panel and total) and sample counts equal the API's, read just before
    # and just after a refresh of the page (energy only grows)
    energy_before, samples_before = today_energy(server), today_samples(server)
    page.evaluate("() => window.dashboard.refresh()")
    kwh = panel_values(page, "panel-kwh")
    total_kwh = page.get_attribute('[data-testid="today-kwh"]', "data-value")
    total_text = page.text_content('[data-testid="today-kwh"]') or ""
    completeness = panel_values(page, "completeness")
    energy_after, samples_after = today_energy(server), today_samples(server)
    assert energy_before["total_kwh"] > 0.3, "four hours of sun make some energy"
    for name in names:
        kwh_shown = float(kwh[name]["value"])
        assert (energy_before["series"][name] - 1e-9 <= kwh_shown
                <= energy_after["series"][name] + 1e-9)
        assert float(kwh[name]["text"].removesuffix(" kWh")) == pytest.approx(kwh_shown, abs=5e-4)
        samples = int(completeness[name]["samples"])
        assert samples_before[name] <= samples <= samples_after[name]
        assert 0.95 <= float(completeness[name]["value"]) <= 1.0, completeness[name]
    assert (energy_before["total_kwh"] - 1e-9 <= float(total_kwh or "nan")
            <= energy_after["total_kwh"] + 1e-9)
    assert float(total_text.removesuffix(" kWh")) == pytest.approx(float(total_kwh or "nan"),
                                                                   abs=5e-4)

    # events: one line per event (or one saying there are none); charts are drawn
    events = api(server, "/api/v1/events", limit=8)
    assert page.locator('[data-testid="events"] li').count() == max(1, len(events))
    for chart in ("today-chart", "days-chart"):
        inked = page.evaluate(f"""() => {{
            const c = document.querySelector('[data-testid="{chart}"]');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }}""")
        assert inked > 2000, f"{chart} looks empty ({inked} pixels drawn)"
    assert TODAY[-2:] in (page.text_content('[data-testid="day"]') or "")

    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_function("() => window.dashboard.state.recent.length >= 8", timeout=20_000)
    page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)

    phone = open_dashboard(browser, server, errors, viewport={"width": 390, "height": 844},
                           device_scale_factor=2, is_mobile=True, has_touch=True)
    phone.wait_for_timeout(1500)
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390, \
        "the page scrolls sideways on a phone"
    assert phone.locator('[data-testid^="panel-power-"]').count() == PANELS
    phone.screenshot(path=ARTIFACTS / "dashboard-phone.png", full_page=True)
    assert errors == []


LABELS = """(list) => [...document.querySelectorAll(`[data-testid="${list}"] li`)].map(li =>
    [li.dataset.name, li.querySelector('.name').textContent, li.querySelector('.name').title])"""


def rename(folder: Path, panel: str, name: str) -> None:
    """``sunarchive panels set`` on the demo's store: the command asks the running demo."""
    result = cli("panels", "set", panel, f"name={name}", "--db", str(folder / "d.duckdb"),
                 env=TOKENS, cwd=folder)
    assert "updated (by the running instance)" in result.stdout, result.stdout


def test_dashboard_shows_registry_names(server: str, demo_folder: Path,
                                        browser: Browser) -> None:
    errors: list[str] = []
    rename(demo_folder, "panel_1", "Roof east")
    try:
        assert api(server, "/api/v1/series/names", measurement=MEASUREMENT)["names"] == [
            {"tags": {"panel_id": "panel_1"}, "name": "Roof east", "registry": "ps100_panels",
             "id": "panel_1"}]
        page = open_dashboard(browser, server, errors, viewport={"width": 1280, "height": 900})
        expected = [["panel_1", "Roof east", "panel_1"], ["panel_2", "panel_2", ""],
                    ["panel_3", "panel_3", ""]]
        for listing in ("live-panels", "panel-kwh", "completeness"):
            page.wait_for_function(f"() => JSON.stringify(({LABELS})('{listing}')) === "
                                   f"'{json.dumps(expected, separators=(',', ':'))}'",
                                   timeout=20_000)
        # the values stay keyed by the series name
        assert set(panel_values(page, "panel-power")) == {"panel_1", "panel_2", "panel_3"}
        assert "Roof east" in (page.text_content("#today-legend") or "")
        # renamed while the page is open: the next refresh shows it; a reload too
        rename(demo_folder, "panel_1", "Roof west")
        page.evaluate("() => window.dashboard.refresh()")
        assert page.evaluate(f"({LABELS})('live-panels')")[0] == \
            ["panel_1", "Roof west", "panel_1"]
        page.reload()
        page.wait_for_function(f"() => ({LABELS})('panel-kwh')[0]?.[1] === 'Roof west'",
                               timeout=20_000)
        page.close()
    finally:
        rename(demo_folder, "panel_1", "")    # back to its id: the other tests' names
    assert errors == []


def test_dashboard_without_a_token_says_how_to_get_one(server: str, browser: Browser) -> None:
    page = browser.new_page()
    response = page.goto(server + "/")
    assert response is not None and response.status == 200
    page.wait_for_selector('[data-testid="notice"]:not([hidden])', timeout=10_000)
    assert "/#token=" in (page.text_content('[data-testid="notice"]') or "")
    assert page.text_content('[data-testid="total-power"]') == "–"
    page.close()


def test_static_files(server: str) -> None:
    script = httpx.get(server + "/static/dashboard.js", timeout=10)
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert httpx.get(server + "/static/dashboard.css", timeout=10).headers[
        "content-type"].startswith("text/css")
    assert httpx.get(server + "/static/nothing.js", timeout=10).status_code == 404
    assert httpx.get(server + "/static/..%2Fapi%2Fapp.py", timeout=10).status_code == 404
