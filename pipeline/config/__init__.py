"""The configuration: validation with errors that name the setting, and the runs it defines.

`schema` reads the schema, converts strings and fills in defaults; `checks` holds the rules
relating two settings and `validate_config`; `runs` makes the run names and lists each study's
runs, `registry` holds every run (its settings, data set, paths and policies) and `datasets`
names the data sets. Callers import from here.
"""

from pipeline.config.checks import run_processes, validate_config, validation_split
from pipeline.config.datasets import dataset_name, format_number
from pipeline.config.registry import (
    RunSpec,
    all_run_names,
    data_names,
    dataset_priority,
    dataset_run,
    job_priority,
    registry,
    run_settings,
    run_spec,
    warm_start_run,
)
from pipeline.config.runs import (
    KINDS,
    MAX_SAVED_POLICIES,
    MINIBATCH_POLICIES,
    MINIBATCH_REFERENCES,
    OFFLINE_SELECTION_VARIANT,
    ONLINE_POLICIES,
    TAU_RULES,
    ablation_runs,
    at_grid_end,
    has_main_settings,
    main_variant,
    minibatch_runs,
    offline_selection_run,
    online_near_optimal_runs,
    online_runs,
    online_seeds,
    perceptron_seeds_runs,
    policy_name,
    run_name,
    run_names,
    saved_epochs,
    saved_policy_count,
    scale_run_name,
    scale_runs,
    scaling_sweep_runs,
    step_size_runs,
    study_runs,
    sweep_run_name,
    tau_source_run,
    with_steps,
)
from pipeline.config.schema import (
    ABLATION_EXPERIMENTS,
    PATH_STUDIES,
    SCHEMA_PATH,
    ConfigError,
    ablation_key,
    apply_defaults,
    coerce_to_schema,
    load_schema,
    merged,
    variant_block,
)

__all__ = [
    "ABLATION_EXPERIMENTS", "KINDS", "MAX_SAVED_POLICIES", "MINIBATCH_POLICIES",
    "MINIBATCH_REFERENCES", "OFFLINE_SELECTION_VARIANT", "ONLINE_POLICIES", "PATH_STUDIES",
    "SCHEMA_PATH", "TAU_RULES", "ConfigError", "RunSpec", "ablation_key", "ablation_runs",
    "all_run_names", "apply_defaults", "at_grid_end", "coerce_to_schema", "data_names",
    "dataset_name", "dataset_priority", "dataset_run", "format_number", "has_main_settings",
    "job_priority", "load_schema", "main_variant", "merged", "minibatch_runs",
    "offline_selection_run", "online_near_optimal_runs",
    "online_runs", "online_seeds", "perceptron_seeds_runs", "policy_name", "registry",
    "run_name", "run_names", "run_processes",
    "run_settings", "run_spec", "saved_epochs", "saved_policy_count", "scale_run_name",
    "scale_runs", "scaling_sweep_runs", "step_size_runs", "study_runs", "sweep_run_name",
    "tau_source_run",
    "validate_config", "validation_split", "variant_block", "warm_start_run", "with_steps",
]  # fmt: skip
