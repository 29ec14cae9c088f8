"""`config:` on a model: raw fields of Triton's ModelConfig, merged into the config the build generates, for what
the manifest has no key of its own (model_transaction_policy, metric_tags, optimization,
model_repository_agents, rate limiting, ...).

Three checks, each at the manifest's line: the fields parse as a ModelConfig (protobuf's own JSON reading, the
names of config.pbtxt); none is a field the manifest sets (OWNED says which key sets it); and, at the build, none
contradicts what the build derived (a scheduler where the build chose dynamic batching, say: `merge`). The build
then holds the whole config to the target release's own ModelConfig schema, and `check` reads it like any other.

    problems = raw_config_problems(model.config)       # [(field, message, hint)], empty when it is fine
    merged = merge(config, model.config)                 # the generated config with the raw fields; ValueError
"""

from __future__ import annotations

from typing import Any

#: ModelConfig fields the manifest (or the build) sets, and the key that sets them.
OWNED = {
    "name": "name", "platform": "export", "backend": "export", "runtime": "export",
    "default_model_filename": "export (the build names the model file)", "max_batch_size": "max_batch_size",
    "input": "inputs", "output": "outputs", "instance_group": "instance_group",
    "dynamic_batching": "dynamic_batching", "parameters": "parameters", "model_warmup": "warmup",
    "version_policy": "version_policy", "ensemble_scheduling": "pipelines:", "response_cache": "response_cache",
    "sequence_batching": "sequence_batching",
    "batch_input": "inputs (the build proves forward() with the inputs it binds; a pipeline's encoder adds its own)",
    "batch_output": "outputs (the build proves the outputs it binds)",
}


#: Raw fields that a PyTorch model accepts but NVIDIA's pytorch_backend reads nothing of, or that need more than a
#: config; written beside each in docs/manifest.md. (r26.05 sources: src/pt, src/pt2.)
APPLIES = {
    "optimization": "read by the server (priority, input pinned memory; execution_accelerators are ONNX Runtime's "
    "and TensorFlow's: pytorch_backend's sources read none)",
    "sequence_batching": "TorchScript only: r26.05's src/pt2/model_instance_state.cc refuses any sequence batcher for a "
    "package; its controls bind by <name>__<index> (src/pt ValidateBooleanSequenceControl); implicit state "
    "(`state`) is not expressed: a TorchScript model keeps no state between requests that freezing keeps; core "
    "refuses it beside response_cache",
    "cc_model_filenames": "TensorRT's per compute capability files; pytorch_backend loads the one model file",
    "model_operations": "custom operator libraries for ONNX Runtime and OpenVINO; pytorch_backend reads none",
    "model_transaction_policy": "decoupled: pytorch_backend sends one response per request (src/pt, src/pt2 have no "
    "decoupled path), so only `decoupled: false` applies to a model",
    "model_metrics": "histogram buckets for the server's metrics, from the releases whose schema has it (not 24.10)",
    "model_repository_agents": "run by the server when it loads the model (checksum, ...); the agent must be installed",
}


def parse(raw: dict[str, Any]) -> Any:
    """The raw fields as a ModelConfig; ValueError with protobuf's words where they are not ModelConfig fields."""
    from google.protobuf import json_format
    from tritonclient.grpc import model_config_pb2 as pb

    try:
        return json_format.ParseDict(raw, pb.ModelConfig())
    except json_format.ParseError as err:
        said = str(err).replace('Message type "inference.ModelConfig"', "ModelConfig").splitlines()[0]
        raise ValueError(said.split(' at "ModelConfig')[0].rstrip(".")) from None


def raw_config_problems(raw: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """(key, message, hint) for each raw field that is not a ModelConfig field (or not of its type), or one the
    manifest sets; each found on its own, so that each is reported at its own line."""
    found = []
    for key, value in (raw or {}).items():
        if key in OWNED:
            found.append((key, f"set by the manifest's `{OWNED[key].split(' (')[0]}`",
                          f"remove it from config: and use `{OWNED[key]}`"))
            continue
        try:
            parse({key: value})
        except ValueError as err:
            found.append((key, str(err), "use the field names and values of Triton's model_config.proto (as "
                          "config.pbtxt writes them)"))
    return found


def _set(message: Any) -> set[str]:
    return {field.name for field, _ in message.ListFields()}


def merge(config: Any, raw: dict[str, Any] | None) -> Any:
    """`config` with the raw fields merged in; ValueError naming the field where one contradicts what the build set
    (a field it set, or another member of the same oneof: the scheduler)."""
    if not raw:
        return config
    extra = parse(raw)
    derived = _set(config)
    for field, _ in extra.ListFields():
        if field.name in derived:
            raise ValueError(f"config.{field.name}: the build sets it")
        group = field.containing_oneof
        if group is not None:
            chosen = config.WhichOneof(group.name)
            if chosen is not None:
                raise ValueError(f"config.{field.name}: the build chose {chosen} for this model, and a model has one "
                                 f"{group.name}")
    config.MergeFrom(extra)
    return config
