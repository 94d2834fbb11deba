# Run the package step registered under this job's rule name (see safety_brittleness.steps).
from safety_brittleness.steps import run_snakemake_step

run_snakemake_step(snakemake)  # noqa: F821 - Snakemake injects this object
