#!/usr/bin/env python3
"""Checks helm/leakwatch with the real Helm engine (helm-python-sdk) and Kubernetes schemas.

Run by tests/integration/helm.rs with the venv that tests/run.sh prepares:

    .cache/venv/bin/python tests/helm/check_chart.py

Checks: strict lint; a render of every ci/*-values.yaml scenario, each manifest validated against
the Kubernetes schemas (kubernetes-validate, strict) or, for the Prometheus Operator kinds, their
required fields; the restricted Pod Security Standard on every rendered container; the values
schema rejecting wrong types and unknown keys; a parent chart that includes the sidecar template;
and the chart's copies of alerts/ and dashboards/ being in sync (LEAKWATCH_BLESS=1 re-syncs).
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
        for doc in yaml.safe_load_all(text):
            if doc:
                doc["__template"] = path
                docs.append(doc)
    return docs


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


@check("every toggle renders its resource")
def _toggles():
    chart = helm.Chart.load(str(CHART))
    base = {d["kind"] for d in render(chart, {})}
    assert base == {"ConfigMap"}, base
    for key, kind in [
        ("service", "Service"),
        ("serviceMonitor", "ServiceMonitor"),
        ("podMonitor", "PodMonitor"),
        ("prometheusRule", "PrometheusRule"),
        ("demo", "Deployment"),
    ]:
        kinds = [d["kind"] for d in render(chart, {key: {"enabled": True}})]
        assert kind in kinds, f"{key}.enabled renders no {kind}: {kinds}"
    dash = [d for d in render(chart, {"dashboards": {"enabled": True}}) if d["kind"] == "ConfigMap"]
    labelled = [d for d in dash if d["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert labelled and all(k.endswith(".json") for k in labelled[0]["data"]), dash


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


@check("the PrometheusRule carries the generated rules unchanged")
def _rules():
    chart = helm.Chart.load(str(CHART))
    rule = next(d for d in render(chart, {"prometheusRule": {"enabled": True}}) if d["kind"] == "PrometheusRule")
    generated = yaml.safe_load((ROOT / "alerts" / "leakwatch-rules.yaml").read_text())
    assert rule["spec"]["groups"] == generated["groups"], "the rule groups differ from alerts/leakwatch-rules.yaml"


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
        assert sidecar["securityContext"]["runAsUser"] == 1000, "the parent's UID for leakwatch"
        volume = next(v for v in spec["volumes"] if v["name"] == "leakwatch-config")
        configs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
        assert volume["configMap"]["name"] in configs, (volume, list(configs))
        config = yaml.safe_load(configs[volume["configMap"]["name"]]["data"]["config.yaml"])
        assert config["target"] == {"process_name": "shop"}, config


@check("the chart's copies of alerts/ and dashboards/ are in sync")
def _sync():
    pairs = [(ROOT / "alerts" / "leakwatch-rules.yaml", CHART / "files" / "leakwatch-rules.yaml")]
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
