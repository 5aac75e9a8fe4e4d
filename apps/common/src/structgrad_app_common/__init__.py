"""Plumbing shared by the structgrad apps (not published).

Every app (NRI graph layout, discrete VAE, L2X, recursive-Gumbel toys) needs the
same small pieces, kept generic here:

- :mod:`~structgrad_app_common.checkpoint`: atomic file writes (temp file in the
  same folder, then ``os.replace``) and ``torch.save`` / ``torch.load(weights_only=True)``
  checkpoints, so a killed run never leaves a partial file.
- :mod:`~structgrad_app_common.jsonl`: an append-only JSONL metrics log that, on
  resume, drops the records written after the checkpoint it resumes from.
- :mod:`~structgrad_app_common.cli`: ``CLIError``, an ``argparse`` parser whose
  errors are one line on stderr with exit code 2, the subcommand runner and
  ``--config FILE`` (a run's saved config.json read back as the defaults), and
  ``add_command`` (a subcommand declared by its function and docstring).
- :mod:`~structgrad_app_common.flags`: the shared flags and types (``--threads``,
  ``--device``, ``--config``, ``--resume`` / ``--overwrite``, joblib,
  ``positive_int``) and ``--smoke`` configs.
- :mod:`~structgrad_app_common.runcontrol`: the run-control base of the run
  configs (resume, threads, device; field bounds and resume-checked fields as data).
- :mod:`~structgrad_app_common.training`: run-folder checks, ``--resume``
  loading, resumable RNG state and per-epoch orders (torch, imported lazily).
- :mod:`~structgrad_app_common.loop`: the one training loop (an app's ``Trainer``:
  build, plan, step, evaluate, finish), :mod:`~structgrad_app_common.progress` (its
  metric window and a checkpoint's counters, checked on resume) and
  :mod:`~structgrad_app_common.batches`.
- :mod:`~structgrad_app_common.app_cli`: the ``train`` and ``sweep`` subcommands, declared.
- :mod:`~structgrad_app_common.sweep`: log-uniform random search (scipy's ``loguniform``
  drawn by scikit-learn's ``ParameterSampler``), a joblib runner
  (local processes by default, any joblib backend), mean ± standard error
  aggregation, best-trial selection, markdown tables and the sweep outputs.
- :mod:`~structgrad_app_common.trials`: a whole random-search sweep, which an
  app declares as data (:class:`Sweep`: record fields, metrics, table columns).
- :mod:`~structgrad_app_common.sweep_cli`: the ``sweep`` subcommand: its flags,
  name checks, base config, the command itself and its printed tail.
- :mod:`~structgrad_app_common.plots`: atomic PNG figures (matplotlib, lazily).
- :mod:`~structgrad_app_common.testing`: the CLI tests' shared assertions, and
  :mod:`~structgrad_app_common.app_checks`: those of one app bound to its entry point.
"""

from structgrad_app_common.checkpoint import (
    atomic_save_npz,
    atomic_write_text,
    load_checkpoint,
    load_npz,
    save_checkpoint,
)
from structgrad_app_common.cli import (
    ArgumentParser,
    CLIError,
    add_command,
    read_back,
    run_command,
    run_main,
)
from structgrad_app_common.flags import (
    add_config_flag,
    add_config_flags,
    add_joblib_flags,
    add_resume_flags,
    add_run_flags,
    config_from_args,
    nonnegative_float,
    opt,
    positive_float,
    positive_int,
    positive_range,
    seed_int,
)
from structgrad_app_common.jsonl import JsonlLogger, json_safe, read_jsonl
from structgrad_app_common.runcontrol import RunControl, check_bounds
from structgrad_app_common.sweep import (
    format_mean_se,
    markdown_table,
    mean_se,
    run_parallel,
    run_trials,
)
from structgrad_app_common.sweep_cli import (
    add_sweep_flags,
    check_names,
    print_failures,
    sweep_command,
    sweep_exit_code,
)
from structgrad_app_common.trials import (
    Column,
    SearchGroup,
    SearchOptions,
    Sweep,
    run_search,
)

__all__ = [
    "ArgumentParser",
    "CLIError",
    "Column",
    "JsonlLogger",
    "RunControl",
    "SearchGroup",
    "SearchOptions",
    "Sweep",
    "add_command",
    "add_config_flag",
    "add_config_flags",
    "add_joblib_flags",
    "add_resume_flags",
    "add_run_flags",
    "add_sweep_flags",
    "atomic_save_npz",
    "atomic_write_text",
    "check_bounds",
    "check_names",
    "config_from_args",
    "format_mean_se",
    "json_safe",
    "load_checkpoint",
    "load_npz",
    "markdown_table",
    "mean_se",
    "nonnegative_float",
    "opt",
    "positive_float",
    "positive_int",
    "positive_range",
    "print_failures",
    "read_back",
    "read_jsonl",
    "run_command",
    "run_main",
    "run_parallel",
    "run_search",
    "run_trials",
    "save_checkpoint",
    "seed_int",
    "sweep_command",
    "sweep_exit_code",
]
