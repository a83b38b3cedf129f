# Performance of the policy-optimisation engine (pipeline/bench/; docs/performance.md).
# Not part of `rule all`: run it alone on an otherwise idle machine. It takes about 15 minutes, and
# the `contention` part (6 layouts × idle and busy × 3 repeats) about 45 more on 2 idle cores (an
# estimate from the parts' idle times).
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
        runtime=120,
    script:
        "../scripts/bench.py"
