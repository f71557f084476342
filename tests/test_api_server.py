"""The dashboard API (a real process over a real Redis) and its page in headless Chromium."""

import json
import os
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from fixtures.api import result, write
from helpers import headless_chromium, sign_in, wait_for

from emostream.model.prediction import Prediction
from emostream.worker.store import Result

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def api(redis_server, api_process):
    server = api_process(redis_server.port)
    write(
        redis_server.port,
        [
            result(1, "joy"),
            result(2, "anger", channel="r/rage"),
            result(3, "joy", source="flickr", channel="tag:sun", mods=("text", "image")),
            result(9, "fear", run_id="backfill"),
        ],
    )
    return server, redis_server.port


def test_one_post_and_not_found(api):
    server, _ = api
    r = server.get("/api/posts/reddit:1")
    assert r.status_code == 200
    body = r.json()
    assert body["label"] == "joy" and body["emotions"]["joy"] == 0.8
    assert body["modalities"] == ["text"]
    assert server.get("/api/posts/nope").status_code == 404
    assert server.get("/api/posts/reddit:9").status_code == 404  # a replay's post
    assert server.get("/api/posts/reddit:9?run=backfill").json()["label"] == "fear"
    assert server.get("/api/posts/x?run=../../etc").status_code == 400


def test_errors_are_json_with_the_reason(api):
    import jsonschema

    from emostream.worker.api.schema import openapi

    server, _ = api
    error_schema = {"$ref": "#/components/schemas/Problem", **openapi()}
    cases = {
        "/api/posts/nope": (404, "no such post"),
        "/api/latest?limit=x": (400, "limit must be an integer"),
        "/api/compare": (400, "shadow is required"),
        "/api/nothing-here": (404, "Not Found"),
    }
    for path, (status, reason) in cases.items():
        r = server.get(f"{path}")
        assert r.status_code == status, path
        assert r.headers["content-type"].startswith("application/problem+json"), path
        body = r.json()
        jsonschema.validate(body, error_schema)
        assert body["status"] == status and reason in body["detail"], body
        assert body["type"] == "about:blank" and body["title"], body


def test_latest_with_filters(api):
    server, _ = api
    ids = [r["id"] for r in server.get("/api/latest").json()["results"]]
    assert ids == ["flickr:3", "reddit:2", "reddit:1"]  # newest first, live only
    assert [r["id"] for r in server.get("/api/latest?emotion=joy").json()["results"]] == [
        "flickr:3",
        "reddit:1",
    ]
    assert [r["id"] for r in server.get("/api/latest?channel=r/rage").json()["results"]] == [
        "reddit:2"
    ]
    assert len(server.get("/api/latest?limit=1").json()["results"]) == 1
    both = server.get("/api/latest", params={"modality": "text,image"}).json()["results"]
    assert [r["id"] for r in both] == ["flickr:3"]
    sure = server.get("/api/latest", params={"min_confidence": 0.9}).json()["results"]
    assert sure == []  # every fixture post has its top emotion at 0.8
    assert server.get("/api/latest?min_confidence=x").status_code == 400
    assert server.get("/api/latest?limit=x").status_code == 400
    found = server.get("/api/latest", params={"q": "NUMBER 2 <b>"}).json()["results"]
    assert [r["id"] for r in found] == ["reddit:2"]  # words in the text, any case
    assert server.get("/api/latest", params={"q": "x" * 201}).status_code == 400


def test_latest_of_one_bin_for_a_drill_down(api):
    server, redis_port = api
    old = datetime.now(UTC) - timedelta(days=3)
    write(redis_port, [replace(result(30 + i, "fear"), created_at=old) for i in range(2)])
    t = int(old.timestamp())
    ids = lambda **p: sorted(r["id"] for r in server.get("/api/latest", params=p).json()["results"])  # noqa: E731
    assert ids(since=t - 30, until=t + 30) == ["reddit:30", "reddit:31"]
    assert ids(since=t + 30) == ["flickr:3", "reddit:1", "reddit:2"]
    assert ids(since=t - 30, until=t + 30, emotion="joy") == []
    assert server.get("/api/latest", params={"since": -1}).status_code == 400


def test_aggregates_per_bucket_and_channel(api):
    server, _ = api
    body = server.get("/api/aggregates?window_s=600").json()
    assert body["version"] == "v1" and body["bucket_s"] == 60
    total = {}
    for b in body["buckets"]:
        for k, v in b["counts"].items():
            total[k] = total.get(k, 0) + v
    assert total == {"joy": 2, "anger": 1}
    assert sum(b["sentiments"].get("positive", 0) for b in body["buckets"]) == 3
    assert body["channels"] == {
        "reddit/r/happy": {"joy": 1},
        "reddit/r/rage": {"anger": 1},
        "flickr/tag:sun": {"joy": 1},
    }
    week = server.get("/api/aggregates?window_s=604800").json()
    assert len(week["buckets"]) <= 241 and week["bucket_s"] % 60 == 0
    assert sum(sum(b["counts"].values()) for b in week["buckets"]) == 3
    only = server.get("/api/aggregates?window_s=600&source=flickr").json()
    assert list(only["channels"]) == ["flickr/tag:sun"]


def test_aggregates_chart_the_past(api):
    """Posts created ten days ago (a replay, an old demo): the default range ends at the
    newest of them; ``from``/``to`` pick any range; a range over 30 days is refused."""
    server, redis_port = api
    old = datetime.now(UTC) - timedelta(days=10)
    write(redis_port, [replace(result(20 + i, "sadness"), created_at=old) for i in range(3)])
    got = server.get("/api/aggregates", params={"window_s": 3600}).json()
    assert sum(b["counts"].get("sadness", 0) for b in got["buckets"]) == 3
    assert got["to"] - got["from"] == 3600 and got["to"] <= old.timestamp() + 120
    t = int(old.timestamp())
    got = server.get("/api/aggregates", params={"from": t - 7200, "to": t + 60}).json()
    assert sum(b["counts"].get("sadness", 0) for b in got["buckets"]) == 3
    too_long = server.get("/api/aggregates", params={"from": 0, "to": t})
    assert too_long.status_code == 400


def test_a_month_is_read_from_the_hourly_counts(redis_server, api_process):
    """A 30-day chart reads the hourly counts the store's script keeps beside the per-minute
    ones: the same figures from 721 hashes instead of 43,200 (counted by Redis itself)."""
    now = datetime.now(UTC)
    spread = [
        replace(result(100 + i, ("joy", "fear", "anger")[i % 3], channel=f"r/c{i % 2}"),
                created_at=now - timedelta(hours=7 * i, minutes=13 * i))
        for i in range(90)
    ]  # fmt: skip
    write(redis_server.port, spread)
    r = redis.Redis(port=redis_server.port)
    month = {"window_s": 30 * 86400}

    def charted(api) -> tuple[dict, int]:
        """The chart and the hashes Redis read for it, outside the API's own shift passes."""
        passes = f"{api.metrics_url} emostream_api_shift_reports_total"
        while True:
            wait_for(lambda: metric_at(passes) >= 1, what="the API's first shift pass")
            ran, before = metric_at(passes), r.info("commandstats")["cmdstat_hgetall"]["calls"]
            body = api.get("/api/aggregates", params=month).json()
            reads = r.info("commandstats")["cmdstat_hgetall"]["calls"] - before
            if metric_at(passes) == ran:  # no shift pass in between: all reads are the chart's
                return body, reads

    hourly, hourly_reads = charted(api_process(redis_server.port))
    minutes, minute_reads = charted(api_process(redis_server.port, api_hourly_counts="false"))
    assert hourly["bucket_s"] == minutes["bucket_s"] == 3 * 3600
    assert hourly["channels"] == minutes["channels"]
    assert sum(sum(b["counts"].values()) for b in hourly["buckets"]) == 90
    assert [b["counts"] for b in hourly["buckets"]] == [b["counts"] for b in minutes["buckets"]]
    assert hourly_reads <= 30 * 24 + 1 and minute_reads >= 30 * 24 * 60
    print(f"\n30-day chart: {hourly_reads} hash reads (hourly) against {minute_reads}")


def metric_at(where: str) -> float:
    """``"<metrics url> <sample name>"`` -> its value (0 when absent)."""
    url, name = where.split()
    for line in httpx.get(url).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_live_feed_streams_new_results_and_resumes(api):
    server, redis_port = api
    events = []
    connected = threading.Event()

    def listen():
        with server.stream("GET", "/api/feed?emotion=sadness", timeout=20) as r:
            for line in r.iter_lines():
                if line.startswith(": connected"):
                    connected.set()  # the stream's position is fixed: write now
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    return

    t = threading.Thread(target=listen)
    t.start()
    assert connected.wait(30), "the feed never connected"
    write(redis_port, [result(4, "joy"), result(5, "sadness")])
    t.join(15)
    assert [e["id"] for e in events] == ["reddit:5"]
    # resume from an event id: everything after it
    first = server.get("/api/latest").json()["results"][-1]["event_id"]
    with server.stream("GET", "/api/feed", headers={"Last-Event-ID": first}, timeout=20) as r:
        got = []
        for line in r.iter_lines():
            if line.startswith("id: "):
                got.append(line[4:])
            if len(got) == 4:
                break
    assert len(got) == 4 and got[0] > first


def test_an_idle_feed_outlives_the_redis_socket_timeout(api):
    """No post for longer than the Redis client's socket timeout (5 s): the feed sends its
    keep-alive (at 15 s) and still delivers the post written after it."""
    server, redis_port = api
    events, lines = [], []
    kept_alive = threading.Event()

    def listen():
        with server.stream("GET", "/api/feed", timeout=40) as r:
            for line in r.iter_lines():
                lines.append(line)
                if line.startswith(": keep-alive"):
                    kept_alive.set()
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    return

    t = threading.Thread(target=listen)
    t.start()
    assert kept_alive.wait(40), f"no keep-alive; the feed sent {lines}"
    write(redis_port, [result(7, "surprise")])
    t.join(20)
    assert [e["id"] for e in events] == ["reddit:7"]


def test_api_exports_its_metrics(api):
    server, _ = api
    server.get("/api/latest")
    server.get("/api/posts/nope")
    body = httpx.get(server.metrics_url).text
    assert 'emostream_api_requests_total{route="/api/latest",status="200"} 1.0' in body
    assert 'emostream_api_requests_total{route="/api/posts/{id}",status="404"} 1.0' in body


def test_openapi_document(api):
    server, _ = api
    doc = server.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    from emostream.worker.api.server import create_api
    from emostream.worker.settings import WorkerSettings

    settings = WorkerSettings(env={}, api_auth="none", api_host="127.0.0.1")
    routes = {
        (r.resource.canonical, r.method.lower())
        for r in create_api(settings).router.routes()
        if r.resource is not None and r.method in ("GET", "POST")
    }
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert documented == routes  # every route documented, nothing else
    assert {("/api/versions", "get"), ("/api/compare", "get"), ("/signin", "post")} <= routes
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_page_in_headless_chromium(api, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, redis_port = api
    browser = headless_chromium(tmp_path)
    try:
        browser.get(server.url + "/")  # no token yet: the sign-in form, never the page
        assert browser.find_elements(By.ID, "token") and not browser.find_elements(By.ID, "panels")
        sign_in(browser, server.url, server.token)
        cookie = browser.get_cookie("emostream_token")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert browser.execute_script("return document.cookie") == ""  # out of scripts' reach
        wait = WebDriverWait(browser, 20)
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#latest tr")) == 3)
        wait.until(lambda b: b.find_element(By.ID, "status").text == "live")
        # one panel per channel (the top 3 by volume), each a stacked area of its emotions
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#panels .panel")) == 3)
        panels = browser.find_elements(By.CSS_SELECTOR, "#panels .panel")
        titles = sorted(p.find_element(By.TAG_NAME, "h2").text for p in panels)
        assert titles == [
            "flickr/tag:sun 1 post",
            "reddit/r/happy 1 post",
            "reddit/r/rage 1 post",
        ]
        assert sorted(p.get_attribute("data-series") for p in panels) == ["1", "1", "1"]
        assert all(len(p.find_elements(By.CSS_SELECTOR, ".uplot canvas")) == 2 for p in panels)
        legend = browser.find_element(By.ID, "legend").text
        assert "joy" in legend and "anger" in legend and "sentiment" in legend
        assert browser.find_element(By.ID, "shifts").text == "none"
        first = browser.find_element(By.CSS_SELECTOR, "#latest tr")
        assert "not bold" in first.text and "<b>" in first.text  # escaped, not rendered
        assert "text + image" in first.text
        links = browser.find_elements(By.CSS_SELECTOR, "#latest tr a.source")
        assert len(links) == 2  # the Reddit posts; the Flickr one came without an address
        for a in links:
            assert a.get_attribute("href").startswith("https://www.reddit.com/r/")
        options = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#f-channel option")]
        assert "reddit/r/rage" in options
        write(redis_port, [result(7, "surprise", mods=("image",))])  # arrives live (SSE)
        wait.until(lambda b: "surprise" in b.find_element(By.CSS_SELECTOR, "#latest tr").text)
        rows = lambda b: b.find_elements(By.CSS_SELECTOR, "#latest tr")  # noqa: E731
        # the export link downloads what the page charts (the cookie signs it in)
        link = browser.find_element(By.ID, "export-csv").get_attribute("href")
        assert link.endswith("/api/export?format=csv")
        got = browser.execute_script("return await (await fetch(arguments[0])).text()", link)
        assert got.splitlines()[0].startswith("id,source,channel") and len(got.splitlines()) == 5
        # search: the posts whose text has these words
        browser.find_element(By.ID, "f-q").send_keys("NUMBER 2\n")
        wait.until(lambda b: len(rows(b)) == 1 and "anger" in rows(b)[0].text)
        browser.find_element(By.ID, "f-q").clear()
        browser.execute_script("document.getElementById('f-q').dispatchEvent(new Event('change'))")
        wait.until(lambda b: len(rows(b)) == 4)
        # a tooltip over r/rage's one filled bin, then a click on it lists its posts
        rage = next(p for p in browser.find_elements(By.CSS_SELECTOR, "#panels .panel")
                    if "r/rage" in p.text)  # fmt: skip
        over = rage.find_element(By.CSS_SELECTOR, ".u-over")
        (x,) = [int(v) for v in rage.get_attribute("data-bin-x").split(",")]  # its one bin
        at = ActionChains(browser).move_to_element_with_offset(over, x - over.size["width"] // 2, 0)
        at.perform()
        wait.until(lambda b: "1 post" in rage.find_element(By.CSS_SELECTOR, ".tip").text)
        assert "anger 100%" in rage.find_element(By.CSS_SELECTOR, ".tip").text
        at.click().perform()
        wait.until(lambda b: "posts of reddit/r/rage" in b.find_element(By.ID, "drill").text)
        wait.until(lambda b: len(rows(b)) == 1 and "anger" in rows(b)[0].text)
        browser.find_element(By.ID, "undrill").click()
        wait.until(lambda b: len(rows(b)) == 4)
        # the filters: text + image posts only
        browser.find_element(By.CSS_SELECTOR, "#f-modality option[value='text,image']").click()
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#latest tr")) == 1)
        assert "flickr" in browser.find_element(By.CSS_SELECTOR, "#latest tr").text
        # a range the API refuses: the page says why, in the API's own words
        browser.execute_script(
            "document.getElementById('from').value = '2026-01-02T00:00';"
            "document.getElementById('to').value = '2026-01-01T00:00';"
            "document.getElementById('to').dispatchEvent(new Event('change'));"
        )
        wait.until(lambda b: "60 s to 30 days" in b.find_element(By.ID, "problem").text)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#panels .panel")) == 3  # kept
        browser.execute_script(
            "document.getElementById('from').value = '';"
            "document.getElementById('to').value = '';"
            "document.getElementById('to').dispatchEvent(new Event('change'));"
        )
        wait.until(lambda b: b.find_element(By.ID, "problem").text == "")
        shot = Path(os.environ.get("EMOSTREAM_SCREENSHOT", tmp_path / "dashboard.png"))
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        browser.quit()


def test_docs_page_renders_the_openapi_document_in_headless_chromium(api, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, _ = api
    bundle = server.get("/vendor/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text
    browser = headless_chromium(tmp_path)
    try:
        sign_in(browser, server.url, server.token)
        browser.get(server.url + "/docs")
        wait = WebDriverWait(browser, 20)
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")) > 10)
        shown = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        documented = set(server.get("/openapi.json").json()["paths"])
        assert {p.replace("\u200b", "") for p in shown} == documented
        assert "emostream dashboard API" in browser.find_element(By.CSS_SELECTOR, ".title").text
        log = browser.get_log("browser")
        errors = [e for e in log if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]
        assert errors == []  # no script refused by the CSP, nothing fetched from elsewhere
    finally:
        browser.quit()


def test_openapi_result_schema_is_the_stored_result():
    """The documented post result has exactly the fields the worker stores."""
    from datetime import UTC, datetime

    import msgspec

    from emostream.worker.api.schema import PostResult, openapi

    t = datetime(2026, 1, 1, tzinfo=UTC)
    stored = Result(
        id="x", source="reddit", channel="r/a", created_at=t, ingested_at=t, written_at=t,
        prediction=Prediction(
label="joy", emotions={"joy": 1.0}, sentiment="positive", sentiments={}, modalities=(),
        image_status="absent", model_version="v",
), run_id="r", received_at=t,
        created_at_given="0001-01-01T00:00:00+00:00", permalink="https://example.org/p/x",
    ).fields()  # fmt: skip
    assert {f.name for f in msgspec.structs.fields(PostResult)} == set(stored)
    schemas = openapi()["components"]["schemas"]
    assert set(schemas["PostResult"]["properties"]) == set(stored)


def test_healthz_says_503_with_the_reason_when_redis_is_away(api_process):
    from emostream.testing import free_port

    api = api_process(free_port())  # nothing listens there
    r = httpx.get(api.url + "/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "redis unavailable" and body["reason"]
    assert set(body) == {"status", "reason"}
