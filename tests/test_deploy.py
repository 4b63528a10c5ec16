"""Offline checks of the production deployment files (no Docker engine or cluster needed).

The manifests are only ever exercised for real on a cluster, so these tests catch what would otherwise
surface at deploy time: schema errors, unpinned images, settings names that the app does not read,
cross-references (ConfigMap names, ports, mount paths) that drift apart, and a KEDA ceiling that no
longer matches the partition count.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from orchestrator.config import Settings
from orchestrator.rules.loader import load_rules

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCS = ROOT / "docs" / "production.md"
BIN = Path(sys.executable).parent

# The oldest Kubernetes minor still commonly run, and the newest the validator knows.
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())
CRD_GROUPS = ("keda.sh/",)
SETTINGS_ENV = {f"JOURNEY_{name.upper()}" for name in Settings.model_fields}
JOURNEY_VAR = re.compile(r"\bJOURNEY_[A-Z0-9_]*[A-Z0-9]\b")
# Compose services that run once and exit: they need no healthcheck, but must not be restarted.
ONE_SHOT_SERVICES = {"topics", "simulator"}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def _generated_configmaps() -> Iterator[dict[str, Any]]:
    """What `kustomize build` makes of configMapGenerator, so it is validated like the rest."""
    for gen in _kustomization().get("configMapGenerator", []):
        data = {Path(f).name: (K8S / f).read_text() for f in gen.get("files", [])}
        labels = gen.get("options", {}).get("labels", {})
        yield {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": gen["name"], "namespace": "journey", "labels": labels},
            "data": data,
        }


def _resources() -> list[dict[str, Any]]:
    docs = [doc for name in _kustomization()["resources"] for doc in _documents(K8S / name)]
    return docs + list(_generated_configmaps())


def _one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [r for r in _resources() if r["kind"] == kind and (name is None or r["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _settings_env() -> dict[str, str]:
    env = dict(_one("ConfigMap", "journey-settings")["data"])
    env.update(_one("Secret", "journey-secrets")["stringData"])
    return env


def _settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Parse the deployed values the way a worker does, from its environment."""
    for key in list(os.environ):
        if key.startswith("JOURNEY_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    return Settings()


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [
        (r["metadata"]["name"], r["spec"]["template"]["spec"])
        for r in _resources()
        if r["kind"] in {"StatefulSet", "Job", "Deployment"}
    ]


# Kubernetes


def test_kustomization_lists_every_manifest() -> None:
    listed = set(_kustomization()["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    for gen in _kustomization()["configMapGenerator"]:
        for f in gen["files"]:
            assert (K8S / f).is_file(), f


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_builtin_manifests_validate_against_kubernetes_schemas(version: str) -> None:
    checked = 0
    for resource in _resources():
        if resource["apiVersion"].startswith(CRD_GROUPS):
            continue
        kubernetes_validate.validate(resource, version, strict=True)
        checked += 1
    assert checked >= 9


def test_every_resource_lives_in_the_journey_namespace() -> None:
    for resource in _resources():
        if resource["kind"] != "Namespace":
            assert resource["metadata"].get("namespace") == "journey", resource["metadata"]["name"]
    assert _one("Namespace")["metadata"]["name"] == _kustomization()["namespace"]


def test_deployed_settings_parse_as_the_worker_would(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings_from(_settings_env(), monkeypatch)
    assert settings.replication_factor == 3
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.redis_url is not None
    assert settings.redis_url.startswith("rediss://")
    assert settings.log_format == "json"


def test_worker_statefulset_wiring(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings_from(_settings_env(), monkeypatch)
    sts = _one("StatefulSet", "journey-worker")
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]

    assert "replicas" not in spec, "KEDA owns the replica count"
    assert spec["podManagementPolicy"] == "Parallel"
    assert container["args"] == ["worker"]
    assert pod["terminationGracePeriodSeconds"] >= 30

    headless = _one("Service", spec["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"

    port = {p["name"]: p["containerPort"] for p in container["ports"]}["web"]
    assert port == settings.web_port
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/healthz"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300, "table recovery takes minutes"

    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    claims = {c["metadata"]["name"] for c in spec["volumeClaimTemplates"]}
    assert Path(mounts["data"]["mountPath"]) == settings.data_dir
    assert "data" in claims
    rules_mount = mounts["rules"]
    assert Path(rules_mount["mountPath"]) == settings.rules
    assert "subPath" not in rules_mount, "subPath mounts never receive ConfigMap updates"
    rules_cm = volumes["rules"]["configMap"]["name"]
    generator = next(g for g in _kustomization()["configMapGenerator"] if g["name"] == rules_cm)
    assert generator["options"]["disableNameSuffixHash"] is True, "a hashed name defeats hot reload"

    env_from = {next(iter(src.values()))["name"] for src in container["envFrom"]}
    assert env_from == {"journey-settings", "journey-secrets"}


def test_pods_are_hardened() -> None:
    pods = _pod_specs()
    assert {name for name, _ in pods} == {"journey-worker", "journey-topics"}
    for name, pod in pods:
        assert pod["enableServiceLinks"] is False, f"{name}: service links inject JOURNEY_*_PORT variables"
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), name
            assert "memory" in container["resources"]["limits"], name
            writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
            assert {"/tmp", "/var/lib/journey"} <= writable, name


def test_services_and_pdb_select_the_workers() -> None:
    labels = _one("StatefulSet", "journey-worker")["spec"]["template"]["metadata"]["labels"]
    selectors = [s["spec"]["selector"] for s in _resources() if s["kind"] == "Service"]
    selectors.append(_one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"])
    for selector in selectors:
        assert selector.items() <= labels.items()
    for service in (r for r in _resources() if r["kind"] == "Service"):
        assert not service["metadata"]["name"].startswith("journey-web"), "collides with JOURNEY_WEB_*"


def test_topics_job_creates_topics() -> None:
    job = _one("Job", "journey-topics")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["topics", "create"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"OnFailure", "Never"}


def test_images_are_pinned_by_kustomize() -> None:
    (image,) = _kustomization()["images"]
    assert image["newTag"] and image["newTag"] != "latest"
    used = {c["image"] for _, pod in _pod_specs() for c in pod["containers"]}
    assert used == {image["name"]}


def test_keda_scaled_object(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings_from(_settings_env(), monkeypatch)
    scaled = _one("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == ("apps/v1", "StatefulSet")
    _one(target["kind"], target["name"])

    assert spec["maxReplicaCount"] == settings.partitions
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]

    topics = set()
    auth_names = {r["metadata"]["name"] for r in _resources() if r["kind"] == "TriggerAuthentication"}
    for trigger in spec["triggers"]:
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        assert all(isinstance(v, str) for v in meta.values()), "KEDA trigger metadata values are strings"
        assert meta["consumerGroup"] == settings.ingest_group
        assert meta["bootstrapServers"] == settings.kafka_bootstrap
        assert int(meta["lagThreshold"]) > 0
        assert meta["allowIdleConsumers"] == "false"
        assert trigger["authenticationRef"]["name"] in auth_names
        topics.add(meta["topic"])
    assert topics == {settings.touchpoint_topic(c) for c in settings.channels}


def test_keda_trigger_authentication_reads_existing_secret_keys() -> None:
    secrets = {r["metadata"]["name"]: r for r in _resources() if r["kind"] == "Secret"}
    for auth in (r for r in _resources() if r["kind"] == "TriggerAuthentication"):
        assert auth["apiVersion"] == "keda.sh/v1alpha1"
        refs = auth["spec"]["secretTargetRef"]
        assert {ref["parameter"] for ref in refs} == {"username", "password"}
        for ref in refs:
            assert ref["key"] in secrets[ref["name"]]["stringData"]


def test_starter_rules_load() -> None:
    """The same all-or-nothing load as `journey rules validate` and the workers' hot reload."""
    rule_set = load_rules(K8S / "rules")
    assert rule_set.rules


# Dockerfile


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def test_dockerfile_passes_hadolint() -> None:
    proc = subprocess.run(
        [str(BIN / "hadolint"), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for line in DOCKERFILE.read_text().splitlines():
        if "hadolint ignore" in line:
            assert re.search(r"hadolint ignore=\S+\s+\S", line), f"ignore without a reason: {line}"


def test_dockerfile_shape() -> None:
    instructions = _dockerfile_instructions()
    froms = [arg for op, arg in instructions if op == "FROM"]
    assert len(froms) >= 2, "multi-stage build"
    for base in froms:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm AS \w+", base), base
    final = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM") :]
    ops = {op: arg for op, arg in final}
    assert "--from=builder" in " ".join(arg for op, arg in final if op == "COPY")
    user = ops["USER"]
    arg_defaults = dict(a.split("=", 1) for op, a in final if op == "ARG" and "=" in a)
    uid = re.sub(r"\$\{(\w+)\}", lambda m: arg_defaults[m.group(1)], user).split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric non-root user (runAsNonRoot can check it)"
    assert ops["ENTRYPOINT"] == '["journey"]'
    assert ops["CMD"] == '["worker"]'
    assert "/healthz" in ops["HEALTHCHECK"]
    assert "WORKDIR" in ops
    assert "VOLUME" in ops
    env = " ".join(arg for op, arg in final if op == "ENV")
    assert "JOURNEY_RULES=/etc/journey/rules" in env
    assert f"JOURNEY_WEB_PORT={ops['EXPOSE']}" in env


def test_dockerignore_admits_every_copied_path() -> None:
    allowed = {
        ln[1:].rstrip("/") for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.startswith("!")
    }
    for op, arg in _dockerfile_instructions():
        if op != "COPY" or "--from" in arg:
            continue
        *sources, _dest = arg.split()
        for src in sources:
            assert src in allowed, f"{src} is excluded from the build context"
            assert (ROOT / src).exists(), src


# Compose


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _image_is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name = image.rsplit("/", 1)[-1]
    return ":" in name and name.rsplit(":", 1)[1] not in {"", "latest"}


def _bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Relative host path -> container path, for the short `src:dst[:mode]` syntax."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[source] = target
    return mounts


def test_compose_images_are_pinned() -> None:
    for name, service in _compose()["services"].items():
        assert _image_is_pinned(service["image"]), f"{name}: {service['image']}"


def test_compose_services_have_healthchecks_or_are_one_shot() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        if name in ONE_SHOT_SERVICES:
            assert service["restart"] == "no", name
            assert "healthcheck" not in service, name
        else:
            test = service["healthcheck"]["test"]
            assert test and test != ["NONE"], name
            assert service["restart"] == "unless-stopped", name
    for name, service in services.items():
        for dep, cond in service.get("depends_on", {}).items():
            wanted = "service_completed_successfully" if dep in ONE_SHOT_SERVICES else "service_healthy"
            assert cond["condition"] == wanted, f"{name} -> {dep}"


def test_compose_topology(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["topics"]["command"] == ["topics", "create"]
    assert services["simulator"]["profiles"] == ["simulator"]
    assert services["simulator"]["command"][0] == "simulate"

    workers = {n: s for n, s in services.items() if s.get("command") == ["worker"]}
    assert len(workers) == 2
    envs = [s["environment"] for s in (*workers.values(), services["topics"], services["simulator"])]
    assert all(env == envs[0] for env in envs), "topics, workers and simulator must agree on settings"
    settings = _settings_from(envs[0], monkeypatch)
    data_volumes = set()
    for service in workers.values():
        volumes = service["volumes"]
        data = [v for v in volumes if v.endswith(f":{settings.data_dir}")]
        assert len(data) == 1
        data_volumes.add(data[0])
        assert f"../../examples/rules:{settings.rules}:ro" in volumes
    assert len(data_volumes) == len(workers), "each worker needs its own RocksDB volume"

    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "journey")
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {f"{name}:{settings.web_port}" for name in workers}
    mounts = _bind_mounts(services["prometheus"])
    assert mounts["../prometheus/alerts.yml"] in prometheus["rule_files"]
    assert mounts["../prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"


def test_compose_bind_mounts_exist() -> None:
    for name, service in _compose()["services"].items():
        for source in _bind_mounts(service):
            assert (COMPOSE.parent / source).exists(), f"{name}: {source}"


def test_grafana_provisioning_points_at_mounted_dashboards() -> None:
    grafana = _compose()["services"]["grafana"]
    dashboard = Path(_bind_mounts(grafana)["../grafana/journey.json"])
    provisioning = COMPOSE.parent / "grafana" / "provisioning"
    providers = yaml.safe_load((provisioning / "dashboards" / "journey.yml").read_text())["providers"]
    assert any(Path(p["options"]["path"]) == dashboard.parent for p in providers)
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert [s["url"] for s in sources] == ["http://prometheus:9090"]


# Settings names everywhere


def _files_mentioning_settings() -> list[Path]:
    files = [p for p in DEPLOY.rglob("*") if p.is_file()]
    return [*files, ROOT / ".dockerignore", DOCS]


def test_every_journey_variable_is_a_setting() -> None:
    unknown = {}
    for path in _files_mentioning_settings():
        for var in JOURNEY_VAR.findall(path.read_text(errors="replace")):
            if var not in SETTINGS_ENV:
                unknown.setdefault(var, path.relative_to(ROOT))
    assert not unknown, f"not fields of orchestrator.config.Settings: {unknown}"


def test_docs_point_at_existing_files() -> None:
    text = DOCS.read_text()
    for ref in set(re.findall(r"`((?:deploy|docs|examples)/[\w./-]+)`", text)):
        assert (ROOT / ref).exists(), ref
