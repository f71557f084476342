"""The real praw client against a local server that answers like Reddit's API."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from emostream.ingest.settings import IngestSettings
from emostream.ingest.sources.reddit import RedditSource, image_url_of

SUBMISSIONS = [
    {"id": "a1", "title": "My cat is happy", "selftext": "", "url": "https://i.redd.it/x1.jpg"},
    {"id": "a2", "title": "Look", "selftext": "", "url": "https://imgur.com/AbC12"},
    {"id": "a3", "title": "Album", "selftext": "", "url": "https://imgur.com/a/xyz"},
    {
        "id": "a4",
        "title": "Self post",
        "selftext": "long story here",
        "url": "https://www.reddit.com/r/happy/comments/a4/self_post/",
    },
    {
        "id": "a5",
        "title": "Gallery",
        "selftext": "",
        "url": "https://www.reddit.com/gallery/a5",
        "is_gallery": True,
        "gallery_data": {"items": [{"media_id": "m1", "id": 1}, {"media_id": "m2", "id": 2}]},
        "media_metadata": {
            "m1": {
                "status": "valid",
                "e": "Image",
                "s": {"u": "https://preview.redd.it/m1.jpg?width=640&amp;s=abc"},
            },
            "m2": {"status": "valid", "e": "Image", "s": {"u": "https://x/m2.jpg"}},
        },
    },
    {"id": "a6", "title": "A link", "selftext": "", "url": "https://example.com/article.html"},
    {"id": "a7", "title": "Direct png", "selftext": "", "url": "http://example.com/pic.PNG?x=1"},
]


def listing(sub):
    children = []
    for i, s in enumerate(SUBMISSIONS):
        data = {
            "name": f"t3_{s['id']}",
            "subreddit": sub,
            "subreddit_name_prefixed": f"r/{sub}",
            "author": "someone",
            "created_utc": 1_790_000_000 + i,
            "permalink": f"/r/{sub}/comments/{s['id']}/x/",
            "score": 10,
            "num_comments": 2,
            "over_18": False,
            "is_self": not s["url"].startswith("https://i"),
            **s,
        }
        children.append({"kind": "t3", "data": data})
    return {
        "kind": "Listing",
        "data": {"after": None, "before": None, "dist": len(children), "children": children},
    }


class Reddit(BaseHTTPRequestHandler):
    requests: list = []

    def log_message(self, *a):
        pass

    def _json(self, obj, code=200):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Reddit.requests.append(("POST", self.path, self.headers.get("Authorization")))
        if self.path == "/api/v1/access_token":
            self._json(
                {"access_token": "tok", "token_type": "bearer", "expires_in": 3600, "scope": "*"}
            )
        else:
            self._json({}, 404)

    def do_GET(self):  # noqa: N802
        Reddit.requests.append(("GET", self.path, self.headers.get("Authorization")))
        parts = urlsplit(self.path)
        segs = parts.path.strip("/").split("/")
        if len(segs) == 3 and segs[0] == "r" and segs[2] == "new":
            limit = int(parse_qs(parts.query).get("limit", ["100"])[0])
            data = listing(segs[1])
            data["data"]["children"] = data["data"]["children"][:limit]
            self._json(data)
        else:
            self._json({"message": "Not Found", "error": 404}, 404)


@pytest.fixture
def reddit_api():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Reddit)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    Reddit.requests = []
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def settings(url, **kw):
    return IngestSettings(
        env={},
        reddit_client_id="id",
        reddit_client_secret="secret",
        reddit_oauth_url=url,
        reddit_url=url,
        **kw,
    )


def test_backfill_turns_submissions_into_posts(reddit_api):
    src = RedditSource(settings(reddit_api, reddit_subreddits=["happy"]))
    posts = list(src.backfill(50))
    assert [p.id for p in posts] == [f"reddit:t3_a{i}" for i in range(1, 8)]
    by = {p.id.removeprefix("reddit:t3_"): p for p in posts}
    assert by["a1"].image_url == "https://i.redd.it/x1.jpg"
    assert by["a2"].image_url == "https://i.imgur.com/AbC12.jpg"
    assert by["a3"].image_url is None  # an album page is not a picture
    assert by["a4"].image_url is None and by["a4"].text == "Self post\n\nlong story here"
    assert by["a5"].image_url == "https://preview.redd.it/m1.jpg?width=640&s=abc"
    assert by["a6"].image_url is None
    assert by["a7"].image_url == "http://example.com/pic.PNG?x=1"
    assert all(p.channel == "r/happy" and p.source == "reddit" for p in posts)
    assert by["a1"].permalink == "https://www.reddit.com/r/happy/comments/a1/x/"
    assert by["a1"].created_at.timestamp() == 1_790_000_000
    # praw really authenticated, then used the bearer token
    assert Reddit.requests[0][:2] == ("POST", "/api/v1/access_token")
    assert any(m == "GET" and auth == "bearer tok" for m, _, auth in Reddit.requests)


def test_backfill_respects_the_limit_per_subreddit(reddit_api):
    src = RedditSource(settings(reddit_api, reddit_subreddits=["happy", "rage"]))
    posts = list(src.backfill(2))
    assert [p.channel for p in posts] == ["r/happy", "r/happy", "r/rage", "r/rage"]


def test_credentials_are_required():
    with pytest.raises(ValueError, match="EMOSTREAM_REDDIT_CLIENT_ID"):
        RedditSource(IngestSettings(env={}))


class Fake:
    def __init__(self, **fields):
        self.__dict__.update(fields)


def test_image_url_of_handles_odd_urls():
    assert image_url_of(Fake(url="javascript:alert(1)")) is None
    assert image_url_of(Fake(url="http://[::1")) is None
    assert image_url_of(Fake(url="https://imgur.com/gallery/abc")) is None
    assert image_url_of(Fake(url="https://m.imgur.com/Xy9")) == "https://i.imgur.com/Xy9.jpg"
    assert image_url_of(Fake(is_gallery=True, gallery_data=None, media_metadata=None)) is None
