def evaluation_inputs(spec, code_files):
    """What every evaluation reads: the model, prompts, reference answers and the judge's resources."""
    return {
        "code": code_files,
        "model": model_path(spec["model"]),
        "harmful": "results/data/harmful_prompts.parquet",
        "benign": "results/data/benign_prompts.parquet",
        "reference_responses": "results/calibration/utility-heldout.parquet",
        "phrases": f"{PACKAGE}/resources/refusal_phrases.yaml",
        "utility_tasks": f"{PACKAGE}/resources/utility_tasks",
    }


def experiment_inputs(wildcards):
    spec = EXPERIMENTS[wildcards.experiment]
    inputs = evaluation_inputs(spec, code("evaluation"))
    if spec["region_path"]:
        inputs["region"] = spec["region_path"]
    for role, path in (spec["bases"] or {}).items():
        inputs[f"{role}_bases"] = path
    return inputs


rule evaluate_experiment:
    output:
        metrics="results/evaluation/{experiment}.parquet",
        generations="results/generations/{experiment}.parquet",
    input:
        unpack(experiment_inputs),
    params:
        experiment=lambda wc: EXPERIMENTS[wc.experiment],
        settings=lambda wc: evaluation_settings(config, EXPERIMENTS[wc.experiment]),
        safety_system_prompt=config["safety_system_prompt"],
        runtime=runtime(),
    wildcard_constraints:
        experiment="|".join(re.escape(name) for name, spec in EXPERIMENTS.items() if spec["region"] != "finetune_attack"),
    threads: job_threads("evaluate_experiment")
    resources:
        **job_resources("evaluate_experiment"),
    log:
        "logs/evaluate_experiment/{experiment}.log",
    script:
        "../scripts/run_step.py"


rule collect_metrics:
    output:
        metrics="results/metrics.parquet",
    input:
        code=code("evaluation"),
        metrics=expand("results/evaluation/{experiment}.parquet", experiment=sorted(EXPERIMENTS)),
    resources:
        **job_resources("collect_metrics"),
    log:
        "logs/collect_metrics.log",
    script:
        "../scripts/run_step.py"
