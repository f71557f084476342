"""The OpenAPI document against the running API (a contract test). Any query the document
allows, with any values, never makes the API fail: every answer is below 500, has a status
the document lists for its route, a JSON answer matches the schema documented for that
status, and an error says why in the documented Problem shape (RFC 9457). The routes and
their parameters are read from the document itself (hypothesis draws the values), so a new
route or parameter is fuzzed without a change here."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from emostream.worker.api.schema import openapi

DOC = openapi()
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
INTEGER = st.one_of(st.integers(), st.integers(-10, 10_000), st.integers(2**40, 2**70))
NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers())
ERROR = {"$ref": "#/components/schemas/Problem", **DOC}
ROUTES = [
    (path, item["get"])
    for path, item in DOC["paths"].items()
    if path.startswith("/api/") and path != "/api/feed" and "get" in item
]


def value(schema: dict):
    kind = schema.get("type")
    base = {"integer": INTEGER, "number": NUMBER}.get(kind, TEXT)
    return st.one_of(base.map(str), TEXT)  # the documented type, or any text at all


def queries(op: dict):
    params = [p for p in op["parameters"] if p["in"] == "query"]
    return st.fixed_dictionaries({}, optional={p["name"]: value(p["schema"]) for p in params})


def conforms(op: dict, r: httpx.Response) -> None:
    """The answer has a documented status, and a JSON body matches its documented schema."""
    documented = op["responses"]
    assert str(r.status_code) in documented, (r.status_code, sorted(documented))
    content = documented[str(r.status_code)].get("content", {})
    schema = content.get("application/json", content.get("application/problem+json", {}))
    if "schema" in schema:
        Draft202012Validator({**schema["schema"], **DOC}).validate(r.json())


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from fixtures.api import api_process_in, result, write

    from emostream.testing import start_redis

    store = start_redis(tmp_path_factory.mktemp("redis"))
    write(store.port, [result(i, label) for i, label in enumerate(["joy", "anger", "fear"])])
    with api_process_in(tmp_path_factory) as start:
        yield start(store.port)
    store.stop()


@pytest.mark.parametrize("path,op", ROUTES, ids=[p for p, _ in ROUTES])
def test_no_query_makes_a_route_fail(api, path, op):
    @settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(query=queries(op), post_id=TEXT.filter(lambda s: s not in (".", "..")))
    def check(query, post_id):
        url = path.replace("{id}", quote(post_id, safe="") or "x")
        r = httpx.get(api.url + url, params=query, headers=api.headers(), timeout=30)
        assert r.status_code < 500, (url, query, r.text)
        conforms(op, r)
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/problem+json")
            jsonschema.validate(r.json(), ERROR)
        elif "json" in r.headers["content-type"] and "ndjson" not in r.headers["content-type"]:
            r.json()  # a whole JSON document

    check()


@pytest.mark.parametrize("path,op", ROUTES, ids=[p for p, _ in ROUTES])
def test_a_plain_request_gets_the_documented_answer(api, path, op):
    """Each route without a query (one stored post for ``{id}``): 200, in its schema."""
    r = httpx.get(api.url + path.replace("{id}", "reddit:0"), headers=api.headers(), timeout=30)
    wanted = 400 if path == "/api/compare" else 200  # compare needs its shadow version
    assert r.status_code == wanted, r.text
    conforms(op, r)


@given(query=queries(DOC["paths"]["/api/feed"]["get"]))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_no_query_makes_the_feed_fail(api, query):
    with httpx.stream(
        "GET", api.url + "/api/feed", params=query, headers=api.headers(), timeout=30
    ) as r:
        assert r.status_code < 500, (query, r.status_code)
        if r.status_code >= 400:
            jsonschema.validate(r.read() and r.json(), ERROR)
