"""Skip repeated work: features of texts and pictures seen recently are reused, not recomputed.

Social streams repeat themselves: retweets and cross-posts carry the same text, memes and
reposts the same picture, often at the same URL. Encoding is the worker's dominant cost,
so a window of recent features pays for itself as soon as anything repeats:

* ``text``: keyed by a hash of the exact text the encoder would read;
* ``image_url``: keyed by the URL; a hit skips the fetch, the decode and the encoder;
* ``image_bytes``: keyed by a hash of the fetched bytes; a hit (the same picture at another
  URL) skips the decode and the encoder.

The window is an LRU of at most ``size`` entries per kind, each kept at most ``ttl_s``
seconds (a picture at a URL can change, if rarely). Features are tied to the encoders
that made them: the cache belongs to one worker process and one model. It is shared by
the event loop (URL lookups before a fetch) and the model thread, hence the lock.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

import torch

KINDS = ("text", "image_url", "image_bytes")


def digest(data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).digest()


class FeatureReuse:
    def __init__(self, size: int = 10_000, ttl_s: float = 600.0, clock=time.monotonic) -> None:
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        self.size = size
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._lru: dict[str, OrderedDict] = {k: OrderedDict() for k in KINDS}

    @property
    def enabled(self) -> bool:
        return self.size > 0

    def get(self, kind: str, key: bytes | str | None) -> torch.Tensor | None:
        """The stored feature row, or None (never stored, evicted or older than ttl_s)."""
        if not self.enabled or key is None:
            return None
        lru = self._lru[kind]
        with self._lock:
            entry = lru.get(key)
            if entry is not None and self._clock() - entry[0] > self.ttl_s:
                del lru[key]
                entry = None
            if entry is not None:
                lru.move_to_end(key)
        return None if entry is None else entry[1]

    def put(self, kind: str, key: bytes | str | None, feature: torch.Tensor) -> None:
        if not self.enabled or key is None:
            return
        lru = self._lru[kind]
        with self._lock:
            lru[key] = (self._clock(), feature.detach().clone())
            lru.move_to_end(key)
            while len(lru) > self.size:
                lru.popitem(last=False)

    def __len__(self) -> int:
        return sum(len(v) for v in self._lru.values())
