rule build_safety_calibration:
    output:
        full="results/calibration/safety-full.parquet",
        short="results/calibration/safety-short.parquet",
    input:
        code=code("calibration"),
        model=model_path("aligned"),
        harmful="results/data/harmful_prompts.parquet",
        phrases=f"{PACKAGE}/resources/refusal_phrases.yaml",
    params:
        settings=config["calibration"],
        runtime=runtime(),
    threads: job_threads("build_safety_calibration")
    resources:
        **job_resources("build_safety_calibration"),
    log:
        "logs/build_safety_calibration.log",
    script:
        "../scripts/run_step.py"


rule build_utility_calibration:
    output:
        utility="results/calibration/utility.parquet",
        heldout="results/calibration/utility-heldout.parquet",
    input:
        code=code("calibration"),
        model=model_path("aligned"),
        benign="results/data/benign_prompts.parquet",
    params:
        settings=config["calibration"],
        runtime=runtime(),
    threads: job_threads("build_utility_calibration")
    resources:
        **job_resources("build_utility_calibration"),
    log:
        "logs/build_utility_calibration.log",
    script:
        "../scripts/run_step.py"
