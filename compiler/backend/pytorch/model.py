"""A Python-based Triton backend named ``pytorch`` that serves TorchScript files and AOTInductor packages.

tritonserver maps ``platform: "pytorch_libtorch"`` to the backend named
``pytorch``; when ``<backend-dir>/pytorch/`` holds a ``model.py`` instead of
``libtriton_pytorch.so``, the Python backend runs this file for such models.
So an unchanged config.pbtxt written for the libtorch backend loads here, on
machines (like the nvidia-pytriton wheel's server) that have no libtorch
backend.

It follows the libtorch backend's documented behaviour:

* input binding: forward() argument names when every configured input is one,
  else ``<name>__<index>``, else the order of the config; a single
  ``Dict[str, Tensor]`` argument receives all inputs by name;
* outputs: a Tensor, or a tuple/list whose element k is ``<name>__k`` (else
  config order); output dtypes are checked against the config;
* all requests of one execute() call are concatenated along dim 0 into one
  forward() call and split back per request;
* KIND_CPU, and KIND_GPU on ``cuda:<device_id>``;
* parameters INFERENCE_MODE, DISABLE_OPTIMIZED_EXECUTION,
  INTRA_OP_THREAD_COUNT, INTER_OP_THREAD_COUNT, ENABLE_JIT_EXECUTOR,
  ENABLE_JIT_PROFILING; others are reported as unsupported in the log;
* AOTInductor packages (``platform: "torch_aoti"``, ``model.pt2``) with their input checks on
  (``AOTI_RUNTIME_CHECK_INPUTS=1``), bound by their call spec as the 26.xx backend binds them.

A request the model refuses (a guard the build compiled in, a size outside the package's range) is answered
400 with the reason, and the model goes on serving. Where the server asks for it (``TRITON_COMPILER_INFLIGHT``),
the batch in flight is described in a small file, so that a process that dies anyway can be named with it.

This file runs inside Triton's Python stub, so it imports only torch (at initialize()), numpy
and triton_python_backend_utils, never the compiler package.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by the Python backend stub

if TYPE_CHECKING:
    import torch
    from torch.utils import dlpack as torch_dlpack


def _import_torch() -> None:
    """torch is imported by initialize(), not with this file. tritonserver starts a stub for every model it loads
    only to ask this class for auto_complete_config (the server's default; `--disable-auto-complete-config` turns it
    off), then one stub per instance: with torch imported here, each load paid for torch twice (a TorchScript model
    loaded in 6.3 s against 3.3 s, measured; about 2.5 CPU-s more)."""
    global torch, torch_dlpack
    # AOTInductor's generated run_impl checks every input's dtype, sizes (against the ranges the package was
    # exported with) and strides when this is set; it reads it once per process, at the first run (torch/_inductor/
    # codegen/cpp_wrapper_cpu.py, _check_aoti_runtime_check_inputs_env). Set before torch loads any package.
    os.environ.setdefault("AOTI_RUNTIME_CHECK_INPUTS", "1")
    import torch
    from torch.utils import dlpack as torch_dlpack


#: Errors that are the request's fault: the guards the build compiles in (compiler/export/guards.py says the
#: prefix), AOTInductor's input checks, and the size checks of a package's wrapper.
_REQUEST_FAULTS = ("invalid request:", "input_handles[", "expected size ", "dim value is too")

#: Config datatype -> the torch dtype's name (looked up once torch is imported).
_TORCH_DTYPES = {
    "TYPE_BOOL": "bool",
    "TYPE_UINT8": "uint8",
    "TYPE_INT8": "int8",
    "TYPE_INT16": "int16",
    "TYPE_INT32": "int32",
    "TYPE_INT64": "int64",
    "TYPE_FP16": "float16",
    "TYPE_FP32": "float32",
    "TYPE_FP64": "float64",
    "TYPE_BF16": "bfloat16",  # AOTI packages, 26.11 on: through DLPack (numpy has no bfloat16)
}


def _load_beside(filename: str) -> Any:
    """A rules module beside this file, shared with the compiler (loaded by path: no compiler import here)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), filename)
    spec = importlib.util.spec_from_file_location(f"triton_compiler_{filename[:-3]}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


rules = _load_beside("binding_rules.py")
pt2_names = _load_beside("pt2_names.py")
_SUPPORTED_PARAMETERS = {
    "INFERENCE_MODE",
    "DISABLE_OPTIMIZED_EXECUTION",
    "INTRA_OP_THREAD_COUNT",
    "INTER_OP_THREAD_COUNT",
    "ENABLE_JIT_EXECUTOR",
    "ENABLE_JIT_PROFILING",
    "ZERO_COPY",
}


def _parameter(config: dict[str, Any], key: str) -> str | None:
    value = config.get("parameters", {}).get(key)
    if value is None:
        return None
    return str(value.get("string_value", "")).strip()


def _flag(config: dict[str, Any], key: str, default: bool) -> bool:
    value = _parameter(config, key)
    if value is None or value == "":
        return default
    return value.lower() in {"true", "1", "yes", "on"}


#: Tensors that crossed between Triton and torch by a copy, as "in FP32" / "out BOOL": said once each in the log.
_COPIED: set[str] = set()


def _copied(way: str, what: str, asked: bool) -> None:
    if f"{way} {what}" not in _COPIED:
        _COPIED.add(f"{way} {what}")
        why = "ZERO_COPY is false" if asked else "no DLPack path for them in this stub"
        pb_utils.Logger.log_warn(f"{way}put tensors of {what} are copied: {why}")


def _to_torch(tensor: Any, zero_copy: bool = True) -> torch.Tensor:
    """A Triton tensor as a torch tensor, without a copy where DLPack allows."""
    if zero_copy:
        with contextlib.suppress(Exception):  # BOOL and some layouts have no DLPack path in the stub
            return torch_dlpack.from_dlpack(tensor.to_dlpack())
    array = tensor.as_numpy()
    _copied("in", str(array.dtype), asked=not zero_copy)
    return torch.from_numpy(np.array(array))  # a copy: as_numpy() views the stub's shared memory


def _to_triton(name: str, value: torch.Tensor, zero_copy: bool = True) -> Any:
    value = value.detach()
    if zero_copy and value.dtype != torch.bool:
        try:
            return pb_utils.Tensor.from_dlpack(name, torch_dlpack.to_dlpack(value.contiguous()))
        except Exception:
            pass
    _copied("out", str(value.dtype).removeprefix("torch."), asked=not zero_copy)
    return pb_utils.Tensor(name, value.cpu().contiguous().numpy())


class TritonPythonModel:
    """One instance of a TorchScript model or an AOTInductor package, as pytorch_backend would run it."""

    def initialize(self, args: dict[str, str]) -> None:
        _import_torch()
        self.config = json.loads(args["model_config"])
        self.name = args["model_name"]
        self._inflight = _InFlight(args.get("model_instance_name", self.name))
        self.max_batch_size = int(self.config.get("max_batch_size", 0))
        kind = args.get("model_instance_kind", "CPU")
        if kind == "GPU":
            if not torch.cuda.is_available():
                raise pb_utils.TritonModelException(
                    f"model '{self.name}': instance group KIND_GPU, but torch sees no CUDA device"
                )
            self.device = torch.device("cuda", int(args.get("model_instance_device_id", 0)))
        elif kind in {"CPU", "MODEL"}:
            self.device = torch.device("cpu")
        else:
            raise pb_utils.TritonModelException(f"model '{self.name}': instance kind {kind} is not supported")

        self._apply_parameters()
        filename = self.config.get("default_model_filename") or "model.pt"
        path = os.path.join(args["model_repository"], args["model_version"], filename)
        if not os.path.isfile(path):
            raise pb_utils.TritonModelException(f"model '{self.name}': no model file at {path}")
        self.package: Any = None
        self.equal_sizes: list[list[tuple[str, int]]] = []
        self._plan: tuple[list[str], list[tuple[str, int, Any, str]]] | None = None  # worked out at the first batch
        self._said_transfer = False
        if filename.endswith(".pt2"):
            self._initialize_package(path)
            return
        try:
            self.module = torch.jit.load(path, map_location=self.device)
        except RuntimeError as err:
            if "torchvision::" not in str(err):
                raise
            # NGC images link torchvision's operators into the PyTorch backend; here, importing it registers them.
            import torchvision  # noqa: F401

            self.module = torch.jit.load(path, map_location=self.device)
        self.module.eval()

        self.inputs = [io["name"] for io in self.config.get("input", [])]
        self.outputs = self.config.get("output", [])
        if not self.inputs or not self.outputs:
            raise pb_utils.TritonModelException(
                f"model '{self.name}': the configuration must list at least one input and one output"
            )
        schema_args = self.module.forward.schema.arguments[1:]  # [0] is self
        self.dict_input = len(schema_args) == 1 and str(schema_args[0].type).startswith("Dict")
        if not self.dict_input:
            forward_args = [arg.name for arg in schema_args]
            if len(forward_args) != len(self.inputs):
                raise pb_utils.TritonModelException(
                    f"unable to load model '{self.name}', configuration expects {len(self.inputs)} "
                    f"inputs, model provides {len(forward_args)} ({', '.join(forward_args)})"
                )
            self.input_convention, self.input_index = rules.bind_inputs(self.inputs, forward_args)
            positions = sorted(self.input_index.values())
            if positions != list(range(len(forward_args))):
                raise pb_utils.TritonModelException(
                    f"model '{self.name}': inputs {self.inputs} do not bind one-to-one to forward("
                    f"{', '.join(forward_args)}) under {self.input_convention}"
                )
            binding = ", ".join(f"{n} -> {forward_args[i]}" for n, i in self.input_index.items())
            pb_utils.Logger.log_info(f"{self.name}: input binding ({self.input_convention}): {binding}")
        output_names = [io["name"] for io in self.outputs]
        self.output_convention, self.output_index = rules.bind_outputs(output_names)
        for io in self.outputs:
            if io["data_type"] not in _TORCH_DTYPES:
                raise pb_utils.TritonModelException(
                    f"model '{self.name}': output '{io['name']}' has datatype {io['data_type']}, "
                    f"which this backend does not serve (supported: {', '.join(_TORCH_DTYPES)})"
                )

    def _initialize_package(self, path: str) -> None:
        """An AOTInductor package, bound as the 26.xx backend binds it: every config name must be one the package's
        call spec gives (INPUT__n / ARGS[i] / KWARGS[name]; OUTPUT__n / RESULT...), and each input fills one
        position of the flat input list."""
        if self.device.type != "cpu":
            raise pb_utils.TritonModelException(f"model '{self.name}': this backend runs AOTI packages on the CPU")
        self.package = pt2_names.load_package(path)
        names = pt2_names.CallSpec.parse(*self.package.get_call_spec())
        self.inputs = [io["name"] for io in self.config.get("input", [])]
        self.outputs = self.config.get("output", [])
        unknown = [n for n in self.inputs if n not in names.inputs]
        unknown += [io["name"] for io in self.outputs if io["name"] not in names.outputs]
        if unknown:
            raise pb_utils.TritonModelException(
                f"model '{self.name}': {unknown} are not names of this package; it takes "
                f"{', '.join(names.forward_inputs)} and returns {', '.join(names.forward_outputs)}")
        self.input_index = {n: names.inputs[n] for n in self.inputs}
        if sorted(self.input_index.values()) != list(range(len(names.forward_inputs))):
            raise pb_utils.TritonModelException(
                f"model '{self.name}': inputs {self.inputs} do not fill the package's inputs "
                f"({', '.join(names.forward_inputs)}) once each")
        self.output_index = {io["name"]: names.outputs[io["name"]] for io in self.outputs}
        self.dict_input = False
        self.equal_sizes = _equal_sizes(args_folder(path), self.max_batch_size)
        pb_utils.Logger.log_info(f"{self.name}: AOTI package {', '.join(names.forward_inputs)} -> "
                                 f"{', '.join(names.forward_outputs)}")

    def _check_equal_sizes(self, tensors: dict[str, torch.Tensor]) -> None:
        """Dims the package needs equal (build.json's guards): its compiled code reads the size of one of them, and
        its own input checks skip an empty tensor, so an empty one among them would be read past its end."""
        for group in self.equal_sizes:
            sizes = [(name, dim, int(tensors[name].shape[dim])) for name, dim in group
                     if name in tensors and tensors[name].dim() > dim]
            if len({size for _, _, size in sizes}) > 1:
                said = ", ".join(f"'{name}' dim {dim} is {size}" for name, dim, size in sizes)
                raise ValueError(f"invalid request: these sizes must be equal: {said}")

    def _apply_parameters(self) -> None:
        config = self.config
        for key in config.get("parameters", {}):
            if key not in _SUPPORTED_PARAMETERS:
                pb_utils.Logger.log_warn(f"{self.name}: parameter {key} is not supported by this backend; ignored")
        self.inference_mode = _flag(config, "INFERENCE_MODE", True)
        # Ours, for `make bench` only: ZERO_COPY false copies every tensor (as_numpy) instead of passing it by
        # DLPack, so that the zero-copy path can be measured against its absence side by side.
        self.zero_copy = _flag(config, "ZERO_COPY", True)
        self.optimized_execution = not _flag(config, "DISABLE_OPTIMIZED_EXECUTION", False)
        intra = _parameter(config, "INTRA_OP_THREAD_COUNT")
        if intra and int(intra) > 0:
            torch.set_num_threads(int(intra))
        inter = _parameter(config, "INTER_OP_THREAD_COUNT")
        if inter and int(inter) > 0:
            with contextlib.suppress(RuntimeError):  # only settable before the first parallel work
                torch.set_num_interop_threads(int(inter))
        if _parameter(config, "ENABLE_JIT_EXECUTOR"):
            torch._C._jit_set_profiling_executor(_flag(config, "ENABLE_JIT_EXECUTOR", True))
        if _parameter(config, "ENABLE_JIT_PROFILING"):
            torch._C._jit_set_profiling_mode(_flag(config, "ENABLE_JIT_PROFILING", True))

    def _grad_context(self) -> Any:
        return torch.inference_mode() if self.inference_mode else torch.no_grad()

    def execute(self, requests: list[Any]) -> list[Any]:
        try:
            gathered = [self._gather(request) for request in requests]
        except Exception as err:  # a request the model cannot take: fail each request on its own
            return [self._respond_alone(request) for request in requests] if len(requests) > 1 else [
                _error_response(err)
            ]
        try:
            outputs, sizes = self._run(gathered, requests)
        except Exception as err:
            if len(requests) > 1:
                # One bad request must not fail the requests it was batched with: run each alone.
                return [self._respond_alone(request) for request in requests]
            return [_error_response(err)]
        finally:
            self._inflight.clear()
        responses = self._split(outputs, sizes, len(requests))
        if not self._said_transfer:
            self._said_transfer = True
            pb_utils.Logger.log_info(f"{self.name}: tensors in and out " + (
                f"copied for {', '.join(sorted(_COPIED))}" if _COPIED else "through DLPack, without a copy"))
        return responses

    def _respond_alone(self, request: Any) -> Any:
        try:
            gathered = [self._gather(request)]
            outputs, sizes = self._run(gathered, [request])
            return self._split(outputs, sizes, 1)[0]
        except Exception as err:
            return _error_response(err)
        finally:
            self._inflight.clear()

    def _gather(self, request: Any) -> dict[str, torch.Tensor]:
        tensors = {}
        for name in self.inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                raise ValueError(f"request for '{self.name}' has no input '{name}'")
            tensors[name] = _to_torch(tensor, self.zero_copy)
        if self.equal_sizes:
            self._check_equal_sizes(tensors)
        return tensors

    def _call_plan(self) -> tuple[list[str], list[tuple[str, int, Any, str]]]:
        """The inputs in call order, and each output's name, position and dtype: worked out once, not per batch."""
        if self._plan is None:
            ordered = sorted(self.inputs, key=lambda n: self.input_index[n]) if not self.dict_input else self.inputs
            picks = [(io["name"], self.output_index[io["name"]], getattr(torch, _TORCH_DTYPES[io["data_type"]]), io["data_type"])
                     for io in self.outputs]
            self._plan = (ordered, picks)
        return self._plan

    def _run(self, gathered: list[dict[str, torch.Tensor]], requests: list[Any]) -> tuple[list[torch.Tensor], list[int]]:
        ordered, picks = self._call_plan()
        if self.max_batch_size > 0:
            sizes = [int(next(iter(g.values())).shape[0]) for g in gathered]
        else:
            sizes = [1 for _ in gathered]
        executor = contextlib.nullcontext() if self.package is not None else \
            torch.jit.optimized_execution(self.optimized_execution)
        with self._grad_context(), executor:
            batch: dict[str, torch.Tensor] = {}
            for name in self.inputs:
                parts = [g[name] for g in gathered]
                if len(parts) == 1:
                    tensor = parts[0]
                elif self.max_batch_size > 0:
                    tensor = torch.cat(parts, dim=0)
                else:
                    raise ValueError(f"'{self.name}' does not batch, but got {len(parts)} requests at once")
                batch[name] = tensor.to(self.device, non_blocking=True)
            self._inflight.write(requests, batch)  # the formed batch, described once
            if self.package is not None:
                result = self.package.run([batch[n] for n in ordered])
            elif self.dict_input:
                result = self.module(batch)
            else:
                result = self.module(*[batch[n] for n in ordered])
        if isinstance(result, torch.Tensor):
            results = [result]
        elif isinstance(result, (tuple, list)) and all(isinstance(r, torch.Tensor) for r in result):
            results = list(result)
        else:
            raise TypeError(
                f"output must be a Tensor or a tuple of Tensors, got {type(result).__name__}"
            )
        picked = []
        for name, index, expected, declared in picks:
            if index >= len(results):
                raise IndexError(f"output '{name}' wants element {index}, the model returned {len(results)}")
            value = results[index]
            if value.dtype != expected:
                raise TypeError(f"output '{name}' is {value.dtype}, the configuration says {declared}")
            picked.append(value)
        return picked, sizes

    def _split(self, outputs: list[torch.Tensor], sizes: list[int], count: int) -> list[Any]:
        responses = []
        offset = 0
        for i in range(count):
            tensors = []
            for io, value in zip(self.outputs, outputs):
                if self.max_batch_size > 0:
                    part = value[offset : offset + sizes[i]]
                else:
                    part = value
                tensors.append(_to_triton(io["name"], part, self.zero_copy))
            offset += sizes[i]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses

    def finalize(self) -> None:
        self.module = None
        self.package = None
        self._inflight.close()


def args_folder(model_file: str) -> str:
    """The model folder of `<folder>/<version>/<file>`."""
    return os.path.dirname(os.path.dirname(model_file))


def _equal_sizes(folder: str, max_batch_size: int) -> list[list[tuple[str, int]]]:
    """(input, tensor dim) groups that must stay equal, from the build record beside the config (none for a
    repository we did not build)."""
    try:
        with open(os.path.join(folder, "build.json")) as handle:
            groups = json.load(handle).get("guards", {}).get("equal") or []
    except (OSError, ValueError, AttributeError):
        return []
    offset = 1 if max_batch_size > 0 else 0
    return [[(str(name), int(dim) + offset) for name, dim in group] for group in groups]


def _error_response(err: Exception) -> Any:
    """400 (INVALID_ARG) for what the request did wrong, with the guard's own words; 500 for anything else."""
    text = str(err).strip()
    fault = next((text[text.index(mark):] for mark in _REQUEST_FAULTS if mark in text), None)
    if fault is not None:
        return pb_utils.InferenceResponse(error=pb_utils.TritonError(
            fault.splitlines()[0], pb_utils.TritonError.INVALID_ARG))
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(f"PyTorch execute failure: {text}"))


class _InFlight:
    """The batch this instance is running, described in a small memory-mapped file (TRITON_COMPILER_INFLIGHT names
    the folder; nothing is written without it): the server's watch reads it when the process dies anyway."""

    SIZE = 4096

    def __init__(self, instance: str) -> None:
        import mmap

        self.map: Any = None
        folder = os.environ.get("TRITON_COMPILER_INFLIGHT")
        if not folder:
            return
        try:
            with open(os.path.join(folder, instance), "w+b") as handle:
                handle.truncate(self.SIZE)
                self.map = mmap.mmap(handle.fileno(), self.SIZE)
        except OSError:
            self.map = None

    def write(self, requests: list[Any], batch: dict[str, torch.Tensor]) -> None:
        """The formed batch: its requests' ids, each input's shape, dtype and (small integer inputs) value range,
        one reduction per input rather than per request."""
        if self.map is None:
            return
        described = []
        for name, t in batch.items():
            text = f"{name} {list(t.shape)} {str(t.dtype).removeprefix('torch.')}"
            if t.numel() and not t.is_floating_point() and t.dtype != torch.bool and t.numel() <= 1 << 20:
                low, high = torch.aminmax(t)
                text += f" values {int(low)}..{int(high)}"
            described.append(text)
        ids = ", ".join(f"'{request.request_id()}'" for request in requests)
        data = f"{len(requests)} request(s) {ids}: {', '.join(described)}".encode("utf-8", "replace")[: self.SIZE - 1]
        self.map[: len(data) + 1] = data + b"\0"

    def clear(self) -> None:
        if self.map is not None:
            self.map[0:1] = b"\0"

    def close(self) -> None:
        if self.map is not None:
            self.map.close()
            self.map = None
