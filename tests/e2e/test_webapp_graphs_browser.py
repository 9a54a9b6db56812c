"""Issue 16 (webapp) in a real browser (Debian's headless Chromium, Playwright): the
time-range picker and drag-to-zoom on every graph (Metrics, anomaly, profile pages)
with the range in the URL; anomaly and alert markers with hover text on the Metrics
graph; a one-point metric drawn as a point in a sane range; the metric browser; the
anomaly-rate ranking.  Screenshots for docs/webapp.md with ``SKYLINE_SCREENSHOTS=1``."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

from tests.e2e.browser import INK
from tests.e2e.browser import login as _login
from tests.e2e.browser import new_page as _page
from tests.e2e.browser import shot as _shot
from tests.integration.test_webapp_http import (
    ADMIN_PASSWORD,
    running_webapp,
    seed,
    webapp_settings,
)

SCALE = "(sel) => { const u = document.querySelector(sel).plot; return [u.scales.x.min, u.scales.x.max]; }"


def _args(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def _drawn(page, sel: str) -> None:
    page.wait_for_selector(f"{sel}[data-drawn='1'] canvas", timeout=15000)


def _over(page, sel: str) -> dict:
    """The plotting area's box, scrolled into the viewport (the mouse acts only there)."""
    page.locator(f"{sel} .u-over").scroll_into_view_if_needed()
    return page.locator(f"{sel} .u-over").bounding_box()


def _drag(page, sel: str, x0: float, x1: float) -> None:
    """Drag across the graph from x0 to x1 (fractions of its width)."""
    box = _over(page, sel)
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * x0, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * x1, y, steps=8)
    page.mouse.up()


def _zoom_and_reset(page, sel: str) -> None:
    """Drag to zoom: the URL then holds the zoomed range, a reload shows the same view,
    and Reset goes back to the default range."""
    before = page.evaluate(SCALE, sel)
    _drag(page, sel, 0.5, 0.75)
    page.wait_for_function("() => location.search.includes('until=')")
    _drawn(page, sel)
    args = _args(page)
    lo, hi = int(args["from"]), int(args["until"])
    span = before[1] - before[0]
    assert before[0] + 0.4 * span < lo < hi < before[0] + 0.85 * span, (before, lo, hi)
    assert page.evaluate(SCALE, sel) == [lo, hi]
    assert page.input_value(f'.range-picker[data-chart="{sel[1:]}"] input[name=from]').startswith(
        time.strftime("%Y-%m-%d %H:%M", time.gmtime(lo))
    )
    page.reload()  # a link reproduces the view
    _drawn(page, sel)
    assert page.evaluate(SCALE, sel) == [lo, hi]
    page.click(f'.range-picker[data-chart="{sel[1:]}"] .range-reset')
    _drawn(page, sel)
    assert "until" not in _args(page)
    after = page.evaluate(SCALE, sel)  # the default range again (a "now" one moves on)
    assert after[1] - after[0] == before[1] - before[0] and abs(after[0] - before[0]) < 60


def test_graphs_picker_zoom_markers_single_point(browser, make_settings, tmp_path, shots):
    settings = webapp_settings(make_settings, tmp_path)
    with running_webapp(settings) as (daemon, base):
        ids = seed(settings, daemon.store)
        context, page, problems = _page(browser)
        page.goto(base + "/metrics?name=web.latency")
        _login(page, base, "admin", ADMIN_PASSWORD)
        _drawn(page, "#metric-chart")
        # markers: 3 anomalies in the default 6 h and the alert of the alerted one
        assert page.get_attribute("#metric-chart", "data-marks") == "4"
        # hovering the alerted anomaly's marker says what it is
        x = page.evaluate(
            f"() => document.querySelector('#metric-chart').plot.valToPos({ids['spike_ts']}, 'x')"
        )
        box = _over(page, "#metric-chart")
        page.mouse.move(box["x"] + x, box["y"] + box["height"] / 2)
        tip = page.locator("#metric-chart .chart-tip")
        tip.wait_for(state="visible", timeout=5000)
        assert tip.inner_text().startswith(f"anomaly {ids['a0']} at ")
        _shot(page, shots / "webapp-metric-markers.png")
        # another anomaly's marker: hover says what it is, a click opens it
        a2_ts = ids["spike_ts"] + 240 - 7200
        x = page.evaluate(
            f"() => document.querySelector('#metric-chart').plot.valToPos({a2_ts}, 'x')"
        )
        page.mouse.move(box["x"] + x, box["y"] + box["height"] / 2)
        page.wait_for_function(
            f"() => document.querySelector('#metric-chart .chart-tip').textContent.startsWith('anomaly {ids['a2']} ')"
        )
        assert "(analyzer, not anomalous)" in tip.inner_text()
        page.mouse.click(box["x"] + x, box["y"] + box["height"] / 2)
        page.wait_for_url(f"**/anomaly/{ids['a2']}")
        page.go_back()
        _drawn(page, "#metric-chart")
        # presets: the last hour
        page.click('.range-picker[data-chart="metric-chart"] a.preset:text-is("1h")')
        _drawn(page, "#metric-chart")
        assert _args(page)["from"] == "1h"
        lo, hi = page.evaluate(SCALE, "#metric-chart")
        assert hi - lo == 3600 and abs(hi - time.time()) < 120
        assert page.get_attribute("#metric-chart", "data-marks") == "2"  # the spike and its alert
        page.goto(base + "/metrics?name=web.latency")
        _drawn(page, "#metric-chart")
        _zoom_and_reset(page, "#metric-chart")
        # a custom range typed into the picker
        page.fill(".range-picker input[name=from]", "3h")
        page.fill(".range-picker input[name=until]", "1h")
        page.click(".range-picker button[type=submit]")
        _drawn(page, "#metric-chart")
        lo, hi = page.evaluate(SCALE, "#metric-chart")
        assert hi - lo == 7200
        # a metric with one datapoint: a visible point, an x range around it (not 2027-2029)
        page.goto(base + "/metrics?name=db.pool2.used")
        _drawn(page, "#metric-chart")
        lo, hi = page.evaluate(SCALE, "#metric-chart")
        assert lo < time.time() - 3600 and hi >= time.time() - 120 and hi - lo <= 6 * 3600 + 5
        assert page.get_attribute("#metric-chart", "data-points") == "1"
        blue = page.evaluate("""() => {
          const c = document.querySelector('#metric-chart canvas');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i] < 80 && d[i+1] < 120 && d[i+2] > 150) n++;
          return n; }""")
        assert blue > 8, "the single point is not drawn"
        labels = page.locator("#metric-chart .u-axis").first.inner_text()
        assert "2027" not in labels and "2028" not in labels and "2029" not in labels
        _shot(page, shots / "webapp-single-point.png")
        # the anomaly page's graph: presets around the anomaly, zoom and reset
        page.goto(base + f"/anomaly/{ids['a0']}")
        _drawn(page, "#anomaly-chart")
        page.click('.range-picker a.preset:text-is("1h")')
        _drawn(page, "#anomaly-chart")
        lo, hi = page.evaluate(SCALE, "#anomaly-chart")
        assert (lo, hi) == (ids["spike_ts"] - 3600, ids["spike_ts"] + 600)
        assert page.evaluate(INK, "#anomaly-chart") > 0.002
        page.goto(base + f"/anomaly/{ids['a0']}")
        _drawn(page, "#anomaly-chart")
        _zoom_and_reset(page, "#anomaly-chart")
        # train it, then the profile page's graph zooms too
        page.click("#train-normal")
        page.wait_for_url("**/profile/*", timeout=60000)
        _drawn(page, "#profile-chart")
        _zoom_and_reset(page, "#profile-chart")
        context.close()
    assert not problems, problems


def test_metric_browser_and_ranking(browser, make_settings, tmp_path, shots):
    settings = webapp_settings(make_settings, tmp_path, SKYLINE__WEBAPP__PAGE_SIZE="50")
    with running_webapp(settings) as (daemon, base):
        seed(settings, daemon.store)
        now = float(int(time.time()))
        daemon.store.append_grouped({f"skyline.analyzer.h1.run_time{i}": ([now - 60, now], [1.0, 2.0])
                                     for i in range(3)})  # fmt: skip
        context, page, problems = _page(browser)
        page.goto(base + "/metrics")
        _login(page, base, "admin", ADMIN_PASSWORD)
        # the tree: the user's namespaces, and Skyline's own under their own heading
        assert page.locator("#metric-folders a").all_inner_texts() == ["db.", "evil.", "web."]
        assert page.locator("#self-folders a").all_inner_texts() == ["skyline."]
        _shot(page, shots / "webapp-metric-browser.png")
        page.click("#metric-folders a:text-is('web.')")
        row = page.locator("#metric-list tr[data-metric='web.latency']")
        assert row.locator("svg.sparkline polyline").count() == 1
        assert row.locator("td.num").inner_text() == "3"
        assert page.locator("#metric-crumbs a").all_inner_texts() == ["all", "web"]
        # search across both kinds; the self-metrics come last, under their heading
        page.fill("#metric-search", "e")
        page.press("#metric-search", "Enter")
        page.wait_for_selector("#self-list")
        assert page.locator("#self-list tr").count() == 1 + 3
        assert page.locator("#metric-list tr[data-metric^='skyline.']").count() == 0
        row.locator("td.num a").click()  # the count links to the metric's anomalies
        page.wait_for_url("**/anomalies?metric=web.latency")
        assert page.locator("#anomalies tbody tr").count() == 4
        # the ranking: by rate the evil metric (1 in 200 points) beats web.latency (4 in 1440)
        page.click("header nav >> text=Ranking")
        page.click('.range-picker a.preset:text-is("7d")')
        page.wait_for_selector("#ranking")
        first = page.locator("#ranking tbody tr").first
        assert "<script>" in first.locator("td.metric").inner_text()
        assert first.locator("td.num").nth(3).inner_text() == "0.50%"
        _shot(page, shots / "webapp-ranking.png")
        page.select_option("#ranking-order select[name=by]", "count")
        page.click("#ranking-order button")
        page.wait_for_url("**by=count**")
        first = page.locator("#ranking tbody tr").first
        assert first.get_attribute("data-metric") == "web.latency"
        first.locator("td.metric a").click()  # to its graph, over the ranking's window
        _drawn(page, "#metric-chart")
        lo, hi = page.evaluate(SCALE, "#metric-chart")
        assert 7 * 86400 - 5 <= hi - lo <= 7 * 86400 + 5
        context.close()
    assert not problems, problems
