"""Reports of experiments and batches: statistics, aggregation, plots and rendering.

Public API:
    write_report(path, out_dir=None, formats={"md", "html", "json", "csv"}) -> list[Path]
    load_experiment_runs(exp_dir) -> ExperimentData
    summarize_experiment(data) -> ExperimentReport
    summarize_batch(batch_dir) -> BatchReport
and the report.json models in `tierbench.report.schema`. Importing this package does not import
matplotlib; only `write_report` does.
"""

from tierbench.report.aggregate import (
    ExperimentData,
    load_experiment_runs,
    summarize_batch,
    summarize_experiment,
)
from tierbench.report.render import DEFAULT_FORMATS, write_report
from tierbench.report.schema import SCHEMA_VERSION, BatchReport, ExperimentReport, TierSummary

__all__ = [
    "DEFAULT_FORMATS",
    "SCHEMA_VERSION",
    "BatchReport",
    "ExperimentData",
    "ExperimentReport",
    "TierSummary",
    "load_experiment_runs",
    "summarize_batch",
    "summarize_experiment",
    "write_report",
]
