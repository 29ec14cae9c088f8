"""Run a model repository in a real tritonserver and talk to it."""
