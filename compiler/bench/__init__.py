"""`bench`: the served models against eager PyTorch and PyTriton, and the build against raw tracing.

    results = run_bench(Path("models.yaml"), Path("Triton/models"), ["bert"])
    write_report(results, Path("docs"))
"""

from compiler.bench.report import write_report
from compiler.bench.runner import BenchResults, run_bench

__all__ = ["BenchResults", "run_bench", "write_report"]
