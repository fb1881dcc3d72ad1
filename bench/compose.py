"""The compose stack on a real Docker engine: how long the images take to build, how long the stack
takes to be ready, how big the images are, and one honest request through the containers.

    python bench/compose.py [--json] [--no-cold]

Starts its own dockerd (tests/compose/engine.py: overlay2, else vfs; a private socket and data root under
/var/tmp/opml-docker) and stops it at the end. Prints its figures; the last line is one JSON object:
- build_s.cold: every image built with an empty build cache (the base image is kept; --no-cold skips it)
- build_s.warm: the same build again, nothing changed (every step from the cache)
- up_to_ready_s: `docker compose up -d` with built images to every healthcheck passing (the
  deployer done), on new volumes (median of 2)
- image_mb: each image's size as `docker images` counts it
- honest_request_s: POST /inference-requests of the seed's 7 to its result final, through the
  published ports (challenge window 8 s of it), median of 3
Targets: up_to_ready_s <= 60; every image but the converter's <= 600 MB. Not part of CI's test run.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opml.resources import seed_model_dir  # noqa: E402
from tests.compose.engine import Engine, Project, log  # noqa: E402

SEVEN = (seed_model_dir() / "input_7.bin").read_bytes()
DEPLOY_OPTIONS = "--challenge-window 8 --clock-budget 90"


def honest_request(project: Project, http: httpx.Client, model: str) -> float:
    body = {"model": model, "input_base64": base64.b64encode(SEVEN).decode()}
    started = time.monotonic()
    response = http.post(f"{project.url('submitter')}/inference-requests", json=body)
    response.raise_for_status()
    request_id = response.json()["request_id"]
    while time.monotonic() - started < 300:
        report = http.get(f"{project.url('submitter')}/inference-requests/{request_id}")
        if report.status_code == 200 and report.json()["status"] == "final":
            assert report.json()["result"]["predicted"] == 7
            return time.monotonic() - started
        time.sleep(0.25)
    raise RuntimeError(f"request {request_id} not final after 300 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--no-cold", action="store_true", help="skip the build from an empty cache")
    args = parser.parse_args()
    figures: dict = {"build_s": {}}
    with Engine() as engine:
        engine.ensure_base_image()
        project = Project(engine, name="opml-bench", env={"OPML_DEPLOY_OPTIONS": DEPLOY_OPTIONS})
        try:
            project.down()
            project.faults = False
            if not args.no_cold:
                for image in engine.client.images.list():
                    if any(tag.startswith("opml-") and not tag.startswith("opml-base:") for tag in image.tags):
                        engine.client.images.remove(image.id, force=True)
                engine.client.api.prune_builds()
                figures["build_s"]["cold"] = round(project.build(), 1)
                log(f"cold build: {figures['build_s']['cold']} s")
            else:
                project.build()
            figures["build_s"]["warm"] = round(project.build(), 1)
            figures["image_mb"] = project.image_sizes()
            ready = []
            for attempt in range(2):
                if attempt:
                    project.down()
                    project.faults = False
                started = time.monotonic()
                project.compose("up", "-d")
                project.wait_ready(timeout=300)
                ready.append(time.monotonic() - started)
                log(f"up to ready: {ready[-1]:.1f} s")
            figures["up_to_ready_s"] = round(statistics.median(ready), 1)
            http = httpx.Client(timeout=60)
            upload = http.post(
                f"{project.url('converter')}/models",
                files={"file": ("seed.state_dict", (seed_model_dir() / "mnist-small.state_dict").read_bytes())},
                data={"register": "true"},
                timeout=180,
            )
            upload.raise_for_status()
            times = [honest_request(project, http, upload.json()["id"]) for _ in range(3)]
            figures["honest_request_s"] = round(statistics.median(times), 2)
        finally:
            project.down()
    figures["targets"] = {
        "up_to_ready_s<=60": figures["up_to_ready_s"] <= 60,
        "image_mb<=600_but_converter": all(
            mb <= 600 for name, mb in figures["image_mb"].items() if name != "converter"
        ),
    }
    if not args.json:
        for key, value in figures.items():
            print(f"{key:>18}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
