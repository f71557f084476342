"""Reddit submissions with praw: backfill the newest N, then stream new ones.

Text is the title plus the self-text. The image URL is taken only where it points at a
picture: a direct image link (.jpg/.jpeg/.png/.gif/.webp), i.redd.it, an imgur direct
link (``imgur.com/<id>`` becomes ``i.imgur.com/<id>.jpg``; albums and galleries are not
pictures), or the first image of a Reddit gallery; otherwise there is none.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import praw

from emostream.record import Post, make_post

from ..settings import IngestSettings, SettingError

log = logging.getLogger("emostream.ingest.reddit")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp")


def _field(submission, name: str, default=None):
    """An attribute Reddit sent, without praw's lazy fetch of the whole object when absent."""
    return vars(submission).get(name, default)


def image_url_of(submission) -> str | None:
    if _field(submission, "is_gallery", False):
        items = (_field(submission, "gallery_data") or {}).get("items") or []
        media = _field(submission, "media_metadata") or {}
        for item in items:
            meta = media.get(item.get("media_id"), {})
            if meta.get("status", "valid") == "valid" and meta.get("e", "Image") == "Image":
                url = (meta.get("s") or {}).get("u")
                if url:
                    return html.unescape(url)
        return None
    url = _field(submission, "url") or ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https"):
        return None
    host = (parts.hostname or "").lower()
    path = parts.path.lower()
    if host == "i.redd.it" or path.endswith(IMAGE_EXTENSIONS):
        return url
    if host in ("imgur.com", "www.imgur.com", "m.imgur.com"):
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) == 1 and segments[0].isalnum():
            return f"https://i.imgur.com/{segments[0]}.jpg"
    return None


def post_of(submission) -> Post:
    title = submission.title or ""
    body = _field(submission, "selftext", "") or ""
    text = f"{title}\n\n{body}".strip() if body else title
    author = _field(submission, "author")
    author = author.name if author is not None else None
    return make_post(
        id=f"reddit:{submission.name}",
        source="reddit",
        channel=f"r/{submission.subreddit.display_name}",
        created_at=datetime.fromtimestamp(submission.created_utc, UTC),
        text=text or None,
        image_url=image_url_of(submission),
        author=author,
        permalink=f"https://www.reddit.com{submission.permalink}",
        meta={
            "score": int(getattr(submission, "score", 0) or 0),
            "num_comments": int(getattr(submission, "num_comments", 0) or 0),
            "over_18": bool(getattr(submission, "over_18", False)),
        },
    )


class RedditSource:
    def __init__(self, settings: IngestSettings, **praw_kwargs) -> None:
        if not settings.reddit_client_id or not settings.reddit_client_secret:
            raise SettingError(
                "Reddit needs EMOSTREAM_REDDIT_CLIENT_ID and EMOSTREAM_REDDIT_CLIENT_SECRET "
                "(a 'script' app at reddit.com/prefs/apps)"
            )
        self.subreddits = settings.reddit_subreddits
        self.reddit = praw.Reddit(
            client_id=settings.reddit_client_id,
            client_secret=settings.reddit_client_secret,
            user_agent=settings.reddit_user_agent,
            oauth_url=settings.reddit_oauth_url,
            reddit_url=settings.reddit_url,
            check_for_updates=False,
            **praw_kwargs,
        )
        self.reddit.read_only = True

    def backfill(self, newest: int) -> Iterator[Post]:
        for name in self.subreddits:
            for submission in self.reddit.subreddit(name).new(limit=newest):
                yield post_of(submission)

    def stream(self, skip_existing: bool = True) -> Iterator[Post]:
        """New submissions of all subreddits as they appear (praw polls with back-off)."""
        multi = self.reddit.subreddit("+".join(self.subreddits))
        for submission in multi.stream.submissions(skip_existing=skip_existing):
            yield post_of(submission)
