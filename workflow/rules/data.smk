def download_path(name):
    """Where a pinned download lands: its `file` name, else the last part of its URL or local copy."""
    entry = config["data"]["downloads"][name]
    source = entry.get("url") or entry.get("local_copy") or name
    file_name = entry.get("file") or source.rsplit("/", 1)[-1].split("?", 1)[0]
    return f"results/downloads/{name}/{file_name}"


rule download_data:
    output:
        file="results/downloads/{name}/{file}",
    input:
        code=code("data"),
    params:
        entry=lambda wc: config["data"]["downloads"][wc.name],
        runtime=runtime(),
    wildcard_constraints:
        name="|".join(re.escape(name) for name in config["data"].get("downloads", {})) or "^$",
    resources:
        **job_resources("download_data"),
    log:
        "logs/download_data/{name}/{file}.log",
    script:
        "../scripts/run_step.py"


def harmful_prompt_inputs(wildcards):
    inputs = {"code": code("data")}
    for index, entry in enumerate(config["data"]["harmful"]["files"]):
        if "download" in entry:
            inputs[f"download_{index}"] = download_path(entry["download"])
    return inputs


rule prepare_harmful_prompts:
    output:
        prompts="results/data/harmful_prompts.parquet",
    input:
        unpack(harmful_prompt_inputs),
    params:
        settings=config["data"]["harmful"],
        runtime=runtime(),
    resources:
        **job_resources("prepare_harmful_prompts"),
    log:
        "logs/prepare_harmful_prompts.log",
    script:
        "../scripts/run_step.py"


def benign_prompt_inputs(wildcards):
    settings = config["data"]["benign"]
    if settings["source"] == "download":
        phrases = settings["filter_phrases"] or f"{PACKAGE}/resources/utility_filter_phrases.yaml"
        return {"code": code("data"), "file": download_path(settings["download"]), "phrases": phrases}
    return {"code": code("data"), "instructions": f"{PACKAGE}/resources/benign_instructions.jsonl"}


rule prepare_benign_prompts:
    output:
        prompts="results/data/benign_prompts.parquet",
    input:
        unpack(benign_prompt_inputs),
    params:
        settings=config["data"]["benign"],
        runtime=runtime(),
    resources:
        **job_resources("prepare_benign_prompts"),
    log:
        "logs/prepare_benign_prompts.log",
    script:
        "../scripts/run_step.py"
