rule prepare_base_model:
    output:
        model=directory(model_path("base")),
    input:
        code=code("model"),
    params:
        source=model_source(config),
        runtime=runtime(),
    log:
        "logs/prepare_base_model.log",
    script:
        "../scripts/run_step.py"


rule generate_alignment_targets:
    output:
        targets="results/data/alignment_targets.parquet",
    input:
        code=code("model"),
        model=model_path("base"),
        benign="results/data/benign_prompts.parquet",
    params:
        settings=config["alignment"],
        runtime=runtime(),
    threads: workflow.cores
    log:
        "logs/generate_alignment_targets.log",
    script:
        "../scripts/run_step.py"


rule align_model:
    output:
        model=directory(model_path("aligned")),
    input:
        code=code("model"),
        model=model_path("base"),
        harmful="results/data/harmful_prompts.parquet",
        targets="results/data/alignment_targets.parquet",
        refusals=f"{PACKAGE}/resources/refusal_templates.yaml",
    params:
        settings=config["alignment"],
        safety_system_prompt=config["safety_system_prompt"],
        runtime=runtime(),
    threads: workflow.cores
    log:
        "logs/align_model.log",
    script:
        "../scripts/run_step.py"
