rule extract_region:
    output:
        region="results/regions/{experiment}.safetensors",
    input:
        unpack(lambda wc: {"code": code("regions"), **region_inputs(EXPERIMENTS[wc.experiment], EXPERIMENTS)}),
    params:
        experiment=lambda wc: EXPERIMENTS[wc.experiment],
        scoring=config["scoring"],
        runtime=runtime(),
    wildcard_constraints:
        experiment="|".join(re.escape(name) for name, spec in EXPERIMENTS.items() if spec["region_path"]) or "^$",
    threads: job_threads("extract_region")
    resources:
        **job_resources("extract_region"),
    log:
        "logs/extract_region/{experiment}.log",
    script:
        "../scripts/run_step.py"


rule probe_heads:
    output:
        probes=PROBES,
    input:
        code=code("regions"),
        model=model_path("aligned"),
        harmful="results/data/harmful_prompts.parquet",
        benign="results/data/benign_prompts.parquet",
    params:
        settings=config["regions"]["head_probing"],
        scoring=config["scoring"],
        runtime=runtime(),
    threads: job_threads("probe_heads")
    resources:
        **job_resources("probe_heads"),
    log:
        "logs/probe_heads.log",
    script:
        "../scripts/run_step.py"


rule compute_overlap:
    output:
        overlaps=OVERLAPS,
    input:
        code=code("regions"),
        safety_scores=score_path(config["regions"]["overlap"]["score_method"], config["regions"]["overlap"]["safety_dataset"]),
        utility_scores=score_path(config["regions"]["overlap"]["score_method"], config["regions"]["overlap"]["utility_dataset"]),
    params:
        settings=config["regions"]["overlap"],
    resources:
        **job_resources("compute_overlap"),
    log:
        "logs/compute_overlap.log",
    script:
        "../scripts/run_step.py"
