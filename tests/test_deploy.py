"""The deployment files: compose against the Compose Specification schema, the wiring
between services, Prometheus config and alert rules with promtool, the Grafana dashboard,
and a real Prometheus scraping a running worker and evaluating the rules."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import jsonschema
import pytest
import redis
import yaml
from helpers import debian_tool, produce, text_posts, wait_for

from emostream.testing import create_topics, free_port

REPO = Path(__file__).resolve().parent.parent
MON = REPO / "monitoring"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def promtool():
    return debian_tool("promtool", "prometheus")


def test_compose_file_follows_the_compose_specification(compose):
    import check_jsonschema

    schema_path = (
        Path(check_jsonschema.__file__).parent / "builtin_schemas/vendor/compose-spec.json"
    )
    schema = json.loads(schema_path.read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(compose)


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    return {k: str(v) for k, v in env.items()} if isinstance(env, dict) else {}


def test_services_point_at_real_services_and_ports(compose):
    services = compose["services"]
    assert {
        "kafka",
        "redis",
        "worker",
        "ingest-reddit",
        "ingest-flickr",
        "prometheus",
        "grafana",
    } <= set(services)
    kafka_port = re.search(
        r"PLAINTEXT://:(\d+)", services["kafka"]["environment"]["KAFKA_LISTENERS"]
    ).group(1)
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "--appendonly yes" in services["redis"]["command"][-1]
    for name in ("worker", "worker-gpu", "ingest-reddit", "ingest-flickr"):
        env = env_of(services[name])
        host, port = env["EMOSTREAM_KAFKA_BOOTSTRAP"].split(":")
        assert host in services and port == kafka_port, name
        assert services[name]["restart"] == "unless-stopped"
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("worker", "worker-gpu", "api"):
        url = urllib.parse.urlsplit(env_of(services[name])["EMOSTREAM_REDIS_URL"])
        assert url.hostname in services and (url.port or 6379) == 6379, name
    assert set(services["api"]["depends_on"]) == {"redis"}  # the API reads Redis only
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=N
    assert "deploy" not in worker and "profiles" not in worker  # `up` works on a CPU host
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    for name in services:
        assert "healthcheck" in services[name], name
    for vol in ("kafka-data", "redis-data", "prometheus-data", "grafana-data"):
        assert vol in compose["volumes"]
    for svc in services.values():  # every bind-mounted file exists
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("./"):
                assert (REPO / src).exists(), src
    assert (REPO / "Dockerfile").is_file() and (REPO / "Dockerfile.cuda").is_file()


def test_each_service_gets_only_its_own_secrets(compose):
    services = compose["services"]
    want = {
        "redis": {"redis_password", "redis_worker_password", "redis_api_password"},
        "worker": {"redis_worker_password"},
        "api": {"redis_api_password", "api_tokens"},
        "ingest-reddit": {"reddit_client_id", "reddit_client_secret"},
        "ingest-flickr": {"flickr_api_key"},
        "grafana": {"grafana_admin_password"},
    }
    for name, secrets in want.items():
        assert set(services[name].get("secrets", [])) == secrets, name
    assert set(compose["secrets"]) == set().union(*want.values())
    for name, svc in services.items():
        assert "env_file" not in svc, name  # no file of every secret for every service
        for key, value in env_of(svc).items():  # secrets travel as files, not values
            assert not key.endswith(("PASSWORD", "SECRET", "API_KEY")), (name, key)
            if key.endswith("_FILE"):
                assert value.startswith("/run/secrets/"), (name, key)


def test_every_variable_is_in_the_example_env_file_and_no_secret_is_committed():
    text = (REPO / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = (REPO / ".env.example").read_text()
    defined = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    assert used <= defined, used - defined
    assert ".env" in (REPO / ".gitignore").read_text().split()
    assert not (REPO / ".env").exists() or ".env" in (REPO / ".gitignore").read_text()


def test_prometheus_targets_are_services_with_metrics_ports(compose):
    services = compose["services"]
    prom = yaml.safe_load((MON / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    worker_port = env_of(services["worker"])["EMOSTREAM_WORKER_METRICS_PORT"]
    dns = jobs["worker"]["dns_sd_configs"][0]
    assert dns["names"] == ["worker"] and str(dns["port"]) == worker_port
    for target in jobs["ingest"]["static_configs"][0]["targets"]:
        host, port = target.split(":")
        assert host in services
        assert env_of(services[host])["EMOSTREAM_INGEST_METRICS_PORT"] == port
    (api_target,) = jobs["api"]["static_configs"][0]["targets"]
    host, port = api_target.split(":")
    assert host in services and env_of(services[host])["EMOSTREAM_API_METRICS_PORT"] == port
    ds = yaml.safe_load((MON / "grafana/provisioning/datasources/prometheus.yml").read_text())
    url = urllib.parse.urlsplit(ds["datasources"][0]["url"])
    assert (
        url.hostname == "prometheus"
        and f"{url.port}:{url.port}" in services["prometheus"]["ports"][0]
    )


def exported_metric_names() -> set[str]:
    """Every sample name our code exports (counters' _total, histograms' _bucket, ...)."""
    from prometheus_client import REGISTRY

    import emostream.ingest.metrics  # noqa: F401
    import emostream.worker.api.metrics  # noqa: F401
    import emostream.worker.metrics  # noqa: F401

    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("emostream_"):
            names.add(family.name)
            names |= {s.name for s in family.samples}
            if family.type == "counter":
                names.add(family.name + "_total")
            if family.type == "histogram":
                names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
    return names


def test_alerts_and_dashboard_use_only_metrics_that_exist():
    names = exported_metric_names()
    texts = [
        (MON / "alerts.yml").read_text(),
        (MON / "grafana/dashboards/emostream.json").read_text(),
    ]
    used = {n for t in texts for n in re.findall(r"emostream_[a-z_]+", t)}
    assert used and used <= names, used - names


def test_dashboard_has_the_panels_users_need():
    dash = json.loads((MON / "grafana/dashboards/emostream.json").read_text())
    titles = " | ".join(p["title"] for p in dash["panels"]).lower()
    for want in (
        "emotion mix",
        "throughput",
        "batch size",
        "latency",
        "modality",
        "image failures",
        "dead letters",
        "lag",
    ):
        assert want in titles, want


def test_promtool_accepts_config_and_rules_and_the_rule_unit_tests_pass():
    exe = promtool()
    for args in (
        ["check", "config", str(MON / "prometheus.yml")],
        ["check", "rules", str(MON / "alerts.yml")],
        ["test", "rules", str(MON / "alerts.test.yml")],
    ):
        out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr


def prom_query(port: int, path: str) -> dict:
    url = f"http://127.0.0.1:{port}{path}"
    return json.loads(urllib.request.urlopen(url, timeout=5).read())


def test_real_prometheus_scrapes_a_worker_and_evaluates_the_rules(
    broker, redis_server, worker_process, data_dir, unique, tmp_path
):
    exe = shutil.which("prometheus")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus missing in CI (.ci/run installs it)")
        pytest.skip("prometheus not installed")
    topic = unique("posts")
    create_topics(broker, {topic: 1})
    w = worker_process(broker, redis_server.port, topic_posts=topic, consumer_group=unique("g"))
    produce(broker, topic, text_posts(data_dir, 20, "prom"))
    r = redis.Redis(port=redis_server.port)
    wait_for(lambda: len(r.keys("emo:post:*")) >= 20, proc=w, what="results")

    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(MON / "alerts.yml")],
        "scrape_configs": [
            {"job_name": "worker", "static_configs": [{"targets": [f"127.0.0.1:{w.metrics_port}"]}]}
        ],
    }
    (tmp_path / "prom.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    prom = subprocess.Popen(
        [
            exe,
            f"--config.file={tmp_path / 'prom.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "prom.log", "wb"),  # noqa: SIM115
    )
    try:

        def scraped() -> bool:
            try:
                res = prom_query(port, "/api/v1/query?query=sum(emostream_posts_classified_total)")
            except OSError:
                return False
            data = res["data"]["result"]
            return bool(data) and float(data[0]["value"][1]) >= 20

        wait_for(scraped, timeout_s=60, what="Prometheus to scrape the worker")

        def rules_evaluated() -> list:
            groups = prom_query(port, "/api/v1/rules")["data"]["groups"]
            rules = [rule for g in groups for rule in g["rules"]]
            return (
                rules
                if rules and all(r.get("lastEvaluation", "0001")[:4] != "0001" for r in rules)
                else []
            )

        wait_for(rules_evaluated, timeout_s=60, what="the alert rules to be evaluated")
        rules = rules_evaluated()
        declared = (MON / "alerts.yml").read_text().count("- alert: ")
        assert len(rules) == declared and all(rule["health"] == "ok" for rule in rules), rules

        def down_alerts() -> list:
            alerts = prom_query(port, "/api/v1/alerts")["data"]["alerts"]
            return [a for a in alerts if a["labels"]["alertname"] == "EmostreamWorkerDown"]

        # an evaluation from before the first scrape may still show it pending: the next
        # one, with the worker scraped, must clear it
        wait_for(lambda: not down_alerts(), timeout_s=60, what="no EmostreamWorkerDown")
        w.kill()  # the worker disappears: its down-alert goes pending
        w.wait(10)

        def pending() -> bool:
            alerts = prom_query(port, "/api/v1/alerts")["data"]["alerts"]
            return any(a["labels"]["alertname"] == "EmostreamWorkerDown" for a in alerts)

        wait_for(pending, timeout_s=30, what="EmostreamWorkerDown pending")
    finally:
        prom.terminate()
        prom.wait(30)
