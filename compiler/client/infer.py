"""`infer`: one request to a served model, with names, dtypes and shapes taken from
the served config, so nobody looks up datatype strings or guesses shapes.

Inputs come from .npy files, from text (tokenized with the model's tokenizer when
the manifest says where it is), from an image (resized and normalised), or are
random but well-formed.

    request = build_request(config, manifest_model, text="hello world")
    outputs = run(request, "bert", url="127.0.0.1:8000", protocol="http")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compiler import datatypes
from compiler.backend.pytorch.pt2_names import argument_name
from compiler.errors import Problem, UserError
from compiler.manifest.schema import ModelSpec, TransformersSource
from compiler.sources.paths import resolve_path

VARIABLE_SIZE = 8


@dataclass(frozen=True)
class TensorSpec:
    name: str
    api_dtype: str
    dims: list[int]
    label_filename: str = ""


@dataclass(frozen=True)
class ServedConfig:
    name: str
    max_batch_size: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


def _client(protocol: str, url: str) -> tuple[Any, Any]:
    if protocol == "http":
        import tritonclient.http as module
    else:
        import tritonclient.grpc as module  # type: ignore[no-redef]
    return module, module.InferenceServerClient(url)


def default_url(protocol: str) -> str:
    return "127.0.0.1:8000" if protocol == "http" else "127.0.0.1:8001"


def served_config(model: str, url: str, protocol: str) -> ServedConfig:
    _, client = _client(protocol, url)
    try:
        raw = client.get_model_config(model) if protocol == "http" else client.get_model_config(model, as_json=True)
    except Exception as err:
        text = str(err).splitlines()[0]
        hint = "start the server with `make serve`" if "connect" in text.lower() or "unavailable" in text.lower() else None
        raise UserError(Problem(f"cannot read the config of '{model}' at {url} ({protocol}): {text}", model=model,
                                hint=hint or "check the model name with `curl <url>/v2/repository/index -X POST`")) from None
    config = raw.get("config", raw)

    def tensors(key: str) -> list[TensorSpec]:
        return [TensorSpec(t["name"], datatypes.lookup(t["data_type"]).api_name, [int(d) for d in t.get("dims", [])],
                           str(t.get("label_filename", "")))
                for t in config.get(key, [])]

    return ServedConfig(config["name"], int(config.get("max_batch_size", 0)), tensors("input"), tensors("output"))


def _shape(config: ServedConfig, spec: TensorSpec, sizes: list[int] | None = None) -> list[int]:
    dims = sizes if sizes is not None else [VARIABLE_SIZE if d == -1 else d for d in spec.dims]
    return ([1] if config.max_batch_size > 0 else []) + list(dims)


def random_inputs(config: ServedConfig, manifest_model: ModelSpec | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    examples = {i.name: i for i in manifest_model.inputs} if manifest_model else {}
    arrays = {}
    for spec in config.inputs:
        example = examples[spec.name].example if spec.name in examples else None
        sizes = [s if d == -1 else d for d, s in zip(spec.dims, example.shape)] if example and example.shape else None
        shape = _shape(config, spec, sizes)
        row = datatypes.lookup(spec.api_dtype)
        low = example.low if example and example.low is not None else 0
        high = example.high if example and example.high is not None else (2 if not row.is_floating else 1)
        if row.api_name == "BOOL":
            arrays[spec.name] = rng.integers(0, 2, shape).astype(bool)
        elif row.is_floating:
            arrays[spec.name] = (rng.random(shape) * (high - low) + low).astype(row.numpy_dtype())
        else:
            arrays[spec.name] = rng.integers(int(low), int(high), shape).astype(row.numpy_dtype())
    return arrays


def text_inputs(config: ServedConfig, manifest_model: ModelSpec | None, text: str, base: Path) -> dict[str, np.ndarray]:
    if manifest_model is None or not isinstance(manifest_model.source, TransformersSource):
        raise UserError(Problem("--text needs a transformers model in the manifest (to find its tokenizer)",
                                model=config.name, hint="pass --manifest, or give token ids with --input NAME=FILE.npy"))
    from transformers import AutoTokenizer

    source = manifest_model.source
    location = source.tokenizer or source.transformers
    try:
        folder = str(resolve_path(location, base))
    except ValueError:
        folder = location
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoded = tokenizer([text], return_tensors="np")
    arrays = {}
    for spec in config.inputs:
        key = argument_name(spec.name)
        if key not in encoded:
            raise UserError(Problem(f"the tokenizer gives {sorted(encoded)}, not '{key}'", model=config.name,
                                    hint="name the model's inputs after the tokenizer's outputs (or KWARGS[<them>])"))
        value = encoded[key].astype(datatypes.lookup(spec.api_dtype).numpy_dtype())
        arrays[spec.name] = value if config.max_batch_size > 0 else value[0]
    return arrays


def image_inputs(config: ServedConfig, image: Path) -> dict[str, np.ndarray]:
    """The image laid out as a pipeline's image step lays it out (the same code, pipeline/runtime/steps.py): the
    shorter side resized, the centre cropped to the model's H x W (224 where it is -1), ImageNet's mean and std, at
    the image step's defaults' ratio of resize to crop (256 to 224)."""
    from compiler.manifest.pipelines import ImageStep, is_image_input
    from compiler.pipeline.runtime.steps import DecodeImage, RequestError

    candidates = [s for s in config.inputs if is_image_input(s.api_dtype, s.dims)]
    if len(config.inputs) != 1 or not candidates:
        raise UserError(Problem("--image needs a model with one image input of dims [3, H, W]", model=config.name))
    spec = candidates[0]
    height, width = spec.dims[1], spec.dims[2]
    if height > 0 and width > 0 and height != width:
        raise UserError(Problem(f"--image crops the image's square centre, as a pipeline's image step does; the model "
                                f"takes {height}x{width}", model=config.name, hint="send the image with --input NAME="
                                "FILE.npy, laid out as the model wants it"))
    default = ImageStep.model_validate({"model": config.name})  # its defaults: resize 256, crop 224, ImageNet's mean and std
    crop = max(height, width) if max(height, width) > 0 else default.crop
    step = DecodeImage({"input": "--image", "output": spec.name, "resize": round(crop * default.resize / default.crop),
                        "crop": crop, "mean": list(default.mean), "std": list(default.std),
                        "dtype": np.dtype(datatypes.lookup(spec.api_dtype).numpy_dtype()).name}, "")
    try:
        chw = step.image(image.read_bytes())
    except (RequestError, OSError) as err:
        raise UserError(Problem(f"cannot read the image {image}: {err}", model=config.name)) from None
    return {spec.name: chw[None] if config.max_batch_size > 0 else chw}


def file_inputs(config: ServedConfig, given: dict[str, Path]) -> dict[str, np.ndarray]:
    arrays = {}
    names = {s.name: s for s in config.inputs}
    aliases = {argument_name(s.name): s.name for s in config.inputs}  # --input input_ids=... for KWARGS[input_ids]
    for name, path in given.items():
        name = name if name in names else aliases.get(name, name)
        if name not in names:
            raise UserError(Problem(f"the model has no input '{name}' (it has {', '.join(names)})", model=config.name))
        try:
            value = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise UserError(Problem(f"cannot read {path} as .npy: {err}", model=config.name)) from None
        want = datatypes.lookup(names[name].api_dtype).numpy_dtype()
        if value.dtype != want:
            if not np.can_cast(value.dtype, want, casting="same_kind"):
                raise UserError(Problem(f"{path} holds {value.dtype}, input '{name}' is {names[name].api_dtype}",
                                        model=config.name, hint=f"save it as {want}"))
            value = value.astype(want)
        arrays[name] = value
    return arrays


def raw_input(config: ServedConfig) -> TensorSpec | None:
    """The one BYTES input of a model that takes raw text or image bytes (a pipeline), else None."""
    return config.inputs[0] if len(config.inputs) == 1 and config.inputs[0].api_dtype == "BYTES" else None


def raw_inputs(config: ServedConfig, item: bytes) -> dict[str, np.ndarray]:
    spec = raw_input(config)
    assert spec is not None
    array = np.empty((1, 1) if config.max_batch_size > 0 else (1,), dtype=np.object_)
    array.flat[0] = item
    return {spec.name: array}


def run(config: ServedConfig, arrays: dict[str, np.ndarray], url: str, protocol: str,
        classes: int | None = None) -> dict[str, np.ndarray]:
    """`classes`: ask Triton's classification extension for the top K of each output that has labels (of every
    output where none has), answered as score:index:label strings."""
    module, client = _client(protocol, url)
    missing = [s.name for s in config.inputs if s.name not in arrays]
    if missing:
        raise UserError(Problem(f"no value for input(s) {missing}", model=config.name,
                                hint="give them with --input NAME=FILE.npy, or give none to send random inputs"))
    request = []
    for spec in config.inputs:
        item = module.InferInput(spec.name, list(arrays[spec.name].shape), spec.api_dtype)
        item.set_data_from_numpy(arrays[spec.name])
        request.append(item)
    labelled = [s.name for s in config.outputs if s.label_filename] or [s.name for s in config.outputs]
    wanted = [module.InferRequestedOutput(s.name, class_count=classes if classes and s.name in labelled else 0)
              for s in config.outputs]
    try:
        result = client.infer(config.name, request, outputs=wanted)
    except Exception as err:
        raise UserError(Problem(f"the server refused the request: {str(err).splitlines()[0]}", model=config.name)) from None
    return {spec.name: result.as_numpy(spec.name) for spec in config.outputs}


def summarize(name: str, value: np.ndarray) -> str:
    if value.dtype == np.object_:  # strings: labels, or score:index:label from the classification extension
        words = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in value.reshape(-1)]
        return f"{name}: " + ", ".join(words[:20]) + (" ..." if len(words) > 20 else "")
    text = f"{name}: {value.dtype} {list(value.shape)}"
    if value.dtype == datatypes.lookup("BF16").numpy_dtype():
        value = value.astype(np.float32)
    if value.size and np.issubdtype(value.dtype, np.number):
        flat = value.astype(np.float64).ravel()
        text += f"  min {flat.min():.4g}  max {flat.max():.4g}  mean {flat.mean():.4g}"
        if value.ndim == 2 and value.shape[1] >= 10:
            top = np.argsort(value[0])[::-1][:5]
            text += "  top-5 " + ", ".join(f"{i}:{value[0, i]:.3g}" for i in top)
    return text


@dataclass(frozen=True)
class InferResult:
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    random_inputs: bool  # nothing given: well-formed random inputs, shaped by the served config
    saved: list[Path]
    #: whether the manifest's entry shaped the request: True, False (the served model is another one), None (none given)
    used_manifest: bool | None = None


def matches(config: ServedConfig, model: ModelSpec) -> bool:
    """The served model is the manifest's: the same inputs (names, dtypes, dims) and batching."""
    if config.max_batch_size != model.max_batch_size:
        return False
    served = [(t.name, t.api_dtype, list(t.dims)) for t in config.inputs]
    declared = [(i.name, datatypes.lookup(i.dtype).api_name, list(i.dims) or [1]) for i in model.inputs]
    return served == declared


@dataclass(frozen=True)
class InferRequest:
    """What `infer` is asked: the served model, where, and what to send (text, an image, .npy files, or random
    inputs where none is given); the manifest entry that shapes it, where outputs are saved, the classes to ask."""

    model: str
    url: str | None = None
    protocol: str = "http"
    files: dict[str, Path] = field(default_factory=dict)
    text: str | None = None
    image: Path | None = None
    manifest_model: ModelSpec | None = None
    manifest_dir: Path = Path(".")
    output_dir: Path | None = None
    classes: int | None = None


def infer(request: InferRequest) -> InferResult:
    """One request to a served model: inputs from text, an image, .npy files, or random; outputs saved as NAME.npy in
    `output_dir` when given. A model that takes raw bytes (a pipeline) is sent the text or the image file as they
    are."""
    model, protocol, files, text, image = request.model, request.protocol, request.files, request.text, request.image
    manifest_model, manifest_dir, output_dir = request.manifest_model, request.manifest_dir, request.output_dir
    address = request.url or default_url(protocol)
    config = served_config(model, address, protocol)
    used = None if manifest_model is None else matches(config, manifest_model)
    if not used:
        manifest_model = None  # another model of that name: its example shapes and tokenizer would be wrong
    if text is not None and raw_input(config):
        arrays = raw_inputs(config, text.encode("utf-8"))
    elif image is not None and raw_input(config):
        arrays = raw_inputs(config, Path(image).read_bytes())
    elif text is not None:
        arrays = text_inputs(config, manifest_model, text, manifest_dir)
    elif image is not None:
        arrays = image_inputs(config, image)
    elif files:
        arrays = file_inputs(config, files)
    else:
        arrays = random_inputs(config, manifest_model)
    outputs = run(config, arrays, address, protocol, request.classes)
    saved = []
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        for name, value in outputs.items():
            np.save(output_dir / f"{name}.npy", value)
            saved.append(output_dir / f"{name}.npy")
    return InferResult(arrays, outputs, not (text is not None or image is not None or files), saved, used)
