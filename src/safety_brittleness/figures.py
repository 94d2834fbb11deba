"""Figures drawn with plotnine from the metrics table only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from plotnine import aes, geom_point, geom_segment, geom_text, ggplot, labs, scale_shape_manual, theme_bw

from safety_brittleness.experiments import format_fraction
from safety_brittleness.provenance import atomic_path


def asr_utility_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Return one row per experiment: ASR_Vanilla (paper rule) and mean utility accuracy, with intervals."""
    asr = metrics[(metrics["metric"] == "asr_vanilla") & (metrics["aggregation"] == "paper")]
    utility = metrics[(metrics["metric"] == "utility_accuracy") & (metrics["task"] == "mean")]
    sparsity = metrics[metrics["metric"] == "actual_sparsity"][["experiment_id", "value"]]
    keep = ["experiment_id", "model", "region", "p", "q", "value", "ci_low", "ci_high"]
    table = asr[keep].rename(columns={"value": "asr_vanilla", "ci_low": "asr_low", "ci_high": "asr_high"})
    table = table.merge(
        utility[["experiment_id", "value", "ci_low", "ci_high"]].rename(
            columns={"value": "utility_accuracy", "ci_low": "utility_low", "ci_high": "utility_high"}
        ),
        on="experiment_id",
    )
    table = table.merge(sparsity.rename(columns={"value": "actual_sparsity"}), on="experiment_id")
    # Base model first, then the aligned model, then edited models by p and q.
    table["order"] = table["region"].ne("none") * 2 + table["model"].eq("aligned") * table["region"].eq("none")
    table = table.sort_values(["order", "p", "q", "experiment_id"], kind="stable", na_position="first")
    return table.drop(columns="order").reset_index(drop=True)


def write_grid_table(metrics: pd.DataFrame, csv_path: str | Path, markdown_path: str | Path) -> pd.DataFrame:
    """Write one row per experiment (ASR_Vanilla, refusal and degenerate rates, utility, sparsity) as CSV and Markdown."""
    table = asr_utility_table(metrics)
    columns = ["experiment_id", "p", "q", "actual_sparsity", "asr_vanilla", "asr_low", "asr_high"]
    extra = [
        ("asr_adv_suffix", "paper"), ("asr_adv_decoding", "paper"),
        ("asr_adv_suffix", "reference_code"), ("asr_adv_decoding", "reference_code"),
        ("refusal_rate_vanilla", "paper"), ("degenerate_rate_vanilla", "paper"), ("benign_refusal_rate", "paper"),
    ]
    for metric, aggregation in extra:
        selected = metrics[(metrics["metric"] == metric) & (metrics["aggregation"] == aggregation)]
        if selected.empty:
            continue
        name = metric if aggregation == "paper" else f"{metric}_reference_code"
        table[name] = table["experiment_id"].map(selected.set_index("experiment_id")["value"])
        columns.append(name)
    columns += ["utility_accuracy", "utility_low", "utility_high"]
    table = table[columns]
    with atomic_path(csv_path, suffix=".csv") as temporary:
        table.to_csv(temporary, index=False)
    with atomic_path(markdown_path, suffix=".md") as temporary:
        temporary.write_text(table.to_markdown(index=False, floatfmt=".4g", missingval="") + "\n")
    return table


def _caption(metrics: pd.DataFrame) -> str:
    """Say what was run: scores, selection rule, calibration set, number of prompts and items."""
    regions = metrics[metrics["region"] == "set_difference"]
    asr = metrics[metrics["metric"] == "asr_vanilla"]
    utility = metrics[(metrics["metric"] == "utility_accuracy") & (metrics["task"] == "mean")]
    parts = []
    if not regions.empty and "score_method" in regions:
        first = regions.iloc[0]
        parts.append(f"{str(first['score_method']).upper()} scores, {first['selection']}-wise selection, "
                     f"{first['safety_dataset']} vs {first['utility_dataset']}, {first['mode']}")
    if not asr.empty:
        parts.append(f"ASR over {int(asr['n'].max())} prompts")
    if not utility.empty:
        parts.append(f"accuracy over {int(utility['n'].max())} items")
    parts.append("whiskers: 95% Wilson intervals")
    return "\n".join(parts)


def _label(row: pd.Series) -> str:
    if row["region"] == "none":
        return f"{row['model']} model"
    return f"p={format_fraction(row['p'])}, q={format_fraction(row['q'])}"


def plot_asr_vs_utility(metrics: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> None:
    """Plot ASR_Vanilla against mean utility accuracy: set-difference grid points, base and aligned models."""
    table = asr_utility_table(metrics)
    caption = _caption(metrics)
    judges = metrics.loc[metrics["metric"] == "asr_vanilla", "judge"].dropna().unique()
    judge = ", ".join(sorted(judges)) or "unknown"
    table["label"] = table.apply(_label, axis=1)
    table["kind"] = table["region"].where(table["region"] != "none", table["model"] + " model")
    table["kind"] = table["kind"].replace({"set_difference": "set difference region"})
    # Whiskers are 95% Wilson intervals: ASR over the evaluation prompts, accuracy over all items.
    figure = (
        ggplot(table, aes("utility_accuracy", "asr_vanilla", shape="kind", color="kind"))
        + geom_segment(aes(x="utility_accuracy", xend="utility_accuracy", y="asr_low", yend="asr_high"), alpha=0.4)
        + geom_segment(aes(x="utility_low", xend="utility_high", y="asr_vanilla", yend="asr_vanilla"), alpha=0.4)
        + geom_point(size=3)
        + geom_text(aes(label="label"), size=7, nudge_y=0.03, show_legend=False)
        + scale_shape_manual(values={"base model": "s", "aligned model": "D", "set difference region": "o"})
        + labs(
            x="mean utility accuracy (lm-eval, zero-shot)",
            y=f"ASR_Vanilla ({judge} judge)",
            color="experiment",
            shape="experiment",
            title="Removing the set-difference region: attack success vs utility",
            caption=caption,
        )
        + theme_bw()
    )
    for path in (png_path, pdf_path):
        suffix = Path(path).suffix
        with atomic_path(path, suffix=suffix) as temporary:
            figure.save(str(temporary), width=7, height=5, dpi=150, verbose=False)
