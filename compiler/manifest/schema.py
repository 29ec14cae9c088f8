"""The models.yaml schema. Unknown keys are errors everywhere (a typo must not
be silently ignored); everything Triton would reject later is rejected here.

The JSON Schema generated from these models is committed under proto/ so that
editors complete and check models.yaml.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator

from compiler import datatypes
from compiler.manifest.pipelines import PipelineSpec
from compiler.releases import DEFAULT_RELEASE, Release, known_release

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
#: Folder names that some filesystems reserve: a repository must copy anywhere.
RESERVED_NAMES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _dtype(value: Any) -> str:
    try:
        return datatypes.lookup(str(value)).config_name
    except datatypes.UnknownDataType as err:
        raise ValueError(str(err)) from None


DType = Annotated[str, Field(description="Triton datatype: TYPE_FP32, or the API form FP32")]


def reshape_problem(name: str, what: str, dims: list[int], reshape: list[int] | None) -> None:
    """A reshape Triton core accepts (ValidateIOShape: as many elements as dims) and the build can prove: fixed sizes
    on both sides, so that one drawn request has one shape for the model and one for its clients."""
    if reshape is None:
        return
    if -1 in dims or any(size < 1 for size in reshape):
        raise ValueError(f"{what} '{name}': reshape {reshape} of dims {dims} needs fixed sizes on both sides (1 or "
                         "more): the build proves the model at the reshape and sends requests at dims")
    count = 1
    for size in reshape:
        count *= size
    wanted = 1
    for size in dims:
        wanted *= size
    if count != wanted:
        raise ValueError(f"{what} '{name}': reshape {reshape} holds {count} elements, dims {dims} {wanted}: Triton "
                         "core refuses a reshape with another element count (ValidateIOShape)")


class Example(Strict):
    """How to make inputs for tracing and for proving the export."""

    shape: list[int] | None = Field(None, description="per-example trace shape (no batch dim); fills each -1 of dims")
    alt_shape: list[int] | None = Field(
        None, description="second per-example shape for the variable dims; default: about 3/4 of `shape`"
    )
    low: float | None = Field(None, description="lowest value drawn (integers: inclusive)")
    high: float | None = Field(None, description="highest value drawn (integers: exclusive)")

    @model_validator(mode="after")
    def _range(self) -> Example:
        if self.low is not None and self.high is not None and self.high <= self.low:
            raise ValueError(f"high ({self.high}) must be greater than low ({self.low})")
        for key in ("shape", "alt_shape"):
            shape = getattr(self, key)
            if shape is not None and any(size < 1 for size in shape):
                raise ValueError(f"{key} sizes must be 1 or more, got {shape}")
        return self


def _check_dims(dims: list[int]) -> list[int]:
    for size in dims:
        if size == 0 or size < -1:
            raise ValueError(f"dims {dims}: each size must be -1 (variable) or 1 or more, not {size}")
    return dims


class Guard(Strict):
    """What a request may carry in this input; the export refuses anything else with a 400 (compiled in, so that it
    holds in NVIDIA's images too)."""

    low: float | None = Field(None, description="lowest value accepted (inclusive); default: what the model indexes")
    high: float | None = Field(None, description="values from this one up are refused (exclusive); default: the rows "
                               "of the embedding (or other op) the input indexes, found at build time")
    finite: bool | None = Field(None, description="float inputs: refuse NaN and Inf (default true); false serves them")

    @model_validator(mode="after")
    def _range(self) -> Guard:
        if self.low is not None and self.high is not None and self.high <= self.low:
            raise ValueError(f"guard high ({self.high}) must be greater than low ({self.low})")
        return self


class InputSpec(Strict):
    name: str = Field(description="tensor name: a forward() argument name, or <name>__<index>")
    dtype: DType
    dims: list[int] = Field(description="per-example dims without the batch dim; -1 = variable")
    example: Example | None = Field(None, description="how the build draws this input for the proof: shape, "
                                    "second shape, value range (required when dims has -1)")
    guard: Guard | bool | None = Field(
        None, description="checks compiled into the export, each refusing a request with a 400: values an index "
        "input may take (derived from what it indexes, or {low, high}), NaN and Inf in float inputs ({finite: "
        "false} serves them); false turns both off for this input (sizes are always checked)")
    format: Literal["FORMAT_NCHW", "FORMAT_NHWC"] | None = Field(
        None, description="the image layout Triton reports for this input (ModelInput.format): clients such as "
        "Triton's image_client.py read it to lay out what they send; informational to the backend, it takes exactly "
        "3 dims (core's ValidateModelInput)")

    reshape: list[int] | None = Field(
        None, description="the shape forward() receives per example, where it is not `dims` (what clients send): "
        "Triton reshapes each request (ModelTensorReshape), the proof runs the model at this shape; fixed sizes, "
        "as many elements as dims ([] for a scalar per example)")
    optional: bool = Field(
        False, description="a request may leave this input out (ModelInput.optional). Refused for every export: "
        "NVIDIA's pytorch_backend passes forward() one argument per input the request carries and places each at "
        "the position the config gives it (src/pt/model_instance_state.cc and src/pt2/model_instance_state.cc, "
        "input_tensors->resize(input_count + batch_input_count_)), so a request without one calls forward() with "
        "an argument missing")

    _dtype = field_validator("dtype", mode="before")(_dtype)  # type: ignore[misc]
    _dims = field_validator("dims")(_check_dims)  # type: ignore[misc]

    @model_validator(mode="after")
    def _reshape_fits(self) -> InputSpec:
        reshape_problem(self.name, "input", self.dims, self.reshape)
        return self

    @model_validator(mode="after")
    def _not_optional(self) -> InputSpec:
        if self.optional:
            raise ValueError(f"input '{self.name}': optional inputs cannot be served by NVIDIA's pytorch_backend: it "
                             "calls forward() with one argument per input a request carries, placed where the config "
                             "puts each (src/pt/model_instance_state.cc, src/pt2/model_instance_state.cc), so a request "
                             "without this one calls forward() with an argument missing; give forward() the input "
                             "and let clients send a neutral value (zeros, an empty mask)")
        return self

    @property
    def model_dims(self) -> list[int]:
        """The per-example shape forward() receives: the reshape where one is given, else dims."""
        return list(self.reshape) if self.reshape is not None else list(self.dims)

    @model_validator(mode="after")
    def _format_takes_three_dims(self) -> InputSpec:
        if self.format is not None and len(self.dims) != 3:
            raise ValueError(f"input '{self.name}': {self.format} takes 3 dims (C, H, W or H, W, C, without the batch "
                             f"dim), dims has {len(self.dims)}")
        return self

    @model_validator(mode="after")
    def _example_fits(self) -> InputSpec:
        example = self.example
        if -1 in self.dims and (example is None or example.shape is None):
            raise ValueError(f"input '{self.name}' has variable (-1) dims but no example.shape: give the size to trace "
                             f"at, e.g. `example: {{shape: {[8 if d == -1 else d for d in self.dims]}}}`")
        for key in ("shape", "alt_shape"):
            shape = getattr(example, key, None) if example else None
            if shape is None:
                continue
            if len(shape) != len(self.dims):
                raise ValueError(f"example.{key} {shape} has {len(shape)} dims, dims {self.dims} has {len(self.dims)}")
            for i, (want, got) in enumerate(zip(self.dims, shape)):
                if want != -1 and want != got:
                    raise ValueError(f"example.{key} {shape} disagrees with dims {self.dims} at dim {i}")
        return self


class OutputSpec(Strict):
    name: str = Field(description="OUTPUT__<k> or <name>__<k> (TorchScript: tuple element k); RESULT, RESULT[<i>] or "
                      "RESULT[<key>] (aoti from 26.05)")
    dtype: DType
    dims: list[int] = Field(description="per-example dims without the batch dim; -1 = variable; checked against the "
                            "model's own")
    labels: str | None = Field(None, description="a text file, one label per line for each of the output's classes: "
                               "its label_filename (Triton's classification extension answers score:index:label "
                               "when a request asks for class_count)")

    reshape: list[int] | None = Field(
        None, description="the shape forward() returns per example, where it is not `dims` (what clients get): "
        "fixed sizes, as many elements as dims")

    _dtype = field_validator("dtype", mode="before")(_dtype)  # type: ignore[misc]
    _dims = field_validator("dims")(_check_dims)  # type: ignore[misc]

    @model_validator(mode="after")
    def _reshape_fits(self) -> OutputSpec:
        reshape_problem(self.name, "output", self.dims, self.reshape)
        return self


class TorchvisionSource(Strict):
    torchvision: str = Field(description="torchvision.models name, e.g. resnet50")
    weights: str | None = Field(None, description="state_dict file (random init without)")
    kwargs: dict[str, Any] | None = Field(None, description="keyword arguments for the model builder")


class TransformersSource(Strict):
    transformers: str = Field(description="local folder, package://<pkg>/<path>, or a hub id")
    auto_class: str = Field("AutoModel", description="transformers Auto class used to load it")
    tokenizer: str | None = Field(None, description="tokenizer folder (default: the model folder)")


class PythonSource(Strict):
    python: str = Field(description="module:callable returning an nn.Module; trusted code")
    weights: str | None = Field(None, description="state_dict file loaded into the returned module (weights_only)")
    kwargs: dict[str, Any] | None = Field(None, description="keyword arguments for the callable")

    @field_validator("python")
    @classmethod
    def _target(cls, value: str) -> str:
        module, sep, attr = value.partition(":")
        if not sep or not module or not attr:
            raise ValueError(f"'{value}' is not module:callable (for example `my_models:build`)")
        return value


class TorchscriptSource(Strict):
    torchscript: str = Field(description="an exported TorchScript file; trusted code")
    tokenizer: str | None = Field(None, description="its tokenizer's folder, for a pipeline's tokenize step")


class PackageSource(Strict):
    pt2: str = Field(description="an AOTInductor package (.pt2) served as it is (`export: aoti`): no eager model to "
                     "prove it against, so the build runs it at every plan the proof has, derives its outputs, proves "
                     "batch invariance and measures it; compiled for the CPU here, it serves on KIND_CPU. What `compiler "
                     "import` writes for a repository's packages; trusted code")
    tokenizer: str | None = Field(None, description="its tokenizer's folder, for a pipeline's tokenize step")


SOURCE_KINDS = ("torchvision", "transformers", "python", "torchscript", "pt2")


def _source_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return next(kind for kind in SOURCE_KINDS if hasattr(value, kind))
    if isinstance(value, dict):
        present = [kind for kind in SOURCE_KINDS if kind in value]
        if len(present) == 1:
            return present[0]
    return None


Source = Annotated[
    Annotated[TorchvisionSource, Tag("torchvision")]
    | Annotated[TransformersSource, Tag("transformers")]
    | Annotated[PythonSource, Tag("python")]
    | Annotated[TorchscriptSource, Tag("torchscript")]
    | Annotated[PackageSource, Tag("pt2")],
    Discriminator(
        _source_kind,
        custom_error_type="source_kind",
        custom_error_message="a source needs exactly one of the keys torchvision, transformers, python, torchscript, pt2",
    ),
]


class InstanceGroup(Strict):
    kind: Literal["KIND_AUTO", "KIND_CPU", "KIND_GPU", "KIND_MODEL"] = Field(
        "KIND_AUTO", description="where the instances run; a package or trace compiled for CPU refuses KIND_GPU")
    count: int = Field(1, ge=1, description="instances of the model (on each listed GPU); on a small CPU machine, "
                       "give each its INTRA_OP_THREAD_COUNT")
    gpus: list[int] | None = Field(None, description="GPU ids for KIND_GPU (each ≥ 0)")


#: The forms of dynamic batching a config gets: merged executions, or a queue whose executions hold one request each
#: (preferred_batch_size [1], no delay): what a model that must not be merged gets, for its queue policy.
MERGE, QUEUE = "merge", "queue"
#: The latency budget a model's queue is sized for when the manifest gives none: requests wait at most this long.
DEFAULT_LATENCY_BUDGET_MS = 5000


class QueuePolicy(Strict):
    """Triton's ModelQueuePolicy: how long a request may wait in the queue, and how many may."""

    timeout_action: Literal["REJECT", "DELAY"] = Field(
        "REJECT", description="what happens to a request that waited its timeout out: REJECT answers it with an "
        "error, DELAY lets it wait on behind the others")
    default_timeout_microseconds: int = Field(0, ge=0, description="how long a request may wait (0: for ever)")
    allow_timeout_override: bool = Field(False, description="a request may ask for a shorter timeout of its own")
    max_queue_size: int = Field(0, ge=0, description="requests queued at most; the next is refused at once with "
                                "'Exceeds maximum queue size' (0: no bound)")


class DynamicBatching(Strict):
    max_queue_delay_microseconds: int = Field(0, ge=0, description="how long the batcher waits for more requests")
    preferred_batch_size: list[int] | None = Field(None, description="batch sizes the batcher aims for, each in "
                                                   "1..max_batch_size")
    preserve_ordering: bool = Field(False, description="answer in the order requests arrived")
    default_queue_policy: QueuePolicy | None = Field(
        None, description="the queue's bound (Triton's own keys); omitted: derived from latency_budget_ms and the "
        "execution time the build measures")
    priority_levels: int = Field(0, ge=0, description="how many priorities requests may ask for (1 is the highest; "
                                 "0: one queue)")
    default_priority_level: int = Field(0, ge=0, description="the priority of a request that asks none "
                                        "(1..priority_levels)")
    priority_queue_policy: dict[int, QueuePolicy] | None = Field(None, description="a queue policy per priority level")
    latency_budget_ms: int = Field(
        DEFAULT_LATENCY_BUDGET_MS, ge=0, description="ours, not Triton's: the longest a request may wait in the queue. "
        "Where default_queue_policy is omitted the build derives it: a timeout of this budget (REJECT) and "
        "max_queue_size = max_batch_size x (budget / the execution time it measures at max_batch_size), so that an "
        "overloaded model refuses the excess at once instead of letting every wait grow. 0: no bound")

    @model_validator(mode="after")
    def _priorities(self) -> DynamicBatching:
        if self.default_priority_level > self.priority_levels:
            raise ValueError(f"default_priority_level {self.default_priority_level} is above priority_levels "
                             f"{self.priority_levels}")
        for level in self.priority_queue_policy or {}:
            if not 1 <= level <= self.priority_levels:
                raise ValueError(f"priority_queue_policy level {level} is outside 1..priority_levels "
                                 f"({self.priority_levels})")
        return self

    @property
    def merges(self) -> bool:
        """Whether the batcher may put several requests in one execution: not with a preferred batch size of 1 and
        no queue delay, where it sends each request alone (core's dynamic_batch_scheduler.cc: a pending request of
        the preferred size, or one the next would take past the largest preferred size, is sent at once)."""
        return not (self.preferred_batch_size == [1] and self.max_queue_delay_microseconds == 0)


#: The controls a sequence batcher fills, by manifest key: (Triton's control kind, the datatypes it may have).
SEQUENCE_CONTROLS = {
    "start": ("CONTROL_SEQUENCE_START", ("TYPE_INT32", "TYPE_FP32", "TYPE_BOOL")),
    "end": ("CONTROL_SEQUENCE_END", ("TYPE_INT32", "TYPE_FP32", "TYPE_BOOL")),
    "ready": ("CONTROL_SEQUENCE_READY", ("TYPE_INT32", "TYPE_FP32", "TYPE_BOOL")),
    "corrid": ("CONTROL_SEQUENCE_CORRID", ("TYPE_UINT64", "TYPE_INT64", "TYPE_UINT32", "TYPE_INT32")),
}


class SequenceControls(Strict):
    """Inputs of `inputs:` that the sequence batcher fills instead of the client: each a forward() argument of dims
    [1], named <name>__<index> with index its position in forward() (NVIDIA's pytorch_backend binds a control by
    that index only: src/pt/model_instance_state.cc ValidateBooleanSequenceControl)."""

    start: str | None = Field(None, description="1 on a sequence's first request, else 0 (INT32, FP32 or BOOL)")
    end: str | None = Field(None, description="1 on its last request (INT32, FP32 or BOOL)")
    ready: str | None = Field(None, description="1 where the batch slot holds a request (INT32, FP32 or BOOL)")
    corrid: str | None = Field(None, description="the request's sequence id (UINT64, INT64, UINT32 or INT32)")


class SequenceBatching(Strict):
    """Triton's sequence batcher: every request of a sequence (the same sequence id) reaches the same model instance,
    in order, with the control inputs filled by the server."""

    controls: SequenceControls = Field(SequenceControls(start=None, end=None, ready=None, corrid=None),
                                       description="the inputs the server fills")
    strategy: Literal["direct", "oldest"] = Field(
        "direct", description="direct: each sequence keeps one batch slot of one instance; oldest: the oldest "
        "requests of up to max_candidate_sequences sequences are batched dynamically")
    max_sequence_idle_microseconds: int = Field(
        1_000_000, ge=1, description="a sequence without a request for this long is ended by the server")
    max_candidate_sequences: int | None = Field(None, ge=1, description="oldest: sequences batched at once")
    max_queue_delay_microseconds: int = Field(0, ge=0, description="oldest: how long the batcher waits for more")
    preferred_batch_size: list[int] | None = Field(None, description="oldest: batch sizes it aims for")

    @model_validator(mode="after")
    def _oldest_keys(self) -> SequenceBatching:
        if self.strategy == "direct" and (self.max_candidate_sequences or self.max_queue_delay_microseconds
                                          or self.preferred_batch_size):
            raise ValueError("max_candidate_sequences, max_queue_delay_microseconds and preferred_batch_size are the "
                             "`oldest` strategy's: say `strategy: oldest`, or drop them")
        return self

    def control_inputs(self) -> dict[str, str]:
        """Input name -> its manifest control key (start, end, ready, corrid)."""
        return {name: key for key, name in self.controls if name}


class Tolerance(Strict):
    atol: float = Field(ge=0, description="absolute tolerance")
    rtol: float = Field(ge=0, description="relative tolerance (an output whose values all lie below atol is compared by "
                        "rtol against its own scale)")


VARIANT_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


class Variant(Strict):
    """A per-hardware alternative to config.pbtxt, emitted as configs/<variant>.pbtxt.

    tritonserver --model-config-name=<variant> loads it instead of config.pbtxt (models without one
    fall back to config.pbtxt). Unset fields keep the model's values.
    """

    max_batch_size: int | None = Field(None, ge=0, description="replaces the model's")
    instance_group: list[InstanceGroup] | None = Field(None, description="replaces the model's")
    dynamic_batching: DynamicBatching | bool | None = Field(None, description="replaces the model's")
    parameters: dict[str, str | bool | int | float] | None = Field(None, description="merged over the model's")


class ModelSpec(Strict):
    name: str = Field(description="Triton model name: letters, digits, _ - . only")
    source: Source = Field(description="exactly one of torchvision:, transformers:, python:, torchscript:, pt2:")
    export: Literal["trace", "script", "aoti"] = Field(
        "trace", description="trace or script (TorchScript, platform pytorch_libtorch), or aoti (torch.export + "
        "AOTInductor, <version>/model.pt2, platform torch_aoti, Triton 26.03 on)")
    optimize: bool | Literal["max-autotune"] = Field(
        True, description="build-time optimisation, proved like any export: TorchScript is frozen (torch.jit.freeze: "
        "weights become constants, conv+batchnorm folded) and a CNN's weights made channels_last; AOTI compiles "
        "with inductor's freezing (constant folding, prepacked weights). `max-autotune` (aoti only): freezing plus "
        "inductor's max_autotune, which benchmarks GEMM kernels at the example's shapes while compiling (2-3x the "
        "compile time; it paid for MiniLM at batch 1 and cost at batch 16 and for ResNet-50 here, so measure it). "
        "false exports the model as it is")
    version: int = Field(1, ge=1, description="the version folder the model file is written to")
    max_batch_size: int = Field(0, ge=0, description="0 = the model has no batch dimension")
    inputs: list[InputSpec] = Field(min_length=1, description="the tensors a request carries, bound to forward()'s "
                                    "arguments by name (or position)")
    outputs: list[OutputSpec] | None = Field(None, description="derived from the model when omitted")
    instance_group: list[InstanceGroup] | None = Field(None, description="as in Triton's model configuration; "
                                                        "omitted: the server's default (warned for a trace that "
                                                        "baked its device)")
    dynamic_batching: DynamicBatching | bool | None = Field(
        None, description="settings, or true/false; omitted: enabled when the build proves the model batch-invariant")
    parameters: dict[str, str | bool | int | float] | None = Field(
        None, description="the PyTorch backend's: INFERENCE_MODE, DISABLE_OPTIMIZED_EXECUTION, INTRA_OP_THREAD_COUNT, "
        "INTER_OP_THREAD_COUNT, ...")
    tolerance: Tolerance | None = Field(None, description="export-vs-eager tolerance; default per dtype")
    variants: dict[str, Variant] | None = Field(
        None, description="per-hardware configs (configs/<name>.pbtxt), chosen with --model-config-name / --variant")
    config: dict[str, Any] | None = Field(
        None, description="raw fields of Triton's ModelConfig (config.pbtxt's names, in YAML), merged into the "
        "generated config: for what the manifest has no key of its own (model_transaction_policy, metric_tags, "
        "model_repository_agents, optimization, ...). Each must parse as a ModelConfig field of the "
        "target release; a field a manifest key sets is refused here (use the key), and one that contradicts what "
        "the build derived (a second scheduler beside dynamic batching) is refused at the build")
    version_policy: Literal["specific", "latest", "all"] = Field(
        "specific", description="which version folders Triton serves (ModelVersionPolicy): `specific` the built "
        "version and the kept ones, each named; `latest` the newest keep_versions + 1; `all` every folder")
    keep_versions: int = Field(
        0, ge=0, description="earlier version folders the build keeps beside the new one (the newest N below "
        "`version`, from the repository it replaces), served beside it as version_policy says: a rollback is a "
        "config change (serve the kept version alone), not a rebuild. verify serves each kept version and checks "
        "it answers as its own file does in-process")
    sequence_batching: SequenceBatching | None = Field(
        None, description="Triton's sequence batcher instead of the dynamic batcher, for models whose requests come "
        "in sequences (a stream, a conversation); its control inputs are forward() arguments the server fills. "
        "The build proves the model with the controls drawn as any input, and verify sends sequences and checks "
        "each answer against eager PyTorch run with the controls the server gives. With max_batch_size above 0 no "
        "value guard is compiled in: a batch's empty slots are null requests of uninitialised memory (core's "
        "CopyAsNull), whose refusal would fail the real sequences beside them. TorchScript only: NVIDIA's "
        "pytorch_backend r26.05 refuses any sequence batching for a .pt2 package (src/pt2/model_instance_state.cc "
        "ValidateBooleanSequenceControl: 'not supported')")
    response_cache: bool = Field(
        False, description="Triton's response cache for this model (response_cache.enable): an identical request "
        "is answered from the cache without running the model. Served only where the server starts with a cache "
        "(tritonserver --cache-config local,size=...: NGC images ship the local cache; the embedded 2.51 server "
        "has none and serves the model uncached). Core refuses it beside sequence batching and for decoupled "
        "models (model_config_utils.cc)")
    warmup: bool | None = Field(
        None, description="model_warmup: before the model is READY, Triton runs it at batch 1 and at max_batch_size, "
        "each input zeros of its example shape (zeros, not random data: random bytes make NaN floats and ids "
        "outside the vocabulary, which the model's guards refuse, and a refused warmup fails the load)")

    @field_validator("optimize")
    @classmethod
    def _optimize_fits_export(cls, value: bool | str, info: ValidationInfo) -> bool | str:
        if value == "max-autotune" and info.data.get("export") != "aoti":
            raise ValueError("max-autotune is an AOTInductor option: for a TorchScript export say true (frozen) or "
                             "false, or export with `export: aoti`")
        return value

    @model_validator(mode="after")
    def _sequences(self) -> ModelSpec:
        from compiler.backend.pytorch.binding_rules import named_index

        sequence = self.sequence_batching
        if sequence is None:
            return self
        if self.export == "aoti":
            raise ValueError("sequence_batching: NVIDIA's pytorch_backend refuses a sequence batcher for a .pt2 "
                             "package (r26.05 src/pt2/model_instance_state.cc ValidateBooleanSequenceControl throws "
                             "'not supported'); export it with `trace` or `script`")
        if self.batching_requested:
            raise ValueError("sequence_batching and dynamic_batching: a model has one scheduler (Triton's "
                             "scheduling_choice); drop dynamic_batching")
        if self.response_cache:
            raise ValueError("sequence_batching with response_cache: Triton core refuses the cache for a sequence "
                             "model (model_config_utils.cc, DLIS-4034)")
        if self.warmup:
            raise ValueError("sequence_batching with warmup: a warmup request carries no sequence; drop warmup")
        declared = {spec.name: spec for spec in self.inputs}
        controls = sequence.control_inputs()
        if controls and len(controls) == len(declared):
            raise ValueError("sequence_batching: every input is a control; the model needs at least one input of "
                             "its own")
        for name, key in controls.items():
            spec = declared.get(name)
            if spec is None:
                raise ValueError(f"sequence_batching.controls.{key}: '{name}' is not one of the model's inputs; "
                                 "declare it in inputs: (dims [1]) as the forward() argument it is")
            kinds = SEQUENCE_CONTROLS[key][1]
            if spec.dtype not in kinds or spec.dims != [1]:
                raise ValueError(f"sequence_batching.controls.{key}: input '{name}' is {spec.dtype} {spec.dims}; a "
                                 f"{key} control is one of {', '.join(kinds)} with dims [1]")
        if controls and any(named_index(spec.name) is None for spec in self.inputs):
            raise ValueError("sequence_batching: with control inputs, name every input <name>__<index> (index: its "
                             "position in forward()): pytorch_backend binds a control by that index only "
                             "(src/pt/model_instance_state.cc ValidateBooleanSequenceControl)")
        return self

    @model_validator(mode="after")
    def _package_is_served_as_it_is(self) -> ModelSpec:
        if isinstance(self.source, PackageSource) and self.export != "aoti":
            raise ValueError(f"a pt2: source is an AOTInductor package, served as it is: say `export: aoti` (not "
                             f"{self.export}); TorchScript cannot be made from compiled code")
        return self

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value in {".", ".."} or not NAME_PATTERN.match(value):
            raise ValueError(
                f"'{value}' is not a safe model folder name: use letters, digits, _ - . only, not starting with . or -"
            )
        if value.lower().split(".")[0] in RESERVED_NAMES:
            raise ValueError(f"'{value}' is a reserved device name on some filesystems; choose another model name")
        if value.endswith("."):
            raise ValueError(f"'{value}' ends with '.', which some filesystems drop; choose another model name")
        if len(value) > 128:
            raise ValueError("model names are limited to 128 characters")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        for what, items in (("input", self.inputs), ("output", self.outputs or [])):
            seen: set[str] = set()
            for item in items:
                if item.name in seen:
                    raise ValueError(f"{what} name '{item.name}' is used twice")
                seen.add(item.name)
        self._check_batching("")
        for name, variant in (self.variants or {}).items():
            if not VARIANT_PATTERN.match(name) or len(name) > 64:
                raise ValueError(f"variant name '{name}' must be letters, digits, _ and - (it becomes configs/{name}.pbtxt)")
            if variant.max_batch_size is not None and (variant.max_batch_size == 0) != (self.max_batch_size == 0):
                raise ValueError(f"variant '{name}': max_batch_size {variant.max_batch_size} changes whether the model "
                                 f"has a batch dim (the model's is {self.max_batch_size}); a variant may only resize it")
            self.for_variant(name)._check_batching(f"variant '{name}': ")
        return self

    def _check_batching(self, label: str) -> None:
        """dynamic_batching against max_batch_size, of the model or of one variant as resolved."""
        if not self.batching_requested:
            return
        if self.max_batch_size == 0:
            raise ValueError(f"{label}dynamic_batching needs max_batch_size of 1 or more")
        for size in self.batching_settings.preferred_batch_size or []:
            if not 1 <= size <= self.max_batch_size:
                raise ValueError(f"{label}preferred_batch_size {size} must lie in 1..max_batch_size "
                                 f"({self.max_batch_size})")

    @property
    def batching_requested(self) -> bool:
        """The manifest asks for dynamic batching (settings or `true`): the build fails if it cannot be proved safe."""
        return self.dynamic_batching is not None and self.dynamic_batching is not False

    @property
    def batching_settings(self) -> DynamicBatching:
        return self.dynamic_batching if isinstance(self.dynamic_batching, DynamicBatching) \
            else DynamicBatching.model_validate({})

    def for_variant(self, name: str) -> ModelSpec:
        """The model as variant `name` configures it (its overrides on top of the model's values)."""
        variant = (self.variants or {})[name]
        update: dict[str, Any] = {key: value for key, value in variant if value is not None}
        if variant.parameters is not None:  # parameters merge; every other field replaces
            update["parameters"] = {**(self.parameters or {}), **variant.parameters}
        return self.model_copy(update={**update, "variants": None})

    def served_as(self, variant: str | None) -> ModelSpec:
        """The model as tritonserver --model-config-name=`variant` serves it: the variant where the model declares
        one, else the model itself (tritonserver falls back to config.pbtxt)."""
        return self.for_variant(variant) if variant and variant in (self.variants or {}) else self

    @property
    def largest_batch(self) -> int:
        sizes = [self.max_batch_size] + [v.max_batch_size for v in (self.variants or {}).values() if v.max_batch_size]
        return max(sizes)

    def parameter_strings(self) -> dict[str, str]:
        out = {}
        for key, value in sorted((self.parameters or {}).items()):
            out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return out


class Manifest(Strict):
    triton_version: str = Field(DEFAULT_RELEASE, description="target tritonserver release (NGC yy.mm)")
    target_torch: str | None = Field(
        None, pattern=r"^\d+\.\d+$",
        description="the PyTorch major.minor inside the target's tritonserver image, for releases our table does not "
                    "know (NGC's release notes say it): `export: aoti` compiles with that torch (a toolchain venv)")
    models: list[ModelSpec] = Field(min_length=1, description="the models to export, prove and serve")
    pipelines: list[PipelineSpec] | None = Field(
        None, description="raw requests in, answers out: each compiled to a Triton ensemble of its steps")

    @field_validator("target_torch")
    @classmethod
    def _torch_agrees(cls, value: str | None, info: ValidationInfo) -> str | None:
        from compiler.compat.pytorch_versions import TorchVersion, libtorch_of

        release = info.data.get("triton_version")
        shipped = libtorch_of(Release.parse(release)) if value and release else None
        if value and shipped is not None and TorchVersion.parse(value) != shipped:
            raise ValueError(f"target_torch says {value}, but Triton {release}'s image ships PyTorch {shipped} (NGC "
                             "support matrix); remove target_torch: the release decides")
        return value

    @field_validator("triton_version", mode="before")
    @classmethod
    def _release(cls, value: Any) -> str:
        if isinstance(value, float):  # 24.10 unquoted reads as 24.1
            raise ValueError(f'{value} was read as a number; quote the release: "{value}"')
        return str(known_release(str(value)))

    @property
    def release(self) -> Release:
        return Release.parse(self.triton_version)
