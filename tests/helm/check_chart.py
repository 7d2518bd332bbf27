#!/usr/bin/env python3
"""Checks helm/leakwatch with the real Helm engine (helm-python-sdk) and Kubernetes schemas.

Run by tests/integration/helm.rs with the venv that tests/run.sh prepares:

    .cache/venv/bin/python tests/helm/check_chart.py

Checks: strict lint; a render of every ci/*-values.yaml scenario, each manifest validated against
the Kubernetes schemas (kubernetes-validate, strict) or, for the Prometheus Operator kinds, their
required fields; the restricted Pod Security Standard on every rendered container; NOTES.txt; the
monitors' scrape settings (sampleLimit, relabelings, namespaceSelector, jobLabel, labels); the
image reference (registry, digest, pull secrets); the probes; CONTAINER_NAME; the values schema
rejecting wrong types and unknown keys; a parent chart that includes the sidecar template; and
the chart's copies of alerts/ and dashboards/ being in sync (LEAKWATCH_BLESS=1 re-syncs).
Prints one line per check and `helm: N passed, N failed`; exits 1 on any failure.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "leakwatch"
PARENT = ROOT / "tests" / "helm" / "parent"
KUBE_VERSION = "1.30.0"
OPERATOR_KINDS = {
    # kind: required spec fields (the CRDs' own required lists, and what makes them useful)
    "ServiceMonitor": ["selector", "endpoints"],
    "PodMonitor": ["selector", "podMetricsEndpoints"],
    "PrometheusRule": ["groups"],
}

RESULTS: list[tuple[str, str | None]] = []


def check(name):
    def run(fn):
        try:
            fn()
            RESULTS.append((name, None))
            print(f"ok    {name}")
        except Exception as e:  # a failed check is reported, the others still run
            detail = str(e) if isinstance(e, AssertionError) else traceback.format_exc()
            RESULTS.append((name, detail))
            print(f"FAIL  {name}: {detail}")
        return fn

    return run


def render(chart: helm.Chart, values: dict) -> list[dict]:
    out = chart.render(values, name="rel", namespace="shop", is_install=True)
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc["__template"] = path
                docs.append(doc)
    return docs


def notes(chart: helm.Chart, values: dict) -> str:
    out = chart.render(values, name="rel", namespace="shop", is_install=True)
    [text] = [t for p, t in out.items() if p.endswith("templates/NOTES.txt")]
    return text


def sidecar_of(docs: list[dict]) -> dict:
    [(_, spec)] = pod_specs(docs)
    return next(c for c in spec["containers"] if c["name"] == "leakwatch")


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def validate(doc: dict) -> None:
    body = {k: v for k, v in doc.items() if k != "__template"}
    kind = body.get("kind")
    where = f"{doc['__template']} {kind} {body.get('metadata', {}).get('name')}"
    assert body.get("metadata", {}).get("name"), f"{where}: no metadata.name"
    if kind in OPERATOR_KINDS:
        assert body.get("apiVersion") == "monitoring.coreos.com/v1", f"{where}: apiVersion {body.get('apiVersion')}"
        for field in OPERATOR_KINDS[kind]:
            assert body.get("spec", {}).get(field), f"{where}: spec.{field} is missing or empty"
        return
    try:
        kubernetes_validate.validate(body, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        raise AssertionError(f"{where}: {e.message} at {list(e.path)}") from None


def pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    return [
        (d["metadata"]["name"], d["spec"]["template"]["spec"])
        for d in docs
        if d.get("kind") in ("Deployment", "DaemonSet", "StatefulSet")
    ]


def assert_restricted(where: str, spec: dict) -> None:
    """The Kubernetes 'restricted' Pod Security Standard, field by field."""
    assert not spec.get("hostPID") and not spec.get("hostNetwork") and not spec.get("hostIPC"), where
    pod_sc = spec.get("securityContext", {})
    for c in spec["containers"]:
        sc = c.get("securityContext", {})
        name = f"{where}/{c['name']}"
        assert sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation must be false"
        assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, f"{name}: runAsNonRoot"
        assert sc.get("runAsUser", pod_sc.get("runAsUser", 1)) != 0, f"{name}: runs as root"
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: must drop ALL capabilities"
        assert not sc.get("capabilities", {}).get("add"), f"{name}: adds capabilities"
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        assert seccomp in ("RuntimeDefault", "Localhost"), f"{name}: seccompProfile {seccomp}"
        assert not sc.get("privileged"), f"{name}: privileged"
        if c["name"] == "leakwatch":
            assert sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem"


def assert_leakwatch_accepts(config: str, where: str) -> None:
    """The real binary validates the rendered config file (`generate` loads and checks it all)."""
    binary = os.environ.get("LEAKWATCH_BIN")
    assert binary, "LEAKWATCH_BIN is not set (tests/integration/helm.rs sets it)"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(config)
        f.flush()
        out = subprocess.run(
            [binary, "generate", "prometheus-rules", "--config", f.name, "--output", os.devnull],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert out.returncode == 0, f"{where}: leakwatch rejects the rendered config ({out.returncode}): {out.stderr}"


def scenarios() -> dict[str, dict]:
    return {p.name: (yaml.safe_load(p.read_text()) or {}) for p in sorted((CHART / "ci").glob("*-values.yaml"))}


@check("lint (strict)")
def _lint():
    report = helm.lint(str(CHART), strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


@check("every key of values.yaml has a comment above it")
def _comments():
    import re

    lines = (CHART / "values.yaml").read_text().splitlines()
    bare = [
        f"line {i + 1}: {line.strip()}"
        for i, line in enumerate(lines)
        if re.match(r"^\s*[A-Za-z_][A-Za-z0-9_]*:", line) and not lines[i - 1].strip().startswith("#")
    ]
    assert not bare, bare


@check("image tag default equals the chart's appVersion")
def _tag():
    chart = helm.Chart.load(str(CHART))
    assert chart.values["image"]["tag"] == chart.metadata["appVersion"], (
        chart.values["image"]["tag"],
        chart.metadata["appVersion"],
    )


def scenario_check(file: str, values: dict):
    @check(f"render and validate ci/{file}")
    def _run():
        chart = helm.Chart.load(str(CHART))
        chart.validate_schema(values)
        docs = render(chart, values)
        assert docs, "nothing rendered"
        for d in docs:
            validate(d)
        for name, spec in pod_specs(docs):
            assert_restricted(name, spec)
            names = [c["name"] for c in spec["containers"]]
            assert "leakwatch" in names, names
        for d in docs:
            if d["kind"] == "ConfigMap" and "config.yaml" in d.get("data", {}):
                assert_leakwatch_accepts(d["data"]["config.yaml"], f"{file} {d['metadata']['name']}")
        kinds = sorted(d["kind"] for d in docs)
        print(f"      {file}: {', '.join(kinds)}")


for _file, _values in scenarios().items():
    scenario_check(_file, _values)


@check("a default install renders the config, the dashboards and NOTES.txt")
def _default_install():
    chart = helm.Chart.load(str(CHART))
    docs = render(chart, {})
    names = sorted(d["metadata"]["name"] for d in docs)
    assert [d["kind"] for d in docs] == ["ConfigMap", "ConfigMap"], names
    assert names == ["rel-leakwatch-config", "rel-leakwatch-dashboards"], names
    text = notes(chart, {})
    for needed in [
        "rel-leakwatch-config",
        'include "leakwatch.sidecar"',
        'include "leakwatch.volumes"',
        "shareProcessNamespace: true",
        "config.target",
        "target.containerName",
        "securityContext.runAsUser",
        "podMonitor.enabled",
        "kubectl -n shop port-forward",
        "curl -s http://localhost:10171/metrics",
        "leakwatch_memory_utilization_ratio",
        "No PodMonitor or ServiceMonitor is enabled",
    ]:
        assert needed in text, f"NOTES.txt lacks {needed!r}:\n{text}"
    demo = notes(chart, {"demo": {"enabled": True}, "podMonitor": {"enabled": True}})
    assert "port-forward deploy/rel-leakwatch-demo 10171" in demo and "PodMonitor rel-leakwatch" in demo, demo
    assert "No PodMonitor" not in demo and "DEPRECATED" not in demo, demo
    tls = notes(chart, {"web": {"configSecret": "w", "tls": True}})
    assert "curl -s https://localhost:10171/metrics" in tls, tls
    old = notes(chart, {"serviceMonitor": {"enabled": True, "labels": {"release": "p"}}})
    assert "DEPRECATED" in old and "additionalLabels" in old, old


@check("every toggle renders its resource")
def _toggles():
    chart = helm.Chart.load(str(CHART))
    for key, kind in [
        ("service", "Service"),
        ("serviceMonitor", "ServiceMonitor"),
        ("podMonitor", "PodMonitor"),
        ("prometheusRule", "PrometheusRule"),
        ("demo", "Deployment"),
    ]:
        kinds = [d["kind"] for d in render(chart, {key: {"enabled": True}})]
        assert kind in kinds, f"{key}.enabled renders no {kind}: {kinds}"
    dash = [d for d in render(chart, {}) if d["kind"] == "ConfigMap"]
    labelled = [d for d in dash if d["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert labelled and all(k.endswith(".json") for k in labelled[0]["data"]), dash
    off = render(chart, {"dashboards": {"enabled": False}})
    assert not any("grafana_dashboard" in d["metadata"]["labels"] for d in off), off


@check("dashboards.multiCluster shows the dashboards' cluster variable")
def _multi_cluster():
    import json

    chart = helm.Chart.load(str(CHART))
    for multi, hide in [(False, 2), (True, 0)]:
        [cm] = [d for d in render(chart, {"dashboards": {"multiCluster": multi}}) if "grafana_dashboard" in d["metadata"]["labels"]]
        assert len(cm["data"]) == 3, list(cm["data"])
        for name, text in cm["data"].items():
            variables = {v["name"]: v for v in json.loads(text)["templating"]["list"]}
            assert variables["cluster"]["hide"] == hide, (multi, name, variables["cluster"])
            assert variables["job"]["hide"] == 0, (multi, name)


@check("the monitors carry sampleLimit, relabelings, namespaceSelector, jobLabel, additionalLabels and detail")
def _monitors():
    chart = helm.Chart.load(str(CHART))
    relabel = [{"targetLabel": "cluster", "replacement": "east"}]
    drop = [{"sourceLabels": ["__name__"], "regex": "leakwatch_http_.*", "action": "drop"}]
    settings = {
        "enabled": True,
        "additionalLabels": {"release": "prometheus"},
        "labels": {"team": "sre", "release": "old"},
        "sampleLimit": 5000,
        "jobLabel": "app.kubernetes.io/name",
        "namespaceSelector": {"matchNames": ["shop", "web"]},
        "relabelings": relabel,
        "metricRelabelings": drop,
        "detail": True,
    }
    docs = render(chart, {"serviceMonitor": settings, "podMonitor": settings})
    monitors = {d["kind"]: d for d in docs if d["kind"] in ("ServiceMonitor", "PodMonitor")}
    assert set(monitors) == {"ServiceMonitor", "PodMonitor"}, list(monitors)
    for kind, m in monitors.items():
        validate(m)
        labels = m["metadata"]["labels"]
        assert labels["release"] == "prometheus" and labels["team"] == "sre", f"{kind}: additionalLabels win, labels merge: {labels}"
        spec = m["spec"]
        assert spec["sampleLimit"] == 5000 and spec["jobLabel"] == "app.kubernetes.io/name", spec
        assert spec["namespaceSelector"] == {"matchNames": ["shop", "web"]}, spec
        [endpoint] = spec.get("endpoints") or spec["podMetricsEndpoints"]
        assert endpoint["relabelings"] == relabel and endpoint["metricRelabelings"] == drop, endpoint
        assert endpoint["params"] == {"detail": ["1"]}, f"{kind}: detail scrapes /metrics?detail=1: {endpoint}"
    # The defaults: sampleLimit 3000 (the bound the series test checks, with room), nothing else.
    docs = render(chart, {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}})
    for m in (d for d in docs if d["kind"] in ("ServiceMonitor", "PodMonitor")):
        spec = m["spec"]
        assert spec["sampleLimit"] == 3000, spec
        assert "jobLabel" not in spec and "namespaceSelector" not in spec, spec
        [endpoint] = spec.get("endpoints") or spec["podMetricsEndpoints"]
        assert "relabelings" not in endpoint and "metricRelabelings" not in endpoint, endpoint
        assert "params" not in endpoint, f"the default scrape has no detail: {endpoint}"
    # sampleLimit 0: no limit.
    docs = render(chart, {"podMonitor": {"enabled": True, "sampleLimit": 0}})
    [pm] = [d for d in docs if d["kind"] == "PodMonitor"]
    assert "sampleLimit" not in pm["spec"], pm["spec"]


@check("the image takes a registry (or global.imageRegistry), a digest and pull secrets")
def _image():
    chart = helm.Chart.load(str(CHART))
    digest = "sha256:" + "ab" * 32
    cases = [
        ({}, "leakwatch/leakwatch:0.1.0"),
        ({"image": {"registry": "registry.example.com"}}, "registry.example.com/leakwatch/leakwatch:0.1.0"),
        ({"image": {"digest": digest}}, f"leakwatch/leakwatch:0.1.0@{digest}"),
        ({"image": {"tag": "", "digest": digest}}, f"leakwatch/leakwatch@{digest}"),
        (
            {"image": {"registry": "a.example"}, "global": {"imageRegistry": "mirror.example"}},
            "mirror.example/leakwatch/leakwatch:0.1.0",
        ),
    ]
    for values, image in cases:
        values = {**values, "demo": {"enabled": True}}
        chart.validate_schema(values)
        assert sidecar_of(render(chart, values))["image"] == image, (values, image)
    values = {"demo": {"enabled": True}, "imagePullSecrets": [{"name": "regcred"}]}
    chart.validate_schema(values)
    docs = render(chart, values)
    [(_, spec)] = pod_specs(docs)
    assert spec["imagePullSecrets"] == [{"name": "regcred"}], spec
    for d in docs:
        validate(d)
    [(_, spec)] = pod_specs(render(chart, {"demo": {"enabled": True}}))
    assert "imagePullSecrets" not in spec, spec


@check("the probes are configurable and can be turned off")
def _probes():
    chart = helm.Chart.load(str(CHART))
    values = {
        "demo": {"enabled": True},
        "readinessProbe": {"periodSeconds": 7, "timeoutSeconds": 3, "failureThreshold": 5, "initialDelaySeconds": 2},
        "livenessProbe": {"enabled": False},
    }
    chart.validate_schema(values)
    lw = sidecar_of(render(chart, values))
    probe = lw["readinessProbe"]
    assert probe["httpGet"]["path"] == "/readyz", probe
    assert (probe["periodSeconds"], probe["timeoutSeconds"], probe["failureThreshold"], probe["initialDelaySeconds"]) == (7, 3, 5, 2), probe
    assert "enabled" not in probe, probe
    assert "livenessProbe" not in lw, lw
    lw = sidecar_of(render(chart, {"demo": {"enabled": True}}))
    assert lw["livenessProbe"]["periodSeconds"] == 20 and lw["readinessProbe"]["periodSeconds"] == 5, lw


@check("CONTAINER_NAME names the application's container, not leakwatch's")
def _container_name():
    chart = helm.Chart.load(str(CHART))
    docs = render(chart, {"demo": {"enabled": True}})
    [(_, spec)] = pod_specs(docs)
    app = [c["name"] for c in spec["containers"] if c["name"] != "leakwatch"]
    assert env_of(sidecar_of(docs))["CONTAINER_NAME"] == "app" and app == ["app"], (env_of(sidecar_of(docs)), app)
    assert "POD_IP" in env_of(sidecar_of(docs)), "pushed alerts' instance"


@check("the security values wire the flags, Secret mounts, probes and scrape auth")
def _security():
    chart = helm.Chart.load(str(CHART))
    values = yaml.safe_load((CHART / "ci" / "security-values.yaml").read_text())
    docs = render(chart, values)
    [(_, spec)] = pod_specs(docs)
    lw = next(c for c in spec["containers"] if c["name"] == "leakwatch")
    assert "--admin-token-file=/etc/leakwatch/admin/token" in lw["args"], lw["args"]
    assert "--web.config.file=/etc/leakwatch/web/web-config.yml" in lw["args"], lw["args"]
    mounts = {m["name"]: m["mountPath"] for m in lw["volumeMounts"]}
    assert mounts["leakwatch-admin"] == "/etc/leakwatch/admin" and mounts["leakwatch-web"] == "/etc/leakwatch/web", mounts
    assert all(not m.get("subPath") for m in lw["volumeMounts"]), "a subPath mount never sees a changed ConfigMap or Secret"
    secrets = {v["name"]: v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
    assert secrets == {"leakwatch-admin": "leakwatch-admin", "leakwatch-web": "leakwatch-web"}, secrets
    for probe in ("readinessProbe", "livenessProbe"):
        assert lw[probe].get("tcpSocket") == {"port": "leakwatch"}, f"basic auth covers the probe paths: {lw[probe]}"
    monitors = [d for d in docs if d["kind"] in ("ServiceMonitor", "PodMonitor")]
    assert len(monitors) == 2, [d["kind"] for d in docs]
    for m in monitors:
        [endpoint] = m["spec"].get("endpoints") or m["spec"]["podMetricsEndpoints"]
        assert endpoint["scheme"] == "https", endpoint
        assert endpoint["tlsConfig"]["serverName"] == "leakwatch", endpoint
        assert endpoint["basicAuth"]["password"] == {"name": "leakwatch-scrape", "key": "password"}, endpoint
    # TLS without basic auth: HTTPS probes on the real paths.
    tls_only = {"web": {"configSecret": "leakwatch-web", "tls": True}, "demo": {"enabled": True}}
    [(_, spec)] = pod_specs(render(chart, tls_only))
    lw = next(c for c in spec["containers"] if c["name"] == "leakwatch")
    assert lw["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "leakwatch", "scheme": "HTTPS"}, lw
    # Without a web config: plain HTTP everywhere, no Secret volume, no flag.
    [(_, spec)] = pod_specs(render(chart, {"demo": {"enabled": True}}))
    lw = next(c for c in spec["containers"] if c["name"] == "leakwatch")
    assert lw["readinessProbe"]["httpGet"]["scheme"] == "HTTP", lw
    assert not any(a.startswith(("--web.config.file", "--admin-token-file")) for a in lw["args"]), lw["args"]
    assert not any("secret" in v for v in spec["volumes"]), spec["volumes"]


@check("the PrometheusRule carries the generated alert rules and the recording rules unchanged")
def _rules():
    chart = helm.Chart.load(str(CHART))
    generated = yaml.safe_load((ROOT / "alerts" / "leakwatch-rules.yaml").read_text())["groups"]
    recording = yaml.safe_load((ROOT / "alerts" / "leakwatch-recording-rules.yaml").read_text())["groups"]
    assert any("record" in r for g in recording for r in g["rules"]), recording
    for values, groups in [
        ({"prometheusRule": {"enabled": True}}, generated + recording),
        ({"prometheusRule": {"enabled": True, "recordingRules": False}}, generated),
    ]:
        rule = next(d for d in render(chart, values) if d["kind"] == "PrometheusRule")
        assert rule["spec"]["groups"] == groups, f"{values}: the groups differ from alerts/"
    rule = next(
        d
        for d in render(chart, {"prometheusRule": {"enabled": True, "additionalLabels": {"release": "prometheus"}}})
        if d["kind"] == "PrometheusRule"
    )
    assert rule["metadata"]["labels"]["release"] == "prometheus", rule["metadata"]


@check("the values schema rejects wrong types and unknown keys")
def _schema():
    chart = helm.Chart.load(str(CHART))
    chart.validate_schema({})
    for bad, needle in [
        ({"port": "10171"}, "/port"),
        ({"port": 70000}, "/port"),
        ({"serviceMonitor": {"enabld": True}}, "enabld"),
        ({"imagee": {}}, "imagee"),
        ({"config": {"target": {"pidd": 3}}}, "pidd"),
        ({"config": {"interval": 5}}, "/config/interval"),
        ({"config": {"logs": {"sources": [{"name": "a/b", "path": "/x"}]}}}, "/config/logs/sources/0/name"),
        ({"config": {"logs": {"sources": [{"name": "a", "path": "relative.log"}]}}}, "/config/logs/sources/0/path"),
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"demo": {"memoryLimit": "lots"}}, "memoryLimit"),
        ({"config": {"connections": {"peers": [{"name": "db", "remote_port": 5432}]}}}, "limit"),
        ({"config": {"connections": {"method": "netlink"}}}, "/config/connections/method"),
        ({"config": {"alerts": {"rulez": []}}}, "rulez"),
        ({"web": {"tls": "yes"}}, "/web/tls"),
        ({"admin": {"token": "x"}}, "token"),
        ({"config": {"logs": {"basic_auth_users": {"reader": "plaintext"}}}}, "/config/logs/basic_auth_users/reader"),
        ({"podMonitor": {"sampleLimit": -1}}, "/podMonitor/sampleLimit"),
        ({"serviceMonitor": {"namespaceSelector": {"anyy": True}}}, "anyy"),
        ({"serviceMonitor": {"relabelings": {"a": 1}}}, "/serviceMonitor/relabelings"),
        ({"image": {"digest": "abc"}}, "/image/digest"),
        ({"image": {"tag": ""}}, "/image/tag': minLength"),
        ({"imagePullSecrets": ["regcred"]}, "/imagePullSecrets/0"),
        ({"readinessProbe": {"periodSecond": 3}}, "periodSecond"),
        ({"livenessProbe": {"enabled": "no"}}, "/livenessProbe/enabled"),
        ({"target": {"containerName": "App_1"}}, "/target/containerName"),
        ({"prometheusRule": {"recordingRules": "yes"}}, "/prometheusRule/recordingRules"),
    ]:
        try:
            chart.validate_schema(bad)
        except helm.HelmError as e:
            assert needle in str(e), f"{bad}: {e}"
        else:
            raise AssertionError(f"accepted {bad}")


@check("a parent chart that includes the sidecar template renders a pod with both containers")
def _parent():
    with tempfile.TemporaryDirectory(prefix="leakwatch-helm-") as tmp:
        parent = Path(tmp) / "shop"
        shutil.copytree(PARENT, parent)
        shutil.copytree(CHART, parent / "charts" / "leakwatch", ignore=shutil.ignore_patterns("ci"))
        chart = helm.Chart.load(str(parent))
        docs = render(chart, {})
        for d in docs:
            validate(d)
        [(name, spec)] = pod_specs(docs)
        assert [c["name"] for c in spec["containers"]] == ["shop", "leakwatch"], spec["containers"]
        assert spec["shareProcessNamespace"] is True
        assert_restricted(name, spec)
        sidecar = spec["containers"][1]
        assert sidecar["image"] == "leakwatch/leakwatch:0.1.0", sidecar["image"]
        assert env_of(sidecar)["CONTAINER_NAME"] == "shop", "defaults to the including chart's name (its container's)"
        named = sidecar_of(render(chart, {"leakwatch": {"target": {"containerName": "api"}}}))
        assert env_of(named)["CONTAINER_NAME"] == "api", env_of(named)
        assert sidecar["securityContext"]["runAsUser"] == 1000, "the parent's UID for leakwatch"
        volume = next(v for v in spec["volumes"] if v["name"] == "leakwatch-config")
        configs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
        assert volume["configMap"]["name"] in configs, (volume, list(configs))
        config = yaml.safe_load(configs[volume["configMap"]["name"]]["data"]["config.yaml"])
        assert config["target"] == {"process_name": "shop"}, config


@check("the chart's copies of alerts/ and dashboards/ are in sync")
def _sync():
    pairs = [
        (ROOT / "alerts" / name, CHART / "files" / name)
        for name in ("leakwatch-rules.yaml", "leakwatch-recording-rules.yaml")
    ]
    pairs += [(p, CHART / "files" / "dashboards" / p.name) for p in sorted((ROOT / "dashboards").glob("*.json"))]
    assert len(pairs) > 1, "no dashboards in dashboards/"
    stale = [f"{copy.relative_to(ROOT)}" for src, copy in pairs if not copy.exists() or not filecmp.cmp(src, copy, shallow=False)]
    extra = [
        f"{p.relative_to(ROOT)}"
        for p in (CHART / "files" / "dashboards").glob("*.json")
        if not (ROOT / "dashboards" / p.name).exists()
    ]
    if os.environ.get("LEAKWATCH_BLESS") == "1":
        for src, copy in pairs:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, copy)
        for p in extra:
            (ROOT / p).unlink()
        return
    assert not stale and not extra, f"out of sync: {stale + extra}; run LEAKWATCH_BLESS=1 cargo test helm"


failed = [name for name, detail in RESULTS if detail]
print(f"helm: {len(RESULTS) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
