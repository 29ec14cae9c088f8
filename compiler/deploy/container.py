"""Dockerfile and docker-compose.yml for serving the repository on NGC tritonserver.

Both are generated from the manifest (the image tag is its triton_version), so
they cannot drift from it; a test compares the committed files with these.

    write_container_files(loaded_manifest, Path("."))
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from ruamel.yaml import YAML

from compiler.deploy.needs import server_needs
from compiler.manifest import LoadedManifest
from compiler.releases import image

GENERATED = "Generated from {manifest} by `python -m compiler container-files`; edit the manifest, not this file."


def dockerfile(loaded: LoadedManifest, repository: str = "Triton/models") -> str:
    release = loaded.manifest.triton_version
    needs = server_needs(loaded)
    return "\n".join([
        f"# {GENERATED.format(manifest=loaded.path.name)}",
        "# Build the repository first (`make repo`): model files (model.pt, model.pt2) are build outputs, not in git.",
        f"FROM {image(release)}",
        *(f"ENV {key}={value}" for key, value in sorted(needs.environment.items())),
        *([f"# what the pipelines' steps import, at the versions the build's proof ran"
           f"\nRUN pip install --no-cache-dir {' '.join(needs.packages)}"] if needs.packages else []),
        f"COPY {repository} /models",
        "EXPOSE 8000 8001 8002",
        'HEALTHCHECK --interval=10s --timeout=3s CMD curl -fs localhost:8000/v2/health/ready || exit 1',
        "CMD " + json.dumps(["tritonserver", "--model-repository=/models", *needs.arguments]),
        "",
    ])


def compose(loaded: LoadedManifest, repository: str = "Triton/models") -> str:
    """The service runs NVIDIA's image with the repository mounted; where the pipelines' steps need packages it
    builds the Dockerfile beside it (which installs them) instead. Docker restarts it when it exits, and its health
    is the server's readiness."""
    release = loaded.manifest.triton_version
    needs = server_needs(loaded)
    source: dict[str, object] = {"build": {"context": "."}, "image": f"triton-repository:{release}"} \
        if needs.packages else {"image": image(release)}
    service = {
        **source,
        "command": ["tritonserver", "--model-repository=/models", *needs.arguments],
        "ports": ["8000:8000", "8001:8001", "8002:8002"],
        "volumes": [f"./{repository}:/models:ro"],
        **({"environment": dict(sorted(needs.environment.items()))} if needs.environment else {}),
        "shm_size": "1g",
        # a model that aborts ends tritonserver (the PyTorch backend runs it in-process): start it again, and call
        # it unhealthy while its models are not READY (the image has curl; the probes Kubernetes gets are the same)
        "restart": "unless-stopped",
        "healthcheck": {"test": ["CMD", "curl", "-fs", "localhost:8000/v2/health/ready"], "interval": "10s",
                        "timeout": "3s", "retries": 3, "start_period": "10m"},
        "deploy": {"resources": {"reservations": {"devices": [
            {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]}}},
    }
    buffer = io.StringIO()
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.dump({"services": {"tritonserver": service}}, buffer)
    return f"# {GENERATED.format(manifest=loaded.path.name)}\n" + buffer.getvalue()


def write_container_files(loaded: LoadedManifest, directory: Path) -> list[Path]:
    written = []
    for name, text in (("Dockerfile", dockerfile(loaded)), ("docker-compose.yml", compose(loaded))):
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written
