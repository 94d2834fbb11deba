rule prepare_base_model:
    output:
        model=directory(model_path("base")),
    input:
        code=code("model"),
    params:
        source=model_source(config),
        runtime=runtime(),
    resources:
        **job_resources("prepare_base_model"),
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
    threads: job_threads("generate_alignment_targets")
    resources:
        **job_resources("generate_alignment_targets"),
    log:
        "logs/generate_alignment_targets.log",
    script:
        "../scripts/run_step.py"


def alignment_inputs(wildcards):
    inputs = {"code": code("model"), "model": model_path("base")}
    if config["alignment"]["enabled"]:
        inputs.update(
            harmful="results/data/harmful_prompts.parquet",
            targets="results/data/alignment_targets.parquet",
            refusals=f"{PACKAGE}/resources/refusal_templates.yaml",
        )
    return inputs


# With alignment.enabled false (an already aligned chat model) the base model is linked as aligned.
rule align_model:
    output:
        model=directory(model_path("aligned")),
    input:
        unpack(alignment_inputs),
    params:
        settings=config["alignment"],
        safety_system_prompt=config["safety_system_prompt"],
        runtime=runtime(),
    threads: job_threads("align_model")
    resources:
        **job_resources("align_model"),
    log:
        "logs/align_model.log",
    script:
        "../scripts/run_step.py"
