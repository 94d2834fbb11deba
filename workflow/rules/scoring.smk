rule score_snip:
    output:
        scores=score_path("snip", "{dataset}"),
    input:
        code=code("scoring"),
        model=model_path("aligned"),
        calibration="results/calibration/{dataset}.parquet",
    params:
        settings=config["scoring"],
        runtime=runtime(),
    wildcard_constraints:
        dataset="safety-full|safety-short|utility",
    threads: job_threads("score_snip")
    resources:
        **job_resources("score_snip"),
    log:
        "logs/score_snip/{dataset}.log",
    script:
        "../scripts/run_step.py"


rule score_wanda:
    output:
        scores=score_path("wanda", "{dataset}"),
    input:
        code=code("scoring"),
        model=model_path("aligned"),
        calibration="results/calibration/{dataset}.parquet",
    params:
        settings=config["scoring"],
        runtime=runtime(),
    wildcard_constraints:
        dataset="safety-full|safety-short|utility",
    threads: job_threads("score_wanda")
    resources:
        **job_resources("score_wanda"),
    log:
        "logs/score_wanda/{dataset}.log",
    script:
        "../scripts/run_step.py"
