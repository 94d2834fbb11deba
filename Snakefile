# Entry point of the workflow: load and validate the parameters, then include one rule file per stage.
import os
import re
import sys
from pathlib import Path

# Snakemake and every job import the package from this checkout's src/, the code that the rules
# list as inputs and the commit that provenance records, even where the environment has another copy.
SOURCE = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SOURCE)
os.environ["PYTHONPATH"] = os.pathsep.join([SOURCE, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "params.yaml"

from safety_brittleness.codedeps import module_files
from safety_brittleness.config import (
    ParameterError, check_sources, load_schema, model_source, sort_keys, validate_params,
)
from safety_brittleness.experiments import (
    ATTACK_DATA, OVERLAPS, PROBES, SUBSPACES, RegistryError, attack_inputs, bases_path, build_registry, calibration_path,
    evaluation_settings, grams_path, model_path, region_inputs, score_path, sequential_bases_path,
)

from safety_brittleness.restore import has_unrecorded_results

SCHEMA = "workflow/schemas/params.schema.yaml"
try:
    validate_params(config, load_schema(SCHEMA))
    check_sources(config)
except ParameterError as error:
    raise WorkflowError(str(error)) from None
validate(config, SCHEMA, set_default=True)
# Snakemake compares a rule's parameters with their key order, so reordering the keys of a parameter
# file would rerun jobs. Sorting every mapping makes the order irrelevant.
sorted_config = sort_keys(config)
config.clear()
config.update(sorted_config)

try:
    EXPERIMENTS = build_registry(config)
except RegistryError as error:
    raise WorkflowError(str(error)) from None
PACKAGE = "src/safety_brittleness"
RUN_STEP = "workflow/scripts/run_step.py"


def code(family):
    """Package source files that the steps of one family import: editing them reruns those rules."""
    return module_files(f"safety_brittleness.steps.{family}", PACKAGE)


def runtime():
    return config["runtime"]


# Rules that load the model: they get resources.model_jobs (GPUs in the paper profile).
MODEL_RULES = {
    "prepare_base_model", "generate_alignment_targets", "align_model", "build_safety_calibration",
    "build_utility_calibration", "score_snip", "score_wanda", "extract_region", "probe_heads", "compute_grams",
    "compute_bases", "compute_sequential_bases", "compute_sequential_projection_bases", "generate_attack_data",
    "evaluate_attack", "evaluate_experiment",
}


def _rule_resources(rule_name):
    settings = config["resources"]
    values = dict(settings["model_jobs"] if rule_name in MODEL_RULES else settings["other_jobs"])
    values.update(settings["rules"].get(rule_name) or {})
    return values


def job_resources(rule_name):
    """Cluster resources of one rule: model_jobs or other_jobs, then the rule's own entry in resources.rules."""
    return {key: value for key, value in _rule_resources(rule_name).items() if key != "cpus"}


def job_threads(rule_name):
    """Threads of a rule that runs the model: its resources' cpus, half the cores ('half') or every core Snakemake was given."""
    cpus = _rule_resources(rule_name).get("cpus")
    if cpus == "half":
        return max(1, workflow.cores // 2)
    return cpus or workflow.cores


include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/calibration.smk"
include: "workflow/rules/scoring.smk"
include: "workflow/rules/regions.smk"
include: "workflow/rules/ranks.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/attacks.smk"
include: "workflow/rules/figures.smk"


def figure_targets():
    """Every figure and table whose experiments params.yaml defines."""
    names = ["fig2_neurons", "fig4_jaccard", "fig4_subspace", "fig9_probing"]
    regions = [spec["region"] for spec in EXPERIMENTS.values()]
    if "bottom" in regions:
        names += ["fig3_neurons", "fig8_safety_data_bottom"]
    if any(spec["safety_dataset"] == "safety-short" and spec["region"] == "set_difference" for spec in EXPERIMENTS.values()):
        names.append("fig7_safety_data")
    tables = ["table6", "set_difference_grid"]
    if {"actsvd_top", "orthogonal_projection"} & set(regions):
        names.append("fig2_ranks")
    if "orthogonal_projection" in regions:
        tables.append("table7")
    if "actsvd_bottom" in regions:
        names.append("fig3_ranks")
    if "finetune_attack" in regions:
        names.append("fig_finetune_attack")
        tables.append("table3")
    targets = [f"results/figures/{name}.{suffix}" for name in names for suffix in ("png", "pdf")]
    return targets + [f"results/tables/{name}.{suffix}" for name in tables for suffix in ("csv", "md")]


rule all:
    default_target: True
    input:
        "results/metrics.parquet",
        figure_targets(),


onstart:
    # Files from `dvc pull` carry the time of the pull and no Snakemake records: parameter changes would go
    # unseen and jobs would rerun in a random pattern, so stop until they are checked and marked up to date.
    if not workflow.touch and has_unrecorded_results():
        raise WorkflowError(
            "results/ contains files that Snakemake has no records of (.snakemake/metadata is missing or empty), as "
            "after `dvc pull` or a deleted .snakemake folder. Run `safety-brittleness pull` to check them against "
            "dvc.lock and mark them up to date. If they are known to match the current parameters and code, "
            "`snakemake --profile workflow/profiles/default --touch --forceall` marks them without the check, and "
            "deleting results/ recomputes everything."
        )
