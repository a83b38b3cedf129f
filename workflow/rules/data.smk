# Data sets: the Perceptron's teacher-student data, and perturbed TinyStories.


rule perceptron_data:
    output:
        train=paths.data_split("{pdataset}", "train"),
        desired=paths.data_split("{pdataset}", "desired"),
        test=paths.data_split("{pdataset}", "test"),
    params:
        settings=lambda w: dataset_run(config, w.pdataset)["data"],
        seed=lambda w: dataset_run(config, w.pdataset)["seed"],
    log:
        "results/logs/data/{pdataset}.log",
    conda:
        ENV
    resources:
        **light_job(mem_mb=1000, runtime=5),
    script:
        "../scripts/perceptron_data.py"


rule tinystories_data:  # {dataset} ends in a hash of the story files' bytes: another file,
    output:  # whatever its mtime, is another data set (pipeline/config/datasets.py)
        train=paths.data_split("{dataset}", "train"),
        desired=paths.data_split("{dataset}", "desired"),
        test=paths.data_split("{dataset}", "test"),
        vocab=paths.data_file("{dataset}", "vocab.json"),
        preview=paths.data_file("{dataset}", "preview.md"),
    params:
        settings=lambda w: dataset_run(config, w.dataset)["data"],
        seed=lambda w: dataset_run(config, w.dataset)["seed"],
    log:
        "results/logs/data/{dataset}.log",
    conda:
        ENV
    priority: lambda w: dataset_priority(config, w.dataset)
    resources:
        **light_job(mem_mb=4000, runtime=30),
    script:
        "../scripts/tinystories_data.py"
