"""A plain Kubernetes deployment of tritonserver: Deployment, Service, HorizontalPodAutoscaler."""

from __future__ import annotations

from typing import Any

from compiler.deploy.needs import PACKAGES_MOUNT, ServerNeeds
from compiler.deploy.options import DeployOptions
from compiler.releases import image

HTTP, GRPC, METRICS = 8000, 8001, 8002
MODELS_MOUNT = "/models"


def _metadata(options: DeployOptions, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": options.name, "labels": {"app.kubernetes.io/name": options.name,
                                                            "app.kubernetes.io/component": "tritonserver"}}
    if options.namespace:
        meta["namespace"] = options.namespace
    meta.update(extra)
    return meta


def _repository_args(options: DeployOptions) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(--model-repository value, env, volumes, volume mounts)."""
    volumes: list[dict[str, Any]] = [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}]
    mounts: list[dict[str, Any]] = [{"name": "shm", "mountPath": "/dev/shm"}]
    env: list[dict[str, Any]] = []
    if options.storage_uri is not None:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            env.append({"name": key, "valueFrom": {"secretKeyRef": {"name": options.s3_secret, "key": key,
                                                                    "optional": True}}})
        return options.storage_uri.text, env, volumes, mounts
    volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": f"{options.name}-models", "readOnly": True}})
    mounts.append({"name": "models", "mountPath": MODELS_MOUNT, "readOnly": True})
    return MODELS_MOUNT, env, volumes, mounts


def deployment(options: DeployOptions, release: str, resources: dict[str, dict[str, str]],
               needs: ServerNeeds | None = None) -> dict[str, Any]:
    repository, env, volumes, mounts = _repository_args(options)
    needs = needs or ServerNeeds()
    env = env + [{"name": key, "value": value} for key, value in sorted(needs.environment.items())]
    init = packages_installer(needs, release)
    if init:
        volumes.append({"name": "pipeline-packages", "emptyDir": {}})
        mounts.append({"name": "pipeline-packages", "mountPath": PACKAGES_MOUNT, "readOnly": True})
        env.append({"name": "PYTHONPATH", "value": PACKAGES_MOUNT})
    args = [f"--model-repository={repository}", f"--http-port={HTTP}", f"--grpc-port={GRPC}",
            f"--metrics-port={METRICS}", "--exit-on-error=true", "--strict-readiness=true", *needs.arguments]
    if options.variant:
        args.append(f"--model-config-name={options.variant}")

    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "failureThreshold": failures}

    container = {
        "name": "tritonserver",
        "image": image(release),
        "command": ["tritonserver"],
        "args": args,
        "ports": [{"name": "http", "containerPort": HTTP}, {"name": "grpc", "containerPort": GRPC},
                  {"name": "metrics", "containerPort": METRICS}],
        "env": env,
        "resources": resources,
        # Loading models can take minutes: the startup probe holds the other two off until the server is live.
        "startupProbe": probe("/v2/health/live", 10, 60),
        "livenessProbe": probe("/v2/health/live", 10, 3),
        "readinessProbe": probe("/v2/health/ready", 5, 3),
        "volumeMounts": mounts,
    }
    selector = {"app.kubernetes.io/name": options.name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(options),
        "spec": {
            "replicas": options.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": _metadata(options)["labels"],
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS),
                                    "prometheus.io/path": "/metrics"},
                },
                "spec": {**({"initContainers": init} if init else {}), "containers": [container], "volumes": volumes,
                         "terminationGracePeriodSeconds": 60},
            },
        },
    }


def packages_installer(needs: ServerNeeds, release: str) -> list[dict[str, Any]]:
    """An init container, from the server's own image, that pip-installs what the pipelines' steps import into the
    volume the server reads on PYTHONPATH (none when there is nothing to install)."""
    if not needs.packages:
        return []
    return [{"name": "pipeline-packages", "image": image(release), "command": ["pip", "install", "--no-cache-dir",
                                                                              "--target", PACKAGES_MOUNT, *needs.packages],
             "volumeMounts": [{"name": "pipeline-packages", "mountPath": PACKAGES_MOUNT}]}]


def service(options: DeployOptions) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(options),
        "spec": {
            "selector": {"app.kubernetes.io/name": options.name},
            "ports": [{"name": name, "port": port, "targetPort": name, "protocol": "TCP"}
                      for name, port in (("http", HTTP), ("grpc", GRPC), ("metrics", METRICS))],
        },
    }


def autoscaler(options: DeployOptions) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(options),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": options.name},
            "minReplicas": options.replicas,
            "maxReplicas": options.ceiling,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                          "target": {"type": "Utilization", "averageUtilization": 70}}}],
        },
    }
