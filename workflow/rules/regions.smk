def set_difference_experiment(wildcards):
    """The registry entry whose region file this job writes."""
    target = f"results/regions/set_difference/{wildcards.folder}/p{wildcards.p}-q{wildcards.q}.safetensors"
    for spec in EXPERIMENTS.values():
        if spec["region_path"] == target:
            return spec
    raise ValueError(f"no set-difference experiment in params.yaml writes {target}")


rule extract_set_difference:
    output:
        region="results/regions/set_difference/{folder}/p{p}-q{q}.safetensors",
    input:
        code=code("regions"),
        safety_scores=lambda wc: score_path(set_difference_experiment(wc)["score_method"], set_difference_experiment(wc)["safety_dataset"]),
        utility_scores=lambda wc: score_path(set_difference_experiment(wc)["score_method"], set_difference_experiment(wc)["utility_dataset"]),
    params:
        experiment=set_difference_experiment,
    wildcard_constraints:
        p=r"[0-9.e-]+",
        q=r"[0-9.e-]+",
    log:
        "logs/extract_set_difference/{folder}/p{p}-q{q}.log",
    script:
        "../scripts/run_step.py"
