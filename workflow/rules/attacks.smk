def attack_data_inputs(wildcards):
    inputs = {"code": code("attacks")}
    if config["attacks"]["harmful_file"]:
        inputs["file"] = config["attacks"]["harmful_file"]
    else:
        inputs.update(model=model_path("base"), harmful="results/data/harmful_prompts.parquet")
    return inputs


rule generate_attack_data:
    output:
        examples=ATTACK_DATA,
    input:
        unpack(attack_data_inputs),
    params:
        settings={key: config["attacks"][key] for key in ("harmful_file", "answer_max_new_tokens", "generation_batch_size")},
        runtime=runtime(),
    threads: job_threads("generate_attack_data")
    resources:
        **job_resources("generate_attack_data"),
    log:
        "logs/generate_attack_data.log",
    script:
        "../scripts/run_step.py"


def attack_experiment_inputs(wildcards):
    spec = EXPERIMENTS[wildcards.experiment]
    inputs = evaluation_inputs(spec, code("attacks"))
    inputs.update(attack_inputs(spec))
    return inputs


# Fine-tuning and evaluation in one job, so no fine-tuned model is stored.
rule evaluate_attack:
    output:
        metrics="results/evaluation/{experiment}.parquet",
        generations="results/generations/{experiment}.parquet",
    input:
        unpack(attack_experiment_inputs),
    params:
        experiment=lambda wc: EXPERIMENTS[wc.experiment],
        settings=lambda wc: evaluation_settings(config, EXPERIMENTS[wc.experiment]),
        training=config["attacks"]["training"],
        benign_and_perplexity=config["attacks"]["benign_and_perplexity"],
        safety_system_prompt=config["safety_system_prompt"],
        runtime=runtime(),
    wildcard_constraints:
        experiment="|".join(re.escape(name) for name, spec in EXPERIMENTS.items() if spec["region"] == "finetune_attack") or "^$",
    threads: job_threads("evaluate_attack")
    resources:
        **job_resources("evaluate_attack"),
    log:
        "logs/evaluate_attack/{experiment}.log",
    script:
        "../scripts/run_step.py"
