"""The deployment files say what the docs say (no container engine runs here to try them)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

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
