rule compute_grams:
    output:
        grams=grams_path("{dataset}"),
    input:
        code=code("ranks"),
        model=model_path("aligned"),
        calibration="results/calibration/{dataset}.parquet",
    params:
        scoring=config["scoring"],
        runtime=runtime(),
    wildcard_constraints:
        dataset="safety-full|safety-short|utility",
    threads: workflow.cores
    log:
        "logs/compute_grams/{dataset}.log",
    script:
        "../scripts/run_step.py"


rule compute_subspace_similarity:
    output:
        similarity=SUBSPACES,
    input:
        code=code("ranks"),
        model=model_path("aligned"),
        safety_grams=grams_path(config["ranks"]["subspace"]["safety_dataset"]),
        utility_grams=grams_path(config["ranks"]["subspace"]["utility_dataset"]),
    params:
        settings=config["ranks"]["subspace"],
        runtime=runtime(),
    threads: workflow.cores
    log:
        "logs/compute_subspace_similarity.log",
    script:
        "../scripts/run_step.py"
