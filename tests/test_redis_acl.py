"""Least privilege in Redis: the worker and the API run as the ACL users that
docker-compose.yml creates (worker/redis_acl.py), against a real redis-server; the API
cannot write. And both over TLS (rediss://, a CA made here)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import redis
import yaml
from helpers import produce, text_posts, wait_for, written

from emostream.testing import create_topics, free_port, start_redis
from emostream.worker.redis_acl import API_USER, WORKER_USER, server_args

REPO = Path(__file__).resolve().parent.parent
SECRET = {WORKER_USER: "redis_worker_password", API_USER: "redis_api_password"}
ADMIN = "admin-PW-0f3c9a"
PASSWORDS = {WORKER_USER: "worker-PW-81be20aa", API_USER: "api-PW-5d7f0c13"}


def compose_users() -> dict[str, list[str]]:
    """The ``--user`` arguments of the compose file's redis command, its secrets named."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    command = compose["services"]["redis"]["command"][2]
    words = shlex.split(re.sub(r"\$\$\(cat /run/secrets/(\w+)\)", r"<\1>", command))
    users, i = {}, 0
    while "--user" in words[i:]:
        i = words.index("--user", i) + 1
        end = next((j for j in range(i, len(words)) if words[j].startswith("--")), len(words))
        users[words[i]] = ["--user", *words[i:end]]
    return users


def test_compose_creates_the_users_of_redis_acl():
    users = compose_users()
    assert set(users) == {WORKER_USER, API_USER}
    for user, args in users.items():
        assert args == server_args(user, f"<{SECRET[user]}>"), user


@pytest.fixture
def acl_redis(tmp_path):
    args = [a for user, pw in PASSWORDS.items() for a in server_args(user, pw)]
    store = start_redis(tmp_path / "redis", password=ADMIN, extra_args=args)
    yield store
    store.stop()


def as_user(port: int, user: str) -> redis.Redis:
    return redis.Redis(port=port, username=user, password=PASSWORDS[user], decode_responses=True)


def test_the_worker_and_the_api_as_their_acl_users(
    acl_redis, broker, worker_process, api_process, data_dir, unique
):
    topic = unique("posts")
    create_topics(broker, {topic: 1})
    creds = {"redis_username": WORKER_USER, "redis_password": PASSWORDS[WORKER_USER]}
    w = worker_process(
        broker, acl_redis.port, topic_posts=topic, consumer_group=unique("g"), **creds
    )
    posts = text_posts(data_dir, 40, "acl")
    produce(broker, topic, posts)
    admin = redis.Redis(port=acl_redis.port, password=ADMIN, decode_responses=True)
    wait_for(lambda: written(admin) >= len(posts), proc=w, what="every post, as the worker user")
    assert written(admin) == len(posts)

    api = api_process(acl_redis.port, redis_username=API_USER, redis_password=PASSWORDS[API_USER])
    assert len(api.get("/api/latest?limit=100").json()["results"]) == len(posts)
    assert api.get("/api/versions").json()["live"][0]["posts"] == len(posts)
    assert api.get("/api/aggregates").status_code == 200
    assert api.get(f"/api/posts/{posts[0].id}").json()["id"] == posts[0].id
    assert httpx_ok(api.url + "/healthz")


def httpx_ok(url: str) -> bool:
    import httpx

    return httpx.get(url).status_code == 200


def test_the_api_user_can_only_read_and_the_worker_only_its_own_keys(acl_redis):
    admin = redis.Redis(port=acl_redis.port, password=ADMIN, decode_responses=True)
    admin.hset("emo:post:x", mapping={"label": "joy"})
    reader = as_user(acl_redis.port, API_USER)
    assert reader.hgetall("emo:post:x") == {"label": "joy"}
    refused = [
        lambda: reader.set("emo:post:x", "1"),
        lambda: reader.hset("emo:post:x", "label", "anger"),
        lambda: reader.delete("emo:post:x"),
        lambda: reader.xadd("emo:feed", {"a": "1"}),
        lambda: reader.eval("return redis.call('DEL', KEYS[1])", 1, "emo:post:x"),
        lambda: reader.flushall(),
        lambda: reader.config_set("maxmemory", "1"),
        lambda: reader.hgetall("other:key"),
    ]
    for attempt in refused:
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()
    worker = as_user(acl_redis.port, WORKER_USER)
    worker.hset("emo:post:y", mapping={"label": "fear"})
    for attempt in [
        lambda: worker.set("other:key", "1"),
        lambda: worker.flushall(),
        lambda: worker.config_get("*"),
        lambda: worker.keys("*"),
        lambda: worker.shutdown(),
    ]:
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()
    assert admin.hgetall("emo:post:x") == {"label": "joy"}  # nothing was changed


def make_ca_and_server_cert(folder: Path) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    f = {n: folder / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")}
    ext = folder / "san.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=emostream test CA",
        "-keyout",
        f["ca.key"],
        "-out",
        f["ca.pem"],
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        f["server.key"],
        "-out",
        f["server.csr"],
    )
    run("x509", "-req", "-in", f["server.csr"], "-CA", f["ca.pem"], "-CAkey", f["ca.key"],
        "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", f["server.pem"])  # fmt: skip
    return f


def test_the_worker_and_the_api_over_tls(
    tmp_path, broker, worker_process, api_process, data_dir, unique
):
    certs = make_ca_and_server_cert(tmp_path)
    tls_port = free_port()
    tls = [
        "--tls-port", str(tls_port), "--tls-cert-file", str(certs["server.pem"]),
        "--tls-key-file", str(certs["server.key"]), "--tls-ca-cert-file", str(certs["ca.pem"]),
        "--tls-auth-clients", "no",
    ]  # fmt: skip
    store = start_redis(tmp_path / "redis", extra_args=tls)
    try:
        url = {"redis_url": f"rediss://127.0.0.1:{tls_port}/0", "redis_ssl_ca": certs["ca.pem"]}
        topic = unique("posts")
        create_topics(broker, {topic: 1})
        group = unique("g")
        w = worker_process(broker, store.port, topic_posts=topic, consumer_group=group, **url)
        posts = text_posts(data_dir, 20, "tls")
        produce(broker, topic, posts)
        plain = redis.Redis(port=store.port, decode_responses=True)  # the test's own look
        wait_for(lambda: written(plain) >= len(posts), proc=w, what="every post, over TLS")
        api = api_process(store.port, **url)
        assert len(api.get("/api/latest?limit=100").json()["results"]) == len(posts)
        over_tls = [c for c in plain.client_list() if c["laddr"].endswith(f":{tls_port}")]
        assert len(over_tls) >= 2  # the worker's and the API's connections
        untrusted = redis.Redis(port=tls_port, ssl=True, ssl_cert_reqs="required")
        with pytest.raises(redis.exceptions.ConnectionError):  # a certificate of no known CA
            untrusted.ping()
    finally:
        store.stop()
