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
    threads: job_threads("compute_grams")
    resources:
        **job_resources("compute_grams"),
    log:
        "logs/compute_grams/{dataset}.log",
    script:
        "../scripts/run_step.py"


rule compute_bases:
    output:
        bases=bases_path("{dataset}"),
    input:
        code=code("ranks"),
        model=model_path("aligned"),
        grams=grams_path("{dataset}"),
    params:
        runtime=runtime(),
    wildcard_constraints:
        dataset="safety-full|safety-short|utility",
    threads: job_threads("compute_bases")
    resources:
        **job_resources("compute_bases"),
    log:
        "logs/compute_bases/{dataset}.log",
    script:
        "../scripts/run_step.py"


def sequential_inputs(wildcards):
    spec = EXPERIMENTS[wildcards.experiment]
    inputs = {"code": code("ranks"), "model": model_path("aligned")}
    for role in spec["bases"]:
        inputs[f"calibration_{role}"] = calibration_path(spec[f"{role}_dataset"])
    return inputs


def sequential_ids(region_kinds):
    """Wildcard pattern of the sequential rank edits whose region is one of `region_kinds`."""
    names = [name for name, spec in EXPERIMENTS.items() if spec["mode"] == "sequential" and spec["region"] in region_kinds]
    return "|".join(re.escape(name) for name in names) or "^$"


# Sequential ActSVD: bases computed block by block on the model edited so far, one set per edit.
rule compute_sequential_bases:
    output:
        safety=sequential_bases_path("{experiment}", "safety"),
    input:
        unpack(sequential_inputs),
    params:
        experiment=lambda wc: EXPERIMENTS[wc.experiment],
        scoring=config["scoring"],
        runtime=runtime(),
    wildcard_constraints:
        experiment=sequential_ids(("actsvd_top", "actsvd_bottom")),
    threads: job_threads("compute_sequential_bases")
    resources:
        **job_resources("compute_sequential_bases"),
    log:
        "logs/compute_sequential_bases/{experiment}.log",
    script:
        "../scripts/run_step.py"


use rule compute_sequential_bases as compute_sequential_projection_bases with:
    output:
        safety=sequential_bases_path("{experiment}", "safety"),
        utility=sequential_bases_path("{experiment}", "utility"),
    wildcard_constraints:
        experiment=sequential_ids(("orthogonal_projection",)),
    resources:
        **job_resources("compute_sequential_projection_bases"),
    log:
        "logs/compute_sequential_bases/{experiment}.log",


rule compute_subspace_similarity:
    output:
        similarity=SUBSPACES,
    input:
        code=code("ranks"),
        safety_bases=bases_path(config["ranks"]["subspace"]["safety_dataset"]),
        utility_bases=bases_path(config["ranks"]["subspace"]["utility_dataset"]),
    params:
        settings=config["ranks"]["subspace"],
    resources:
        **job_resources("compute_subspace_similarity"),
    log:
        "logs/compute_subspace_similarity.log",
    script:
        "../scripts/run_step.py"
