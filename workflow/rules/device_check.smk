# Before a GPU run (docs/cluster.md; pipeline/device_check/). Not part of `rule all`:
#   snakemake --cores all device_check
#   snakemake --profile profiles/slurm device_check     (one small job on one GPU)
# The smoke-size models on the configured device against a float64 CPU reference (the job fails
# above device_check.tolerance), and the paper preset's shapes timed there: the projected time and
# memory of a paper run. It reruns when `device`, `dtype` or `device_check` change; on another
# machine or GPU: add --forcerun device_check.

DEVICE_CHECK_RESOURCES = config["transformer"]["resources"]  # the job of the paper's GPU runs


rule device_check:
    output:
        json="results/device_check.json",
        md="results/device_check.md",
    params:
        device=config["device"],
        dtype=config["dtype"],
        check=config["device_check"],
        # the experiments' blocks, onto which the check merges the smoke and paper presets
        experiments={kind: config[kind] for kind in ("perceptron", "transformer")},
        seed=config["seed"],
    log:
        "results/logs/device_check.log",
    conda:
        TRAIN_ENV
    threads: DEVICE_CHECK_RESOURCES["threads"]
    resources:
        mem_mb=DEVICE_CHECK_RESOURCES["mem_mb"],
        runtime=30,  # minutes: the check itself takes seconds to a few minutes
        gpu=min(1, DEVICE_CHECK_RESOURCES["gpus"]),  # one GPU when the training jobs use GPUs
        cpus_per_task=DEVICE_CHECK_RESOURCES["threads"],
    script:
        "../scripts/device_check.py"
