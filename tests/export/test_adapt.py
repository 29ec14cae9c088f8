"""Outputs users' models return, adapted: dicts served as tuples named after their keys; what cannot be served is
named without blaming the inputs; long error text summarised, with the full text in a log file."""

from __future__ import annotations

import json
import logging

from compiler.export.messages import summarize
from compiler.sources.noise import KNOWN, silence_known_chatter
from compiler.triton_config import parse_text
from tests.helpers import Project

DICT = """
models:
  - name: m
    source: {python: "tiny_models:dict_out"}
    max_batch_size: 4
    inputs:
      - {name: bias, dtype: FP32, dims: [3]}
      - {name: x, dtype: FP32, dims: [3]}
"""


def test_a_dict_is_served_as_a_tuple_named_after_its_keys(project: Project) -> None:
    built = project.built(DICT)
    config = parse_text((built.output / "m" / "config.pbtxt").read_text())
    assert [o.name for o in config.output] == ["logits__0", "probs__1"]
    assert [i.name for i in config.input] == ["bias", "x"]
    record = json.loads((built.output / "m" / "build.json").read_text())
    assert record["output_keys"] == {"logits__0": "logits", "probs__1": "probs"}
    assert record["binding"]["inputs"] == [["x", "x"], ["bias", "bias"]]


def test_a_scripted_dict_is_refused_with_the_way_out(project: Project) -> None:
    project.write(DICT.replace("    max_batch_size: 4\n", "    export: script\n    max_batch_size: 4\n"))
    result = project.build()
    assert result.code == 1
    assert "forward() returns a dict (logits, probs)" in result.err and "use `export: trace`" in result.err


def test_unservable_outputs_are_named_and_never_blame_the_inputs(project: Project) -> None:
    project.write("""
        models:
          - name: m
            source: {python: "tiny_models:list_of_dicts"}
            inputs: [{name: x, dtype: FP32, dims: [4]}]
    """)
    result = project.build()
    assert result.code == 1
    assert "outputs: an output is dict; only Tensors can be served" in result.err
    assert "Models without a direct path" in result.err
    assert "transformers" not in result.err and "check the inputs' dims" not in result.err


def test_tensor_reprs_are_summarised_and_the_full_text_logged(project: Project) -> None:
    project.write("""
        models:
          - name: m
            source: {python: "tiny_models:shouts_tensors"}
            inputs: [{name: x, dtype: FP32, dims: [3, 4]}]
    """)
    result = project.build()
    assert result.code == 1
    assert "trace failed: RuntimeError: Tracer cannot infer type of (<tensor>,)" in result.err
    assert "tensor([[" not in result.err
    log = project.root / ".repo.logs" / "m.log"
    assert f"full text in {log}" in result.err
    assert "tensor([[" in log.read_text() and "Traceback" in log.read_text()


def test_summarize_keeps_the_words_and_drops_the_numbers() -> None:
    text = "cannot infer type of (tensor([[[-1.0065, 2.1],\n [3., (4.)]]], dtype=torch.float16), 3)"
    assert summarize(text) == "cannot infer type of (<tensor>, 3)"
    assert len(summarize("x" * 1000)) == 300


def test_known_chatter_is_dropped_by_name_and_nothing_else() -> None:
    silence_known_chatter()
    silence_known_chatter()  # idempotent
    name, prefix = KNOWN[0]
    logger = logging.getLogger(name)
    assert len(logger.filters) == 1

    def passes(message: str) -> bool:
        return bool(logger.filter(logging.LogRecord(name, logging.WARNING, __file__, 1, message, None, None)))

    assert not passes(prefix + ". Using the default loss: `ForCausalLMLoss`.")
    assert passes("`loss_type=ForMaskedLM` is something else")
