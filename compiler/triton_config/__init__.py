"""config.pbtxt as a ModelConfig protobuf message, never a string template.

    message = build_config(model_spec, outputs)
    text = to_text(message)          # deterministic bytes
    parse_text(text) == message      # round-trips
"""

from compiler.triton_config.builder import build_config
from compiler.triton_config.text import parse_text, to_text

__all__ = ["build_config", "parse_text", "to_text"]
