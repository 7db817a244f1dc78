"""Deployment as code, checked without a broker: metrics catalogue, dashboards, alert rules
(promtool), the compose file and the Kubernetes manifests (Kubernetes' own schemas)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from stream.config import CHANNELS_IN
from stream.shell.collector.metrics import CollectorMetrics
from stream.shell.metrics import CountsCollector, Metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.30"
METRIC = re.compile(r"\b(journey_[a-z_]+|up)\b")


def registry() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every metric the worker and the collector define: name -> (type, labels)."""
    found = {}
    collectors = [*Metrics().registry._collector_to_names]
    collectors += [*CollectorMetrics(CHANNELS_IN).registry._collector_to_names]
    for value in collectors:
        if isinstance(value, MetricWrapperBase):
            name = value._name + ("_total" if value._type == "counter" else "")
            found[name] = (value._type, tuple(value._labelnames))
        elif isinstance(value, CountsCollector):
            found[value.name + "_total"] = ("counter", (value.label,))
    return found


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool not found: apt-get install prometheus (.ci/run installs it)")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=DEPLOY)


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expression) of every panel target."""
    queries = []
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            queries += [(path.name, panel["title"], t["expr"]) for t in panel["targets"]]
    return queries


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_catalogue_documents_every_metric_with_its_type_and_labels() -> None:
    rows = re.findall(
        r"^\| `(journey_[a-z_]+)` \| (\w+) \| ([^|]*) \|",
        (ROOT / "docs/metrics.md").read_text(),
        re.M,
    )
    documented = {
        name: (kind, tuple(re.findall(r"`(\w+)`", labels))) for name, kind, labels in rows
    }
    assert documented == registry()


def test_metric_names_follow_the_prometheus_conventions() -> None:
    for name, (kind, labels) in registry().items():
        assert name.startswith("journey_"), name
        assert (kind == "counter") == name.endswith("_total"), name
        if kind == "histogram":
            assert name.endswith(("_seconds", "_events")), f"{name}: a unit in the name"
        assert not {"customer", "customer_id", "key", "event_id"} & set(labels), name


def test_dashboards_and_alerts_query_only_metrics_the_worker_exports() -> None:
    exported = {*registry(), "up"}
    histograms = {n for n, (kind, _) in registry().items() if kind == "histogram"}
    exprs = [expr for _, _, expr in dashboard_queries()] + [r["expr"] for r in alert_rules()]
    for expr in exprs:
        for name in METRIC.findall(expr):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert name in exported or base in histograms, f"{name} in {expr}"


def test_the_dashboards_are_generated_from_their_source() -> None:
    run = subprocess.run(
        [sys.executable, str(DEPLOY / "grafana" / "dashboards.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout
    queries = dashboard_queries()
    assert len(queries) > 30
    assert all('env=~"$env"' in expr and 'instance=~"$worker"' in expr for _, _, expr in queries)


def test_grafana_provisioning_matches_the_dashboards_and_compose() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    [source] = datasource["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "journey.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert f"./grafana/dashboards:{path}:ro" in compose["services"]["grafana"]["volumes"]
    for name in ("operations.json", "customer-journey.json", "collector.json"):
        document = json.loads((DEPLOY / "grafana" / "dashboards" / name).read_text())
        variables = {v["name"] for v in document["templating"]["list"]}
        assert variables == {"datasource", "env", "worker"}


def test_prometheus_config_and_alert_rules_pass_promtool() -> None:
    for args in (
        ("check", "config", "prometheus/prometheus.yml"),
        ("check", "rules", "prometheus/alerts.yml"),
        ("test", "rules", "prometheus/alerts_test.yml"),
    ):
        run = promtool(*args)
        assert run.returncode == 0, f"promtool {' '.join(args)}:\n{run.stdout}{run.stderr}"


def test_every_alert_is_a_query_compared_with_a_threshold_and_explained() -> None:
    for rule in alert_rules():
        assert re.search(r"(==|!=|>=|<=|>|<)\s*[0-9.]+$", rule["expr"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_compose_file_runs_kafka_workers_prometheus_and_grafana() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "worker-1", "worker-2", "prometheus", "grafana"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    ids = {
        services[w]["environment"]["JOURNEY_GROUP_INSTANCE_ID"] for w in ("worker-1", "worker-2")
    }
    assert len(ids) == 2
    for name in ("worker-1", "worker-2"):
        env = services[name]["environment"]
        assert env["JOURNEY_BROKER"] == "kafka:19092" and env["JOURNEY_WEB_HOST"] == "0.0.0.0"
    for volume in services["prometheus"]["volumes"] + services["grafana"]["volumes"]:
        assert (DEPLOY / volume.split(":")[0]).exists(), volume
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    [job] = scrape["scrape_configs"]
    assert job["job_name"] == "journey"
    targets = {t.split(":")[0] for t in job["static_configs"][0]["targets"]}
    assert targets == {"worker-1", "worker-2"}
    assert (ROOT / services["worker-1"]["build"]["dockerfile"]).exists()


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        if path.name != "kustomization.yaml":
            documents += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text())]
    return documents


def test_the_kubernetes_manifests_validate_against_the_kubernetes_schemas() -> None:
    documents = k8s_documents()
    kinds = {doc["kind"] for _, doc in documents}
    assert {"StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget"} <= kinds
    for _, doc in documents:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted({name for name, _ in documents})


def test_the_validator_refuses_a_broken_manifest() -> None:
    [(_, statefulset)] = [(n, d) for n, d in k8s_documents() if d["kind"] == "StatefulSet"]
    broken = json.loads(json.dumps(statefulset))
    broken["spec"]["replicass"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_statefulset_probes_the_web_port_and_keeps_a_stable_identity() -> None:
    [(_, statefulset)] = [(n, d) for n, d in k8s_documents() if d["kind"] == "StatefulSet"]
    pod = statefulset["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/live"
    env = {e["name"]: e for e in container["env"]}
    assert env["JOURNEY_GROUP_INSTANCE_ID"]["value"] == "$(POD_NAME)"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "state"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "6066"


def test_the_policy_configmap_is_the_shipped_policy() -> None:
    run = subprocess.run(
        [sys.executable, str(DEPLOY / "k8s" / "policy_configmap.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout
    [(_, configmap)] = [(n, d) for n, d in k8s_documents() if d["kind"] == "ConfigMap"]
    assert configmap["data"]["policy.yaml"] == (ROOT / "policies" / "default.yaml").read_text()


def test_the_collector_deployment_probes_its_port_and_reads_its_keys_from_a_secret() -> None:
    [(_, deployment)] = [(n, d) for n, d in k8s_documents() if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert container["args"] == ["collector"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    port = int(env["JOURNEY_COLLECTOR_PORT"])
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/live"
    [volume] = pod["spec"]["volumes"]
    [mount] = container["volumeMounts"]
    assert volume["secret"]["secretName"] and mount["name"] == volume["name"]
    assert env["JOURNEY_COLLECTOR_KEYS_FILE"].startswith(mount["mountPath"] + "/")
    assert not [d for _, d in k8s_documents() if d["kind"] == "Secret"]  # no key committed
    services = [d for _, d in k8s_documents() if d["kind"] == "Service"]
    [service] = [d for d in services if d["metadata"]["name"] == "journey-collector"]
    assert service["spec"]["selector"] == pod["metadata"]["labels"]
