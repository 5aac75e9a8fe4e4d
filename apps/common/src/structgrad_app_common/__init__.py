"""Plumbing shared by the structgrad apps (not published).

Every app (NRI graph layout, discrete VAE, L2X, recursive-Gumbel toys) needs the
same small pieces, kept generic here:

- :mod:`~structgrad_app_common.checkpoint`: atomic file writes (temp file in the
  same folder, then ``os.replace``) and ``torch.save`` / ``torch.load(weights_only=True)``
  checkpoints, so a killed run never leaves a partial file.
- :mod:`~structgrad_app_common.jsonl`: an append-only JSONL metrics log that, on
  resume, drops the records written after the checkpoint it resumes from.
- :mod:`~structgrad_app_common.cli`: ``CLIError`` and an ``argparse`` parser whose
  errors are one line on stderr with exit code 2.
- :mod:`~structgrad_app_common.sweep`: log-uniform random search, a joblib runner
  (local processes by default, any joblib backend), mean ± standard error
  aggregation and markdown tables.
"""

from structgrad_app_common.checkpoint import (
    atomic_save_npz,
    atomic_write_bytes,
    atomic_write_text,
    load_checkpoint,
    save_checkpoint,
)
from structgrad_app_common.cli import ArgumentParser, CLIError, run_main
from structgrad_app_common.jsonl import JsonlLogger, json_safe, read_jsonl
from structgrad_app_common.sweep import (
    LogUniform,
    aggregate,
    format_mean_se,
    markdown_table,
    mean_se,
    run_parallel,
    sample_trials,
)

__all__ = [
    "ArgumentParser",
    "CLIError",
    "JsonlLogger",
    "LogUniform",
    "aggregate",
    "atomic_save_npz",
    "atomic_write_bytes",
    "atomic_write_text",
    "format_mean_se",
    "json_safe",
    "load_checkpoint",
    "markdown_table",
    "mean_se",
    "read_jsonl",
    "run_main",
    "run_parallel",
    "sample_trials",
    "save_checkpoint",
]
