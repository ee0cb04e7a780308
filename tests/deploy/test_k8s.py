"""deploy/k8s, offline: each overlay renders with `kubectl kustomize`, validates strictly against
the Kubernetes 1.30 and 1.37 schemas (`kubernetes-validate`), and fits the image and the service
(user, writable paths, probes, the drain, settings the service knows). No cluster is involved."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from app.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BIN = Path(sys.executable).parent
OVERLAYS = ("dev", "production")
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
# Read by the container entrypoint, not by Settings.
NOT_SETTINGS = {"RUN_MIGRATIONS"}


def _tool(name: str) -> str:
    path = BIN / name
    assert path.is_file(), f"{name} is a dev dependency (uv sync): {path} is missing"
    return str(path)


def render(overlay: str) -> str:
    done = subprocess.run(
        [_tool("kubectl"), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    text = render(request.param)
    path = tmp_path_factory.mktemp("k8s") / f"{request.param}.yaml"
    path.write_text(text)
    docs = [d for d in yaml.safe_load_all(text) if d]
    return request.param, path, docs


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_resource_validates_strictly(overlay: Any, version: str) -> None:
    _name, path, _docs = overlay
    files = [str(path), str(K8S / "base" / "secret.example.yaml")]
    done = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, *files],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_validator_rejects_an_unknown_field(tmp_path: Path) -> None:
    """The check above can fail: a misspelt field in a Deployment is refused."""
    bad = render("dev").replace("readOnlyRootFilesystem", "readOnlyRootFileSystem", 1)
    (tmp_path / "bad.yaml").write_text(bad)
    done = subprocess.run(
        [
            _tool("kubernetes-validate"),
            "--strict",
            "--quiet",
            "-k",
            "1.37.0",
            str(tmp_path / "bad.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode != 0


def _image_user() -> tuple[int, int]:
    match = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert match, "the Dockerfile sets a numeric USER uid:gid"
    return int(match.group(1)), int(match.group(2))


def _config(docs: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = one(docs, "ConfigMap", "taskhub-config")["data"]
    return data


def test_the_api_pods_fit_the_image_and_drain_in_time(overlay: Any) -> None:
    _name, _path, docs = overlay
    deployment = one(docs, "Deployment", "taskhub-api")
    pod = deployment["spec"]["template"]["spec"]
    (api,) = pod["containers"]
    uid, gid = _image_user()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = api["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid)
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert api["startupProbe"]["httpGet"]["path"] == "/health"
    assert {"cpu", "memory"} <= api["resources"]["requests"].keys()
    assert "memory" in api["resources"]["limits"]
    config = _config(docs)
    # Every writable path the service uses is a mounted volume (the root is read-only).
    mounts = [m["mountPath"] for m in api["volumeMounts"]]
    assert any(config["PROMETHEUS_MULTIPROC_DIR"].startswith(m + "/") for m in mounts)
    # SIGKILL comes only after the preStop sleep, the drain and the in-flight timeout.
    pre_stop = api["lifecycle"]["preStop"]["sleep"]["seconds"]
    needed = (
        pre_stop + float(config["SHUTDOWN_DRAIN_SECONDS"]) + int(config["SHUTDOWN_TIMEOUT_SECONDS"])
    )
    assert pod["terminationGracePeriodSeconds"] >= needed + 5
    assert config["SERVE_WORKER"] == "false"
    assert config["RUN_MIGRATIONS"] == "false"
    strategy = deployment["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0


def test_the_worker_pods_fit_the_image_probe_the_loop_and_stop_between_steps(
    overlay: Any,
) -> None:
    _name, _path, docs = overlay
    deployment = one(docs, "Deployment", "taskhub-worker")
    pod = deployment["spec"]["template"]["spec"]
    (worker,) = pod["containers"]
    uid, gid = _image_user()
    assert worker["args"] == ["taskhub", "worker"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = worker["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid)
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False
    env = {e["name"]: e["value"] for e in worker["env"]}
    config = {**_config(docs), **env}
    # (The secrets come from the Secret; only the worker's numbers matter here.)
    settings = load_settings(environ={**config, "ENVIRONMENT": "development"}, dotenv_path=None)
    (port,) = worker["ports"]
    assert port["containerPort"] == settings.WORKER_PORT
    for probe in ("livenessProbe", "startupProbe"):
        assert worker[probe]["httpGet"] == {"path": "/health/live", "port": port["name"]}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(settings.WORKER_PORT)
    assert {"cpu", "memory"} <= worker["resources"]["requests"].keys()
    assert "memory" in worker["resources"]["limits"]
    mounts = [m["mountPath"] for m in worker["volumeMounts"]]
    assert any(config["PROMETHEUS_MULTIPROC_DIR"].startswith(m + "/") for m in mounts)
    # SIGTERM ends the loop after the step in progress (at most one statement timeout).
    step_seconds = settings.DATABASE_STATEMENT_TIMEOUT_MS / 1000
    assert pod["terminationGracePeriodSeconds"] >= step_seconds + 10
    # A killed pod's job is taken over once its lease runs out; a live pod renews in time.
    assert 2 * step_seconds <= settings.WORKER_LEASE_SECONDS
    policy = one(docs, "NetworkPolicy", "taskhub-worker")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


def test_the_config_holds_only_settings_the_service_accepts(overlay: Any) -> None:
    _name, _path, docs = overlay
    config = _config(docs)
    known = {f.name for f in msgspec.structs.fields(Settings)} | NOT_SETTINGS
    assert set(config) <= known, set(config) - known
    secrets = {
        "SESSION_HASH_SECRET": "9f86d081884c7d659a2feaa0c55ad015",
        "SERVICE_AUTH_TOKEN": "2c26b46b68ffc68ff99b453c1d304134",
        "ENCRYPTION_KEY": "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FyYnk=",
        "DATABASE_URL": "postgresql+asyncpg://taskhub:pw@db:5432/taskhub",
    }
    load_settings(environ={**config, **secrets}, dotenv_path=None)


def test_scaling_disruption_and_network_rules_exist(overlay: Any) -> None:
    _name, _path, docs = overlay
    hpa = one(docs, "HorizontalPodAutoscaler", "taskhub-api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["scaleTargetRef"]["name"] == "taskhub-api"
    assert one(docs, "PodDisruptionBudget", "taskhub-api")["spec"]["maxUnavailable"] == 1
    policy = one(docs, "NetworkPolicy", "taskhub-api")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    service = one(docs, "Service", "taskhub-api")
    pod_labels = one(docs, "Deployment", "taskhub-api")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_the_migration_job_uses_the_direct_url(overlay: Any) -> None:
    _name, _path, docs = overlay
    job = one(docs, "Job", "taskhub-migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["taskhub", "migrate"]
    env = {e["name"]: e for e in container.get("env", [])}
    assert env["MIGRATION_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == (
        "MIGRATION_DATABASE_URL"
    )
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_production_pins_its_image_and_goes_through_pgbouncer() -> None:
    docs = [d for d in yaml.safe_load_all(render("production")) if d]
    images = {
        c["image"]
        for d in docs
        if d["kind"] in {"Deployment", "Job"}
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    for image in images:
        assert "@sha256:" in image or re.search(r":[\w][\w.-]*$", image), image
        assert not image.endswith(":latest"), image
    assert _config(docs)["DATABASE_PGBOUNCER"] == "true"
    pgbouncer = one(docs, "ConfigMap", "taskhub-pgbouncer")["data"]["pgbouncer.ini"]
    assert "pool_mode = transaction" in pgbouncer


def test_the_secret_example_holds_placeholders_that_production_refuses() -> None:
    example = yaml.safe_load((K8S / "base" / "secret.example.yaml").read_text())
    values: dict[str, str] = example["stringData"]
    assert all("REPLACE_ME" in v for v in values.values())
    with pytest.raises(SettingsError):
        load_settings(environ={"ENVIRONMENT": "production", **values}, dotenv_path=None)
