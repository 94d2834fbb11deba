# Entry point of the workflow: load and validate the parameters, then include one rule file per stage.
import re

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "params.yaml"

from safety_brittleness.codedeps import module_files
from safety_brittleness.config import ParameterError, check_sources, load_schema, model_source, validate_params
from safety_brittleness.experiments import build_registry, model_path, score_path

SCHEMA = "workflow/schemas/params.schema.yaml"
try:
    validate_params(config, load_schema(SCHEMA))
    check_sources(config)
except ParameterError as error:
    raise WorkflowError(str(error)) from None
validate(config, SCHEMA, set_default=True)

EXPERIMENTS = build_registry(config)
PACKAGE = "src/safety_brittleness"
RUN_STEP = "workflow/scripts/run_step.py"


def code(family):
    """Package source files that the steps of one family import: editing them reruns those rules."""
    return module_files(f"safety_brittleness.steps.{family}", PACKAGE)


def runtime():
    return config["runtime"]


include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/calibration.smk"
include: "workflow/rules/scoring.smk"
include: "workflow/rules/regions.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        "results/metrics.parquet",
        "results/figures/fig2_neurons.png",
        "results/figures/fig2_neurons.pdf",
        "results/tables/set_difference_grid.csv",
        "results/tables/set_difference_grid.md",
