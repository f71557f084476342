"""The Flickr source against a local server that answers like the Flickr REST API."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from emostream.ingest.settings import IngestSettings
from emostream.ingest.sources.flickr import FlickrError, FlickrSource


def photo(i, uploaded):
    return {
        "id": str(i),
        "owner": "12@N01",
        "secret": "s",
        "server": "1",
        "farm": 1,
        "title": f"Photo {i}",
        "ispublic": 1,
        "ownername": "Ann",
        "description": {"_content": f"desc {i}"},
        "dateupload": str(uploaded),
        "tags": "sunset happy",
        "url_m": f"https://live.staticflickr.com/1/{i}_s.jpg",
        "height_m": 375,
        "width_m": 500,
    }


class Flickr(BaseHTTPRequestHandler):
    calls: list = []
    fail_next: list = []
    photos: list = []

    def log_message(self, *a):
        pass

    def do_GET(self):  # noqa: N802
        q = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        Flickr.calls.append(q)
        if Flickr.fail_next:
            code = Flickr.fail_next.pop(0)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if q.get("api_key") != "key":
            body = {
                "stat": "fail",
                "code": 100,
                "message": "Invalid API Key (Key has invalid format)",
            }
        else:
            per, page = int(q["per_page"]), int(q["page"])
            items = Flickr.photos[(page - 1) * per : page * per]
            pages = max(1, -(-len(Flickr.photos) // per))
            body = {
                "photos": {
                    "page": page,
                    "pages": pages,
                    "perpage": per,
                    "total": len(Flickr.photos),
                    "photo": items,
                },
                "stat": "ok",
            }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def flickr_api():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Flickr)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    Flickr.calls, Flickr.fail_next = [], []
    Flickr.photos = [photo(i, 1_790_000_100 - i) for i in range(7)]  # newest first
    yield f"http://127.0.0.1:{srv.server_address[1]}/services/rest/"
    srv.shutdown()


def source(url, **kw):
    s = IngestSettings(
        env={},
        flickr_api_key=kw.pop("key", "key"),
        flickr_api_url=url,
        flickr_per_page=3,
        flickr_requests_per_hour=360_000,
        **kw,
    )
    return FlickrSource(s)


def test_pages_through_tag_search_and_builds_posts(flickr_api):
    src = source(flickr_api, flickr_tags=["sunset", "happy"])
    posts = list(src.new_photos())
    assert [p.id for p in posts] == [f"flickr:{i}" for i in range(7)]
    assert [c["page"] for c in Flickr.calls] == ["1", "2", "3"]
    call = Flickr.calls[0]
    assert call["method"] == "flickr.photos.search" and call["tags"] == "sunset,happy"
    assert "url_m" in call["extras"] and call["format"] == "json"
    p = posts[0]
    assert p.text == "Photo 0\n\ndesc 0" and p.image_url.endswith("/0_s.jpg")
    assert p.channel == "tag:sunset,happy" and p.author == "Ann"
    assert p.permalink == "https://www.flickr.com/photos/12@N01/0"


def test_next_poll_returns_only_new_photos(flickr_api):
    src = source(flickr_api)
    assert len(list(src.new_photos())) == 7
    Flickr.photos.insert(0, photo(99, 1_790_000_500))
    Flickr.calls.clear()
    assert [p.id for p in src.new_photos()] == ["flickr:99"]
    assert Flickr.calls[0]["method"] == "flickr.photos.getRecent" and len(Flickr.calls) == 1


def test_server_errors_and_rate_limits_are_retried(flickr_api, monkeypatch):
    monkeypatch.setattr("emostream.ingest.sources.flickr.time.sleep", lambda s: None)
    Flickr.fail_next = [503, 429]
    assert len(list(source(flickr_api).new_photos())) == 7


def test_api_errors_raise(flickr_api):
    with pytest.raises(FlickrError, match="Invalid API Key"):
        list(source(flickr_api, key="wrong").new_photos())


def test_calls_are_spaced_by_the_hourly_cap(flickr_api, monkeypatch):
    sleeps = []
    monkeypatch.setattr("emostream.ingest.sources.flickr.time.sleep", sleeps.append)
    s = IngestSettings(
        env={},
        flickr_api_key="key",
        flickr_api_url=flickr_api,
        flickr_per_page=3,
        flickr_requests_per_hour=3600,
    )
    list(FlickrSource(s).new_photos())
    assert len(sleeps) >= 2 and all(0 < x <= 1.0 for x in sleeps)
