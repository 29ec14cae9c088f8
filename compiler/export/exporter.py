"""Export one model (aoti.py for `export: aoti`; trace or script here), prove the result against eager PyTorch, derive
its outputs and decide batching per config: the step that imports torch."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from compiler import datatypes
from compiler.backend.pytorch import binding_rules as rules
from compiler.backend.pytorch import pt2_names
from compiler.compat.aoti_rules import unmergeable
from compiler.datatypes import Tensors
from compiler.errors import ExportError, Problem
from compiler.export.adapt import adapted, output_name, wrap
from compiler.export.batch_invariance import Invariance, decide_batching, measure_execution, prove_batch_invariance
from compiler.export.binding import Binding, bind, check_exported
from compiler.export.devices import baked_devices
from compiler.export.examples import Plan, make_inputs, plans_for
from compiler.export.guards import GuardConflict, Guards, SizeRange, checks_for, derive
from compiler.export.messages import captured_stderr, describe, full_text
from compiler.export.proof import (
    DerivedOutput,
    UnservableOutput,
    derive_outputs,
    explain,
    flatten,
    mismatch,
    tolerance_for,
    weak_outputs,
)
from compiler.manifest.schema import ModelSpec, OutputSpec, TorchscriptSource
from compiler.releases import AOTI_CALL_SPEC_NAMES_SINCE, Release

#: Where docs/proof.md shows the wrapper for models whose outputs have no direct path (detection, seq2seq).
UNSERVABLE_HINT = ("return Tensors, a tuple of Tensors or a dict of Tensors; for detection and encoder-decoder models "
                   "wrap forward() as docs/proof.md, 'Models without a direct path', shows")


#: The device of every package compiled here (no CUDA): what the device rules check instead of a trace's devices.
CPU_PACKAGE = "cpu-package"


@dataclass
class ExportResult:
    scripted: Any  # torch.jit.ScriptModule
    binding: Binding
    outputs: list[OutputSpec]
    plans: list[str] = field(default_factory=list)
    tolerances: dict[str, list[float]] = field(default_factory=dict)
    trace_warnings: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    invariance: Invariance = field(default_factory=lambda: Invariance(0))
    #: dynamic batching per config (MERGE, QUEUE or None): None is config.pbtxt, a name is configs/<name>.pbtxt
    batching: dict[str | None, str | None] = field(default_factory=dict)
    #: batch size -> milliseconds one execution took here (1 and max_batch_size): what queue policies are sized by
    execution_ms: dict[int, float] = field(default_factory=dict)
    #: outputs the proof cannot discriminate (constant everywhere): said loudly, at the model's manifest line
    weak: list[str] = field(default_factory=list)
    #: output name -> the dict key it serves, for a model that returns a dict (adapt.py)
    output_keys: dict[str, str] = field(default_factory=dict)
    #: export: aoti: the compiled package (saved instead of `scripted`)
    package: Any = None
    #: the build-time optimisation applied (recorded in build.json): "torch.jit.freeze", "inductor freezing", or ""
    optimized: str = ""
    #: what the export refuses (compiled in front of the model: guards.py)
    guards: Guards = field(default_factory=lambda: Guards([]))
    #: every input the proof ran with eager PyTorch's answers: run again in the target's torch (compat/cross_proof.py)
    cases: list[Any] = field(default_factory=list)

    def save(self, path: Path) -> None:
        """Write the model file: the TorchScript module, or the AOTInductor package."""
        if self.package is not None:
            self.package.save(path)
        else:
            self.scripted.save(str(path))


def _call(module: Any, binding: Binding, inputs: Tensors) -> Any:
    return binding.call(module, inputs)


def _record(module: Any, binding: Binding, example: Tensors) -> Any:
    import torch

    if binding.convention == "FORWARD_ARGUMENT":
        kwargs = {name: example[name] for name in binding.order}
        return torch.jit.trace(module, example_kwarg_inputs=kwargs, strict=False, check_trace=False)
    args = tuple(example[name] for name in binding.order)
    return torch.jit.trace(module, args, strict=False, check_trace=False)


def _trace(model: ModelSpec, module: Any, binding: Binding, example: Tensors,
           checks: dict[str, Any]) -> tuple[Any, list[str]]:
    """Trace or script `module`; with `checks`, behind the guards (a traced wrapper that calls scripted checks, around
    the traced, scripted or given TorchScript model)."""
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if isinstance(model.source, TorchscriptSource):
                scripted = _record(wrap(module, binding, checks=checks), binding, example) if checks else module
            elif model.export == "script":
                scripted = torch.jit.script(module)
                if checks:
                    scripted = _record(wrap(scripted, binding, checks=checks), binding, example)
            else:
                scripted = _record(wrap(module, binding, checks=checks) if checks else module, binding, example)
        except Exception as err:
            try:
                _call(module, binding, example)
            except Exception as eager_err:  # the model itself rejects the example: say that, not "try script"
                raise _eager_failure(model, plans_for(model)[0], eager_err) from None
            hint = ("TorchScript cannot compile this code; try `export: trace`" if model.export == "script"
                    else "the model cannot be traced on these inputs; try `export: script`")
            raise ExportError(Problem(f"{model.export} failed: {describe(err)}", model=model.name,
                                      field="export", hint=hint, details=full_text(err))) from None
    notes = [str(w.message).splitlines()[0] for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    return scripted, notes


def _optimized_export(model: ModelSpec, module: Any, binding: Binding, example: Tensors, nhwc: bool,
                      progress: Callable[[str], None], checks: dict[str, Any]) -> tuple[Any, list[str], str, bool]:
    """Trace or script `module` behind its `checks` and, with `optimize`, freeze it (from a channels_last copy of a
    CNN when `nhwc`); returns the export, the tracer's notes, what was applied (for build.json), and whether
    channels_last was."""
    exported_from, nhwc = _channels_last(module, progress) if model.optimize and nhwc else (module, False)
    scripted, notes = _trace(model, exported_from, binding, example, checks)
    optimized = ""
    if model.optimize and not isinstance(model.source, TorchscriptSource):  # a given file is served as it is
        scripted, optimized = _freeze(scripted, progress)
        optimized = " + ".join(part for part in (optimized, "channels_last" if nhwc else "") if part)
    check_exported(model, scripted, binding)
    return scripted, notes, optimized, nhwc


def _channels_last(module: Any, progress: Callable[[str], None]) -> tuple[Any, bool]:
    """A copy of a CNN (a module with 2-D convolutions) whose 4-D weights are channels_last, so that oneDNN (and
    cuDNN) run its convolutions in NHWC order; the eager module the proof compares against is left as it is.
    Measured on 2026-11-25 with torch 2.14, frozen TorchScript ResNet-50 fed NCHW inputs as Triton sends them:
    batch 16 621 -> 400 ms, batch 1 34.9 -> 30.5 ms (interleaved), outputs 4.6e-5 apart. AOTI packages do not need
    it: inductor's freezing picks the convolutions' layout itself (it gained nothing there)."""
    import copy

    import torch

    if not isinstance(module, torch.nn.Module) or not any(isinstance(m, torch.nn.Conv2d) for m in module.modules()):
        return module, False
    try:
        converted = copy.deepcopy(module).to(memory_format=torch.channels_last)
    except Exception as err:  # a module that cannot be copied or converted is exported as it is
        progress(f"not channels_last ({describe(err)})")
        return module, False
    progress("optimize: channels_last (2-D convolutions: weights in NHWC order)")
    return converted, True


def _freeze(scripted: Any, progress: Callable[[str], None]) -> tuple[Any, str]:
    """torch.jit.freeze: parameters become constants and conv+batchnorm fold (what the proof then runs). A module
    freezing cannot take (one whose forward mutates its attributes) is kept as it is, and the build says so.

    torch.jit.optimize_for_inference (freeze, then MKLDNN layouts and prepacked weights) is not applied: measured on
    2026-11-25 with torch 2.14, ResNet-50's result cannot be loaded back after torch.jit.save ("required keyword
    attribute 'value' is undefined": its prepacked constants do not serialise), and MiniLM's gained nothing (batch 1
    4.53 -> 5.25 ms, batch 16 28.5 -> 29.5 ms, interleaved); its MKLDNN graph would also tie the model to the CPU
    where Triton's libtorch may move it to a GPU."""
    import torch

    try:
        with warnings.catch_warnings():  # the build says TorchScript's deprecation once (build.target_warnings)
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.freeze` is deprecated", category=FutureWarning)
            frozen = torch.jit.freeze(scripted.eval())
    except Exception as err:
        progress(f"not frozen ({describe(err)}); exported as traced")
        return scripted, ""
    progress("optimize: frozen (torch.jit.freeze)")
    return frozen, "torch.jit.freeze"


def export_model(model: ModelSpec, module: Any, release: Release,
                 progress: Callable[[str], None] = lambda _: None) -> ExportResult:
    """Export `module`, prove the export against it, derive the outputs, and decide batching per config."""
    import torch

    if model.export == "aoti":
        return _export_aoti(model, module, release, progress)
    plans = plans_for(model)
    binding = bind(model, module)
    keys: list[str] | None = None
    optimized = ""
    with torch.no_grad():
        example = make_inputs(model, plans[0])
        if not isinstance(model.source, TorchscriptSource):
            module, keys = _adapt_outputs(model, module, binding, example, plans[0], progress)
        guards = _guards(model, module, binding, example, progress, _minimum_sizes(model))
        checks = checks_for(guards, "torchscript")
        progress(f"{model.export} with {binding.describe()}")
        scripted, notes, optimized, nhwc = _optimized_export(model, module, binding, example,
                                                             not isinstance(model.source, TorchscriptSource),
                                                             progress, checks)
        try:
            runs = _prove(model, module, scripted, binding, plans, example, notes, progress, flatten)
        except ExportError as err:
            if not nhwc:
                raise
            # A model whose outputs are discontinuous (a detector's score threshold and NMS) can turn a rounding
            # difference of the NHWC convolutions into another box: the proof decides, as for any optimisation.
            progress(f"optimize: channels_last moved the outputs past the proof's tolerance "
                     f"({err.problems[0].message.splitlines()[0][:200]}); exported again without it")
            scripted, notes, optimized, _ = _optimized_export(model, module, binding, example, False, progress, checks)
            runs = _prove(model, module, scripted, binding, plans, example, notes, progress, flatten)
        hostile = _prove_guards(model, module, scripted, binding, guards, "torchscript", flatten, progress)
    outputs = _settle_outputs(model, derive_outputs(model, runs), keys)
    build_warnings = _libtorch_rules(model, scripted, release)

    invariance = Invariance(0)
    if model.max_batch_size > 0:
        progress("prove: batch invariance")
        invariance = prove_batch_invariance(model, scripted, lambda m, inputs: _call(m, binding, inputs),
                                            model.largest_batch)
    batching, config_warnings = _batching_per_config(model, invariance, baked_devices(scripted))
    return ExportResult(
        scripted=scripted, binding=binding, outputs=outputs, plans=[p.label for p in plans],
        tolerances=_tolerances(model, outputs), trace_warnings=notes,
        warnings=build_warnings + config_warnings + hostile, invariance=invariance, batching=batching,
        execution_ms=_executions(model, scripted, lambda m, inputs: _call(m, binding, inputs), progress),
        weak=weak_outputs(model, runs),
        output_keys={out.name: key for out, key in zip(outputs, keys)} if keys else {},
        optimized=optimized, guards=guards, cases=_cases(model, binding, runs, example))


def _cases(model: ModelSpec, binding: Binding, runs: list[tuple[Plan, list[Any]]], example: Tensors) -> list[Any]:
    """The proof's inputs and eager's answers, as the target's torch is handed them (compat/cross_proof.py)."""
    from compiler.compat.cross_proof import Case
    from compiler.export.aoti import call_order

    cases = []
    for number, (plan, reference) in enumerate(runs):
        inputs = example if number == 0 else make_inputs(model, plan)
        args, kwargs = binding.split(inputs)
        cases.append(Case(plan.label, [inputs[name] for name in call_order(binding)], list(args), kwargs,
                          list(reference)))
    return cases


def _minimum_sizes(model: ModelSpec) -> dict[str, list[SizeRange]]:
    """TorchScript: every -1 dim at least 1 (a zero-length request is refused before the model sees it)."""
    offset = 1 if model.max_batch_size > 0 else 0
    return {spec.name: [SizeRange(index + offset, 1, None, f"dim {index}") for index, want in enumerate(spec.dims)
                        if want == -1] for spec in model.inputs}


def _guards(model: ModelSpec, module: Any, binding: Binding, example: Tensors, progress: Callable[[str], None],
            sizes: dict[str, list[SizeRange]] | None = None) -> Guards:
    try:
        guards = derive(model, module, binding, example, sizes)
    except GuardConflict as err:
        raise ExportError(Problem(str(err), model=model.name, field=f"inputs[{err.index}].guard",
                                  hint="narrow the guard to the range the model takes, or remove it")) from None
    except Exception as err:
        raise _eager_failure(model, plans_for(model)[0], err) from None
    if model.sequence_batching is not None and model.max_batch_size > 0:
        # The sequence batcher fills a batch's empty slots with null requests whose inputs are uninitialised memory
        # (core's infer_request.cc CopyAsNull zeroes only BYTES), their READY control 0: a value guard would refuse
        # the whole batch, the real sequences beside them too. Sizes are still checked.
        guards = replace(guards, inputs=[replace(g, values=None, finite=False) for g in guards.inputs])
        progress("guard: values not checked: a sequence batch's empty slots carry uninitialised inputs")
    for line in guards.describe():
        progress(f"guard: {line}")
    return guards


def _prove_guards(model: ModelSpec, module: Any, exported: Any, binding: Binding, guards: Guards, flavour: str,
                  flat: Callable[[Any], list[Any]], progress: Callable[[str], None]) -> list[str]:
    """Every hostile request the guards must refuse is refused by the export (else the build fails: the guard is
    not in it); for the others (NaN served as it is, say), where the export's answer differs from eager's, a
    warning. Returns the warnings."""
    from compiler.export.hostile import REFUSED, hostile_cases

    said = []
    for case in hostile_cases(model, guards, flavour):
        if not case.in_process:
            continue
        progress(f"prove: refuses {case.label}" if case.expect == REFUSED else f"prove: {case.label}")
        try:
            with captured_stderr():  # the package's runtime prints what it raises
                produced: Any = flat(_call(exported, binding, case.inputs))
        except Exception as err:
            produced = err
        if case.expect == REFUSED:
            if not isinstance(produced, Exception):
                raise ExportError(Problem(f"the export answers a request it must refuse ({case.label}): its guard "
                                          "is not in the export", model=model.name, field="inputs",
                                          hint="a bug in the compiler: please report it with this model"))
            continue
        try:
            reference: Any = flat(_call(module, binding, case.inputs))
        except Exception as err:
            reference = err
        if isinstance(reference, Exception) and not isinstance(produced, Exception):
            said.append(f"{case.label}: eager PyTorch raises ({describe(reference)}), the export answers")
        elif isinstance(produced, Exception) and not isinstance(reference, Exception):
            said.append(f"{case.label}: the export raises ({describe(produced)}) where eager PyTorch answers")
        elif not isinstance(produced, Exception) and not isinstance(reference, Exception):
            difference = mismatch(model, reference, produced)
            if difference:
                said.append(f"{case.label}: the export's answer differs from eager PyTorch's ({difference}); it "
                            "serves such inputs as they are (`guard: {finite: false}`)")
    return said


def _export_aoti(model: ModelSpec, module: Any, release: Release, progress: Callable[[str], None]) -> ExportResult:
    """torch.export + AOTInductor, proved like a trace (aoti.py): the loaded package against eager PyTorch."""
    import torch

    from compiler.export.aoti import check_names, compile_package, flatten_pt2, optimized_as
    from compiler.sources.loading import LoadedPackage

    if isinstance(module, LoadedPackage):
        return _adopt_package(model, module, release, progress)
    plans = plans_for(model)
    binding = bind(model, module)
    _batching_per_config(model, Invariance(0), {CPU_PACKAGE})  # device rules before a compile of many seconds
    with torch.no_grad():
        example = make_inputs(model, plans[0])
        try:
            module, keys = adapted(module, binding, example, as_dict=True)  # ModelOutput, OrderedDict: a dict
        except Exception as err:
            raise _eager_failure(model, plans[0], err) from None
        if keys is not None:
            progress(f"forward() returns a {type(_call(module.inner, binding, example)).__name__}: served as a dict "
                     f"({', '.join(keys)}), its outputs named after the keys")
        try:
            flatten_pt2(_call(module, binding, example))  # servable before anything is compiled
        except UnservableOutput as err:
            raise _unservable(model, err) from None
        except Exception as err:
            raise _eager_failure(model, plans[0], err) from None
        guards = _guards(model, module, binding, example, progress)
        package = compile_package(model, module, binding, example, progress, guards)
        plans = plans_for(model, package.groups, package.minimums)  # vary each size the package is free in, as one
        runs = _prove(model, module, package.loaded, binding, plans, example, [], progress, flatten_pt2)
        hostile = _prove_guards(model, module, package.loaded, binding, package.guards, "aoti", flatten_pt2, progress)
    names = package.call_spec.forward_outputs if release.at_least(AOTI_CALL_SPEC_NAMES_SINCE) \
        else [f"OUTPUT__{k}" for k in range(len(package.call_spec.forward_outputs))]
    outputs = _settle_outputs(model, derive_outputs(model, runs), names=names,
                              positions=package.call_spec.outputs)
    check_names(model, package.call_spec, [o.name for o in outputs])
    invariance = Invariance(0)
    if model.max_batch_size > 0:
        progress("prove: batch invariance")
        invariance = prove_batch_invariance(model, package.loaded,
                                            lambda m, inputs: flatten_pt2(_call(m, binding, inputs)),
                                            model.largest_batch)
    batching, config_warnings = _batching_per_config(model, invariance, {CPU_PACKAGE}, unmergeable(release))
    limits = [f"the variable dims are bounded: {'; '.join(package.limits)}: requests outside these sizes are "
              "refused (400)"] if package.limits else []
    return ExportResult(
        scripted=None, binding=binding, outputs=outputs, plans=[p.label for p in plans],
        tolerances=_tolerances(model, outputs), warnings=limits + config_warnings + hostile, invariance=invariance,
        batching=batching, weak=weak_outputs(model, runs), package=package, optimized=optimized_as(model),
        execution_ms=_executions(model, package.loaded, lambda m, inputs: _call(m, binding, inputs), progress),
        guards=package.guards, cases=_cases(model, binding, runs, example))


def _adopt_package(model: ModelSpec, source: Any, release: Release, progress: Callable[[str], None]) -> ExportResult:
    """A package given as it is (`pt2:`): nothing to export and no eager model to prove it against. It is run at every
    plan of the proof as it is served (its input checks on), its outputs derived and checked against the manifest's,
    its batch invariance proved, its executions timed; the file is copied as it is."""
    import torch

    from compiler.export.aoti import Package, check_names, flatten_pt2

    plans = plans_for(model)
    binding = bind(model, source)
    call_spec = pt2_names.CallSpec.parse(*source.call_spec())
    progress(f"a package as it is: {binding.describe()}; run at every plan (no eager model to compare with)")
    with torch.no_grad():
        example = make_inputs(model, plans[0])
        runs = _prove(model, source, source, binding, plans, example, [], progress, flatten_pt2)
    names = call_spec.forward_outputs if release.at_least(AOTI_CALL_SPEC_NAMES_SINCE) \
        else [f"OUTPUT__{k}" for k in range(len(call_spec.forward_outputs))]
    outputs = _settle_outputs(model, derive_outputs(model, runs), names=names, positions=call_spec.outputs)
    check_names(model, call_spec, [o.name for o in outputs])
    invariance = Invariance(0)
    if model.max_batch_size > 0:
        progress("prove: batch invariance")
        invariance = prove_batch_invariance(model, source, lambda m, inputs: flatten_pt2(_call(m, binding, inputs)),
                                            model.largest_batch)
    batching, config_warnings = _batching_per_config(model, invariance, {CPU_PACKAGE}, unmergeable(release))
    package = Package(source.path, source, call_spec, None, [], [], [], Guards([]))
    return ExportResult(
        scripted=None, binding=binding, outputs=outputs, plans=[p.label for p in plans],
        tolerances=_tolerances(model, outputs), invariance=invariance, batching=batching,
        warnings=config_warnings + ["served as it is: proved by running it, not against an eager model (pt2: "
                                    "source); its guards are whatever it was compiled with"],
        weak=weak_outputs(model, runs), package=package,
        execution_ms=_executions(model, source, lambda m, inputs: _call(m, binding, inputs), progress))


def _tolerances(model: ModelSpec, outputs: list[OutputSpec]) -> dict[str, list[float]]:
    """Output name -> [atol, rtol] the proof compared it with (recorded in build.json)."""
    tolerances = {}
    for out in outputs:
        tol = tolerance_for(model, datatypes.lookup(out.dtype).api_name)
        tolerances[out.name] = [tol.atol, tol.rtol]
    return tolerances


#: A transformers key/value cache among the outputs (DynamicCache, EncoderDecoderCache, ...): no tensor.
CACHE_HINT = ("the model returns its key/value cache (use_cache is on): turn it off, `config.use_cache = False` "
              "in the factory (a transformers folder source is loaded with it off), and run the generation loop in "
              "the client; docs/proof.md, 'Models without a direct path'")


def _unservable(model: ModelSpec, err: UnservableOutput) -> ExportError:
    hint = CACHE_HINT if "Cache" in str(err) else UNSERVABLE_HINT
    return ExportError(Problem(str(err), model=model.name, field="outputs", hint=hint))


def _adapt_outputs(model: ModelSpec, module: Any, binding: Binding, example: Tensors, plan: Plan,
                   progress: Callable[[str], None]) -> tuple[Any, list[str] | None]:
    """A model returning a dict (or a transformers ModelOutput) is served as the tuple of its values."""
    import torch

    try:
        module, keys = adapted(module, binding, example)
    except Exception as err:
        raise _eager_failure(model, plan, err) from None
    try:
        with torch.no_grad():
            flatten(binding.call(module, example))  # servable before anything is traced: name what is not
    except UnservableOutput as err:
        raise _unservable(model, err) from None
    if keys is None:
        return module, None
    if model.export == "script":
        raise ExportError(Problem(
            f"forward() returns a dict ({', '.join(keys)}); a scripted dict cannot be served by Triton's PyTorch "
            "backend, which takes a Tensor or a tuple", model=model.name, field="export",
            hint="use `export: trace`: the compiler then serves the values as a tuple in key order, named after the keys"))
    progress(f"forward() returns a dict: served as a tuple in key order ({', '.join(keys)})")
    return module, keys


def _prove(model: ModelSpec, module: Any, exported: Any, binding: Binding, plans: list[Plan], example: Tensors,
           notes: list[str], progress: Callable[[str], None],
           flat: Callable[[Any], list[Any]]) -> list[tuple[Plan, list[Any]]]:
    """Eager vs the export under every plan (the example, new values, other sizes); returns eager's outputs per
    plan, from which the outputs are derived. A model that is already TorchScript is only run."""
    runs: list[tuple[Plan, list[Any]]] = []
    for plan in plans:
        progress(f"prove: {plan.label}")
        inputs = example if plan is plans[0] else make_inputs(model, plan)
        try:
            raw = _call(module, binding, inputs)
        except Exception as err:
            raise _eager_failure(model, plan, err) from None
        try:
            reference = flat(raw)
        except UnservableOutput as err:
            raise _unservable(model, err) from None
        if exported is not module:
            try:
                produced = flat(_call(exported, binding, inputs))
            except Exception as err:
                detail = f"the export raised {describe(err)}"
                problem = explain(model, plan, detail, notes)
                raise ExportError(replace(problem, details=full_text(err))) from None
            difference = mismatch(model, reference, produced)
            if difference:
                raise ExportError(explain(model, plan, difference, notes))
        runs.append((plan, reference))
    return runs


def _executions(model: ModelSpec, compiled: Any, call: Any, progress: Any) -> dict[int, float]:
    """How long one execution of the export takes here, at batch 1 and at max_batch_size (example sizes)."""
    if model.max_batch_size == 0:
        return {}
    base = plans_for(model)[0]
    sizes = sorted({1, model.max_batch_size})
    progress(f"measure: one execution at batch {' and '.join(str(b) for b in sizes)}")
    return {batch: round(measure_execution(compiled, call, make_inputs(model, Plan(f"timed {batch}", batch, base.sizes,
                                                                                  seed=300))), 3)
            for batch in sizes}


def _batching_per_config(model: ModelSpec, invariance: Invariance, devices: set[str],
                         unmergeable: str | None = None) -> tuple[dict[str | None, str | None], list[str]]:
    """Dynamic batching and the device rules for config.pbtxt (None) and each variant; all problems at once.
    `unmergeable`: why the target's backend cannot merge requests (decide_batching)."""
    batching: dict[str | None, str | None] = {}
    warnings_: list[str] = []
    problems: list[Problem] = []
    for variant in [None, *sorted(model.variants or {})]:
        spec = model if variant is None else model.for_variant(variant)
        prefix = "" if variant is None else f"variants.{variant}."
        label = "" if variant is None else f"variant '{variant}': "
        try:
            batching[variant], warning = decide_batching(spec, invariance, prefix + "dynamic_batching", unmergeable)
            warnings_ += [label + w for w in [warning, *_device_rules(spec, devices, prefix)] if w]
        except ExportError as err:
            problems.extend(err.problems)
    if problems:
        raise ExportError(problems)
    return batching, warnings_


def _device_rules(model: ModelSpec, devices: set[str], prefix: str = "") -> list[str]:
    """A program traced on CPU that creates CPU tensors, or an AOTInductor package compiled for the CPU, cannot run
    on a GPU instance."""
    if not devices & {"cpu", CPU_PACKAGE}:
        return []
    kinds = {group.kind for group in model.instance_group or []} or {"KIND_AUTO"}
    text = ("the AOTInductor package was compiled for the CPU (a package's device is fixed when it is compiled; "
            "this machine has no CUDA)" if CPU_PACKAGE in devices else
            'tracing froze torch.device("cpu") into the program (tensors it creates stay on the CPU)')
    if "KIND_GPU" in kinds:
        raise ExportError(Problem(f"{text}, but instance_group asks for KIND_GPU, where it fails with mixed devices",
                                  model=model.name, field=prefix + "instance_group",
                                  hint="build on a GPU machine, use `export: script`, or serve it KIND_CPU"))
    if kinds & {"KIND_AUTO", "KIND_MODEL"}:
        return [f"{text}; with no instance_group Triton picks a GPU where there is one, and this model would fail "
                "there. Declare `instance_group: [{kind: KIND_CPU}]`, or build on a GPU machine"]
    return []


def _libtorch_rules(model: ModelSpec, scripted: Any, release: Release) -> list[str]:
    """The operators of the export against the target's libtorch: refuse what cannot load there, warn about
    custom operators. (The saving torch against the target is one fact per build; build.py says it once.)"""
    from compiler.compat import assess
    from compiler.compat.torchscript import operators

    fit = assess(release, None, operators(scripted))
    if fit.errors:
        raise ExportError([Problem(note.message, model=model.name, field="triton_version", hint=note.hint)
                           for note in fit.errors])
    return [note.line() for note in fit.warnings]


def _eager_failure(model: ModelSpec, plan: Plan, err: Exception) -> ExportError:
    if plan.label in ("example", "new values") or plan.values != "full":
        hint = "check the inputs' dims, dtypes and example ranges (example.low/high) against what forward() expects"
        message = f"the model itself fails on the example inputs: {describe(err)}"
    else:
        dims = ", ".join(a.describe() for a in plan.varied) or "batch dim"
        message = (f"the model itself fails when {dims} is {plan.new_size} (traced at {plan.trace_size}): "
                   f"{describe(err)}")
        hint = "it does not take variable sizes there: declare the fixed size, or set example.alt_shape to a size it takes"
    return ExportError(Problem(message, model=model.name, field="inputs", hint=hint, details=full_text(err)))


def _settle_outputs(model: ModelSpec, derived: list[DerivedOutput], keys: list[str] | None = None,
                    names: list[str] | None = None, positions: dict[str, int] | None = None) -> list[OutputSpec]:
    """Declared outputs checked against the derived ones; when none are declared, OUTPUT__k, or <key>__k for a
    model that returns a dict."""
    for k, out in enumerate(derived):
        row = datatypes.lookup(out.dtype)
        if not row.pytorch_backend and not (row.api_name == "BF16" and model.export == "aoti"):
            raise ExportError(Problem(f"output {k} is {out.dtype}, which Triton's PyTorch backend cannot serve",
                                      model=model.name, field="outputs", hint="cast it in forward()"))
        if model.max_batch_size == 0 and not out.dims:
            # Triton core (ValidateIOShape) refuses dims [1] with an empty reshape without a batch dim, and no
            # other config declares a 0-d tensor (tests/check/cases/output_empty_reshape_without_batching)
            raise ExportError(Problem(
                f"output {k} is a scalar (a 0-d tensor) and the model has no batch dim: Triton cannot declare it "
                "(it refuses an empty reshape for a non-batching model: scalar tensors are not supported)",
                model=model.name, field="outputs",
                hint="return it with one dim (x.reshape(1)), or give the model a batch dim (max_batch_size >= 1)"))
    if model.outputs is None:
        if names is not None:  # AOTI: the names the backend gives the package's outputs
            return [OutputSpec(name=names[k], dtype=o.dtype, dims=o.dims, labels=None, reshape=None)
                    for k, o in enumerate(derived)]
        return [OutputSpec(name=output_name(keys[k], k) if keys else f"OUTPUT__{k}", dtype=o.dtype, dims=o.dims,
                           labels=None, reshape=None)
                for k, o in enumerate(derived)]
    declared = model.outputs
    problems = []
    if len(declared) != len(derived):
        problems.append(f"{len(declared)} outputs declared, the model returns {len(derived)}: "
                        + "; ".join(f"{o.dtype} {o.dims}" for o in derived))
    if positions is not None:  # AOTI: declared names index the package's outputs as its call spec says
        index = {o.name: positions.get(o.name, len(derived)) for o in declared}
    else:
        _, index = rules.bind_outputs([o.name for o in declared])
    if sorted(index.values()) != list(range(len(declared))):
        problems.append(f"output names {[o.name for o in declared]} do not number the returned tuple 0..{len(declared) - 1}")
        index = {o.name: k for k, o in enumerate(declared)}
    for want in declared:
        if index[want.name] >= len(derived):
            continue
        got = derived[index[want.name]]
        seen = want.reshape if want.reshape is not None else want.dims  # a reshape is what the model returns
        dims_ok = len(seen) == len(got.dims) and all(w in (-1, g) for w, g in zip(seen, got.dims))
        if want.dtype != got.dtype or not dims_ok:
            shown = f"{want.dims} (reshape {want.reshape})" if want.reshape is not None else f"{want.dims}"
            problems.append(f"output '{want.name}' declared {want.dtype} {shown}, the model gives "
                            f"{got.dtype} {got.dims}")
    if problems:
        raise ExportError([Problem(p, model=model.name, field="outputs",
                                   hint="fix the declaration, or omit `outputs:` to have them derived")
                           for p in problems])
    return list(declared)
