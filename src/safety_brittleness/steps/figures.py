"""Steps that draw figures and write tables from the metrics table."""

from __future__ import annotations

import pandas as pd

from safety_brittleness import figures
from safety_brittleness.steps import StepContext, step


@step
def plot_fig2_neurons(context: StepContext) -> None:
    metrics = pd.read_parquet(context.input["metrics"])
    figures.plot_asr_vs_utility(metrics, context.output["png"], context.output["pdf"])


@step
def write_grid_table(context: StepContext) -> None:
    metrics = pd.read_parquet(context.input["metrics"])
    figures.write_grid_table(metrics, context.output["csv"], context.output["markdown"])
