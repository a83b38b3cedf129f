# Data sets: the Perceptron's teacher-student data, and perturbed TinyStories.


rule perceptron_data:
    output:
        train="results/data/{pdataset}/train.parquet",
        desired="results/data/{pdataset}/desired.parquet",
        test="results/data/{pdataset}/test.parquet",
    params:
        settings=lambda w: dataset_run(config, w.pdataset)["data"],
        seed=lambda w: dataset_run(config, w.pdataset)["seed"],
    log:
        "results/logs/data/{pdataset}.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/perceptron_data.py"


rule tinystories_data:
    input:
        stories=story_files,  # a replaced story file rebuilds the data and what follows
    output:
        train="results/data/{dataset}/train.parquet",
        desired="results/data/{dataset}/desired.parquet",
        test="results/data/{dataset}/test.parquet",
        vocab="results/data/{dataset}/vocab.json",
        preview="results/data/{dataset}/preview.md",
    params:
        settings=lambda w: dataset_run(config, w.dataset)["data"],
        seed=lambda w: dataset_run(config, w.dataset)["seed"],
    log:
        "results/logs/data/{dataset}.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/tinystories_data.py"
