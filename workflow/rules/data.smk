rule prepare_harmful_prompts:
    output:
        prompts="results/data/harmful_prompts.parquet",
    input:
        code=code("data"),
    params:
        settings=config["data"]["harmful"],
        runtime=runtime(),
    log:
        "logs/prepare_harmful_prompts.log",
    script:
        "../scripts/run_step.py"


rule prepare_benign_prompts:
    output:
        prompts="results/data/benign_prompts.parquet",
    input:
        code=code("data"),
        instructions=f"{PACKAGE}/resources/benign_instructions.jsonl",
    params:
        settings=config["data"]["benign"],
        runtime=runtime(),
    log:
        "logs/prepare_benign_prompts.log",
    script:
        "../scripts/run_step.py"
