"""Steps that draw figures and write tables from the Parquet tables under results/."""

from __future__ import annotations

import pandas as pd

from safety_brittleness import figures
from safety_brittleness.steps import StepContext, step


def _metrics(context: StepContext) -> pd.DataFrame:
    return pd.read_parquet(context.input["metrics"])


@step
def plot_fig2_neurons(context: StepContext) -> None:
    figures.plot_fig2_neurons(_metrics(context), context.output["png"], context.output["pdf"])


@step
def plot_fig3_neurons(context: StepContext) -> None:
    figures.plot_fig3_neurons(
        _metrics(context), context.output["png"], context.output["pdf"], context.params["settings"]["fig3_min_accuracy"]
    )


@step
def plot_fig2_ranks(context: StepContext) -> None:
    figures.plot_fig2_ranks(_metrics(context), context.output["png"], context.output["pdf"])


@step
def plot_fig3_ranks(context: StepContext) -> None:
    figures.plot_fig3_ranks(
        _metrics(context), context.output["png"], context.output["pdf"], context.params["settings"]["fig3_min_accuracy"]
    )


@step
def plot_fig7_safety_data(context: StepContext) -> None:
    figures.plot_fig7_safety_data(_metrics(context), context.output["png"], context.output["pdf"])


@step
def plot_fig8_safety_data_bottom(context: StepContext) -> None:
    figures.plot_fig8_safety_data_bottom(
        _metrics(context), context.output["png"], context.output["pdf"], context.params["settings"]["fig3_min_accuracy"]
    )


@step
def plot_fig4_jaccard(context: StepContext) -> None:
    figures.plot_fig4_jaccard(pd.read_parquet(context.input["overlaps"]), context.output["png"], context.output["pdf"])


@step
def plot_fig4_subspace(context: StepContext) -> None:
    figures.plot_fig4_subspace(pd.read_parquet(context.input["similarity"]), context.output["png"], context.output["pdf"])


@step
def plot_fig9_probing(context: StepContext) -> None:
    figures.plot_fig9_probing(pd.read_parquet(context.input["probes"]), context.output["png"], context.output["pdf"])


@step
def write_table6(context: StepContext) -> None:
    figures.write_table6(_metrics(context), context.output["csv"], context.output["markdown"])


@step
def write_grid_table(context: StepContext) -> None:
    figures.write_grid_table(_metrics(context), context.output["csv"], context.output["markdown"])


@step
def write_table7(context: StepContext) -> None:
    figures.write_table7(_metrics(context), context.output["csv"], context.output["markdown"])


@step
def plot_fig_finetune_attack(context: StepContext) -> None:
    figures.plot_fig_finetune_attack(_metrics(context), context.output["png"], context.output["pdf"])


@step
def write_table3(context: StepContext) -> None:
    figures.write_table3(_metrics(context), context.output["csv"], context.output["markdown"])
