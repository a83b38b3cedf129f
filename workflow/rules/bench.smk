# Performance of the policy-optimisation engine (pipeline/bench/; README "Performance").
# Not part of `rule all`: run it alone on an otherwise idle machine, it takes about 15 minutes.
#   snakemake --cores all benchmark


rule benchmark:
    output:
        json="results/bench/bench.json",
        md="results/bench/bench.md",
    log:
        "results/logs/bench.log",
    conda:
        ENV
    threads: 2  # the machine the goals are set for; `--set-threads benchmark=N` changes it
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../scripts/bench.py"
