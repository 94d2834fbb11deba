"""Figures and tables drawn with plotnine from the Parquet tables under results/ only.

Every figure carries a caption that states what was run: score method, selection rule, calibration
set, number of prompts and items, and the judge. Whiskers are 95% Wilson intervals unless the
caption states otherwise.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import numpy as np
from plotnine import (
    aes, element_text, facet_wrap, geom_errorbar, geom_histogram, geom_hline, geom_line, geom_point, geom_segment,
    geom_text, geom_tile, geom_vline, ggplot, labs, position_dodge, scale_fill_gradient, scale_x_continuous, theme,
    theme_bw,
)

from safety_brittleness.experiments import PARAMETER_COLUMNS, format_fraction
from safety_brittleness.provenance import atomic_path


def asr_utility_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Return one row per experiment: ASR_Vanilla (paper rule) and mean utility accuracy, with intervals.

    Every experiment has a row. ASR_Vanilla is empty for experiments that did not evaluate it.
    """
    asr = metrics[(metrics["metric"] == "asr_vanilla") & (metrics["aggregation"] == "paper")].set_index("experiment_id")
    utility = metrics[(metrics["metric"] == "utility_accuracy") & (metrics["task"] == "mean")]
    sparsity = metrics[metrics["metric"] == "actual_sparsity"].set_index("experiment_id")["value"]
    keep = ["experiment_id", "model", "region", "p", "q", "value", "ci_low", "ci_high"]
    keep += [column for column in ("rank", "r_u", "r_s") if column in utility.columns]
    table = utility[keep].rename(columns={"value": "utility_accuracy", "ci_low": "utility_low", "ci_high": "utility_high"})
    table["asr_vanilla"] = table["experiment_id"].map(asr["value"])
    table["asr_low"] = table["experiment_id"].map(asr["ci_low"])
    table["asr_high"] = table["experiment_id"].map(asr["ci_high"])
    table["actual_sparsity"] = table["experiment_id"].map(sparsity)
    removed = metrics[metrics["metric"] == "removed_rank"].set_index("experiment_id")["value"]
    table["removed_rank"] = table["experiment_id"].map(removed)
    # Base model first, then the aligned model, then edited models by p and q.
    table["order"] = table["region"].ne("none") * 2 + table["model"].eq("aligned") * table["region"].eq("none")
    table = table.sort_values(["order", "p", "q", "experiment_id"], kind="stable", na_position="first")
    return table.drop(columns="order").reset_index(drop=True)


def write_grid_table(metrics: pd.DataFrame, csv_path: str | Path, markdown_path: str | Path) -> pd.DataFrame:
    """Write one row per experiment (ASR_Vanilla, refusal and degenerate rates, utility, sparsity) as CSV and Markdown.

    Rank edits add their ranks (rank, r_u, r_s) and the largest rank(dW) over layers.
    """
    table = asr_utility_table(metrics)
    columns = ["experiment_id", "p", "q", "actual_sparsity"]
    if table["removed_rank"].notna().any():
        columns += [column for column in ("rank", "r_u", "r_s") if column in table.columns] + ["removed_rank"]
    columns += ["asr_vanilla", "asr_low", "asr_high"]
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
    _write_table(table, csv_path, markdown_path)
    return table


VARIANT_LABELS = {"vanilla": "ASR_Vanilla", "adv_suffix": "ASR_Adv-Suffix", "adv_decoding": "ASR_Adv-Decoding"}
METHOD_NAMES = {"snip": "SNIP", "wanda": "Wanda", "magnitude": "magnitude", "random": "random"}


def _save(figure, png_path: str | Path, pdf_path: str | Path, width: float = 9, height: float = 4.5) -> None:
    for path in (png_path, pdf_path):
        # Without a creation date, a PDF drawn twice from the same table has the same bytes.
        metadata = {"CreationDate": None} if Path(path).suffix == ".pdf" else {}
        with atomic_path(path, suffix=Path(path).suffix) as temporary:
            figure.save(str(temporary), width=width, height=height, dpi=150, verbose=False, metadata=metadata)


def _style():
    """Return the shared theme: black and white, with a small left-aligned caption."""
    return theme_bw() + theme(plot_caption=element_text(size=7, ha="left"))


def method_label(row: pd.Series) -> str:
    """Return the short name that the figures give to the kind of experiment of a metric row."""
    region = row["region"]
    if region == "none":
        return f"{row['model']} model"
    method = METHOD_NAMES.get(row.get("score_method"), str(row.get("score_method")))
    sequential = " (sequential)" if row.get("mode") == "sequential" else ""
    if region == "top":
        return f"{method} top{sequential}"
    if region == "bottom":
        return f"{method} bottom{sequential}"
    if region == "set_difference":
        return f"{method} set difference, {row['selection']}-wise{sequential}"
    if region == "random_baseline":
        return "random, size of a set difference"
    if region == "head_probing":
        return "head probing"
    if region == "actsvd_top":
        return f"ActSVD top{sequential}"
    if region == "actsvd_bottom":
        return f"ActSVD bottom{sequential}"
    if region == "orthogonal_projection":
        return f"ActSVD orthogonal projection{sequential}"
    if region == "finetune_attack":
        return f"fine-tuned on {row['attack_data']} examples, {row['protection']}"
    return str(region)


def experiment_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Return one row per (experiment, attack variant): ASR under the paper rule with its interval, utility, sparsity.

    Parameter columns come along; `method` names the kind of experiment.
    """
    asr = metrics[metrics["metric"].str.startswith("asr_") & (metrics["aggregation"] == "paper")].copy()
    asr["variant"] = asr["metric"].str.removeprefix("asr_")
    columns = ["experiment_id", "variant", "value", "ci_low", "ci_high", "n", "judge"]
    table = asr[columns].rename(columns={"value": "asr", "ci_low": "asr_low", "ci_high": "asr_high", "n": "prompts"})
    per_experiment = metrics.drop_duplicates("experiment_id").set_index("experiment_id")
    parameters = [c for c in PARAMETER_COLUMNS if c in per_experiment.columns]
    table = table.join(per_experiment[parameters], on="experiment_id")
    utility = metrics[(metrics["metric"] == "utility_accuracy") & (metrics["task"] == "mean")].set_index("experiment_id")
    table["utility_accuracy"] = table["experiment_id"].map(utility["value"])
    table["utility_low"] = table["experiment_id"].map(utility["ci_low"])
    table["utility_high"] = table["experiment_id"].map(utility["ci_high"])
    table["utility_items"] = table["experiment_id"].map(utility["n"])
    sparsity = metrics[metrics["metric"] == "actual_sparsity"].set_index("experiment_id")["value"]
    table["actual_sparsity"] = table["experiment_id"].map(sparsity)
    removed = metrics[metrics["metric"] == "removed_rank"].set_index("experiment_id")["value"]
    table["removed_rank"] = table["experiment_id"].map(removed)
    table["method"] = table.apply(method_label, axis=1) if len(table) else pd.Series(dtype=str)
    table["attack"] = pd.Categorical(
        table["variant"].map(VARIANT_LABELS), categories=[VARIANT_LABELS[v] for v in VARIANT_LABELS]
    )
    return table.reset_index(drop=True)


def pareto_front(table: pd.DataFrame, x: str, y: str) -> pd.Series:
    """Mark the rows not dominated by another row (another row at least as high in x and y, higher in one)."""
    values = table[[x, y]].to_numpy(dtype=float)
    flags = []
    for point in values:
        dominated = np.any(np.all(values >= point, axis=1) & np.any(values > point, axis=1))
        flags.append(not dominated)
    return pd.Series(flags, index=table.index)


def _run_caption(table: pd.DataFrame, extra: list[str], width: int = 140) -> str:
    """Return the caption lines, each wrapped at `width` characters so it fits the figure."""
    judges = ", ".join(sorted(table["judge"].dropna().unique())) or "unknown"
    parts = list(extra)
    if not table.empty:
        parts.append(
            f"ASR over {int(table['prompts'].max())} prompts ({judges} judge, paper rule); accuracy over "
            f"{int(table['utility_items'].max())} multiple-choice items; whiskers: 95% Wilson intervals"
        )
    return "\n".join(textwrap.fill(part, width, break_on_hyphens=False) for part in parts)


def _reference_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["region"] == "none"]


def _describe_settings(rows: pd.DataFrame) -> str:
    described = []
    for method, group in rows.groupby("method", sort=True):
        first = group.iloc[0]
        data = first["safety_dataset"] if isinstance(first["safety_dataset"], str) else "no data"
        described.append(f"{method} ({data}, {first['mode']})")
    return "; ".join(described)


def plot_fig2_neurons(metrics: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> pd.DataFrame:
    """Plot each ASR against mean accuracy: top removal, set difference (with its Pareto front), random baselines, head probing."""
    table = experiment_table(metrics)
    keep = table["region"].isin(["none", "top", "random_baseline", "head_probing"]) | (
        (table["region"] == "set_difference") & (table["safety_dataset"] == "safety-full")
    )
    table = table[keep].copy()
    table["front"] = False
    for _, group in table[table["region"] == "set_difference"].groupby(["variant", "method"]):
        table.loc[group.index, "front"] = pareto_front(group, "utility_accuracy", "asr")
    front = table[table["front"]].sort_values("utility_accuracy")
    edited = table[table["region"] != "none"]
    caption = _run_caption(table, [
        f"top removal: {', '.join(sorted({f'{m} s={format_fraction(s)}' for m, s in zip(edited.loc[edited.region == 'top', 'method'], edited.loc[edited.region == 'top', 'sparsity'])}))}",
        f"set difference (safety-full vs utility, one-shot), p, q grid of params.yaml; line: Pareto front per rule",
        f"head probing: top-k heads by probe accuracy, k in {sorted(edited.loc[edited.region == 'head_probing', 'top_k'].dropna().astype(int).unique().tolist())}",
    ], width=190)
    layer = geom_line(aes(group="method"), data=front, linetype="dashed")
    _save_asr_scatter(table, layer, "Neuron-level regions: attack success vs utility", caption, png_path, pdf_path)
    return table


def _save_asr_scatter(table: pd.DataFrame, layer, title: str, caption: str, png_path, pdf_path) -> None:
    """Draw each ASR against mean accuracy, one panel per attack, with `layer` under the points."""
    figure = (
        ggplot(table, aes("utility_accuracy", "asr", color="method", shape="method"))
        + geom_segment(aes(xend="utility_accuracy", y="asr_low", yend="asr_high"), alpha=0.3)
        + layer
        + geom_point(size=2.5)
        + facet_wrap("~attack")
        + labs(x="mean utility accuracy", y="attack success rate", color="experiment", shape="experiment",
               title=title, caption=caption)
        + _style()
        + theme(legend_text=element_text(size=7))
    )
    _save(figure, png_path, pdf_path, width=12, height=5)


def _bottom_curves(table: pd.DataFrame, min_accuracy: float, datasets: tuple[str, ...]) -> pd.DataFrame:
    """Return the mean and standard deviation over seeds of bottom removal, with the aligned model at sparsity zero."""
    bottom = table[(table["region"] == "bottom") & (table["safety_dataset"].isin(datasets) | table["safety_dataset"].isna())]
    bottom = bottom[bottom["utility_accuracy"] > min_accuracy].copy()
    bottom["safety_data"] = bottom["safety_dataset"].fillna("none")
    grouped = bottom.groupby(["method", "safety_data", "variant", "attack", "sparsity"], observed=True).agg(
        actual_sparsity=("actual_sparsity", "mean"), asr=("asr", "mean"), asr_std=("asr", "std"),
        seeds=("experiment_id", "count"), utility_accuracy=("utility_accuracy", "mean"),
    ).reset_index()
    grouped["asr_std"] = grouped["asr_std"].fillna(0.0)
    aligned = table[(table["experiment_id"] == "aligned")]
    starts = []
    for (method, data), _ in grouped.groupby(["method", "safety_data"]):
        for row in aligned.itertuples():
            if row.variant in set(grouped["variant"]):
                starts.append({"method": method, "safety_data": data, "variant": row.variant, "attack": row.attack,
                               "sparsity": 0.0, "actual_sparsity": 0.0, "asr": row.asr, "asr_std": 0.0, "seeds": 1,
                               "utility_accuracy": row.utility_accuracy})
    curves = pd.concat([pd.DataFrame(starts), grouped], ignore_index=True) if starts else grouped
    curves["attack"] = pd.Categorical(curves["variant"].map(VARIANT_LABELS), categories=list(VARIANT_LABELS.values()))
    curves["low"] = curves["asr"] - curves["asr_std"]
    curves["high"] = curves["asr"] + curves["asr_std"]
    return curves.sort_values(["method", "safety_data", "variant", "actual_sparsity"]).reset_index(drop=True)


def plot_fig3_neurons(metrics: pd.DataFrame, png_path: str | Path, pdf_path: str | Path, min_accuracy: float) -> pd.DataFrame:
    """Plot ASR after removing the least safety-critical weights (bottom by safety-short scores) against actual sparsity."""
    table = experiment_table(metrics)
    curves = _bottom_curves(table, min_accuracy, ("safety-short",))
    curves = curves[curves["variant"].isin(["adv_suffix", "adv_decoding"])]
    caption = _run_caption(table[table["region"] == "bottom"], [
        "bottom removal per row by safety-short scores (random: uniform scores, mean and std over seeds); "
        f"sparsity 0 is the aligned model; only models with accuracy > {min_accuracy}",
    ])
    figure = (
        ggplot(curves, aes("actual_sparsity", "asr", color="method"))
        + geom_line()
        + geom_point(size=2)
        + geom_errorbar(aes(ymin="low", ymax="high"), width=0.01)
        + facet_wrap("~attack")
        + labs(x="actual sparsity (share of block linear weights set to zero)", y="attack success rate",
               color="scores", title="Removing the least safety-critical weights", caption=caption)
        + _style()
    )
    _save(figure, png_path, pdf_path)
    return curves


def plot_fig7_safety_data(metrics: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> pd.DataFrame:
    """Plot set difference from safety-full vs safety-short scores: ASR against accuracy at the same (p, q)."""
    table = experiment_table(metrics)
    table = table[table["region"] == "set_difference"].copy()
    table["pair"] = [f"{a}|{b}|{c}|{format_fraction(p)}|{format_fraction(q)}" for a, b, c, p, q in zip(
        table["score_method"], table["selection"], table["mode"], table["p"], table["q"])]
    # Keep the (p, q) points computed from both safety data sets, and join each pair with a line.
    datasets = table.groupby("pair")["safety_dataset"].nunique()
    table = table[table["pair"].map(datasets) == 2]
    table["label"] = [f"p={format_fraction(p)}, q={format_fraction(q)}" for p, q in zip(table["p"], table["q"])]
    table["rule"] = table["selection"] + "-wise, " + table["mode"]
    labels = table[table["safety_dataset"] == "safety-short"]
    caption = _run_caption(table, ["set difference of the same p, q from safety-full or safety-short safety scores; lines join each pair"])
    figure = (
        ggplot(table, aes("utility_accuracy", "asr", color="safety_dataset", shape="rule"))
        + geom_segment(aes(xend="utility_accuracy", y="asr_low", yend="asr_high"), alpha=0.3)
        + geom_line(aes(group="pair"), color="grey", linetype="dotted")
        + geom_point(size=2.5)
        + geom_text(aes(label="label"), data=labels, size=6, nudge_y=0.04, color="black", show_legend=False)
        + scale_x_continuous(expand=(0.2, 0))
        + facet_wrap("~attack")
        + labs(x="mean utility accuracy", y="attack success rate", color="safety data", shape="selection",
               title="Set difference: safety-full vs safety-short scores", caption=caption)
        + _style()
    )
    _save(figure, png_path, pdf_path, width=12, height=5)
    return table


def plot_fig8_safety_data_bottom(metrics: pd.DataFrame, png_path: str | Path, pdf_path: str | Path, min_accuracy: float) -> pd.DataFrame:
    """Plot ASR after removing the least safety-critical weights by safety-full or safety-short scores, against actual sparsity."""
    table = experiment_table(metrics)
    curves = _bottom_curves(table, min_accuracy, ("safety-full", "safety-short"))
    curves = curves[(curves["safety_data"] != "none")]
    caption = _run_caption(table[table["region"] == "bottom"], [
        f"bottom removal per row; sparsity 0 is the aligned model; only models with accuracy > {min_accuracy}",
    ])
    figure = (
        ggplot(curves, aes("actual_sparsity", "asr", color="safety_data", linetype="method"))
        + geom_line()
        + geom_point(size=2)
        + facet_wrap("~attack")
        + labs(x="actual sparsity", y="attack success rate", color="safety data", linetype="scores",
               title="Least safety-critical removal: safety-full vs safety-short scores", caption=caption)
        + _style()
    )
    _save(figure, png_path, pdf_path)
    return curves


def _rank_point_label(row: pd.Series) -> str:
    if row["region"] == "orthogonal_projection":
        return f"({int(row['r_u'])}, {int(row['r_s'])})"
    if row["region"] == "actsvd_top":
        return f"r={int(row['rank'])}"
    return ""


def plot_fig2_ranks(metrics: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> pd.DataFrame:
    """Plot each ASR against mean accuracy for rank edits: ActSVD top ranks and orthogonal projection."""
    table = experiment_table(metrics)
    table = table[table["region"].isin(["none", "actsvd_top", "orthogonal_projection"])].copy()
    table["label"] = table.apply(_rank_point_label, axis=1) if len(table) else pd.Series(dtype=str)
    edited = table[table["region"] != "none"]
    reference = edited["reference_rank"].dropna()
    caption = _run_caption(table, [
        "ActSVD top: the top r safety output directions of every layer removed, labels r; orthogonal projection: "
        "(I - P_u) P_s W removed, labels (r_u, r_s)",
        f"ranks at width {int(reference.iloc[0]) if len(reference) else 'n/a'}, scaled to each layer's full rank; "
        f"largest rank(dW) over layers: {', '.join(str(int(v)) for v in sorted(edited['removed_rank'].dropna().unique())) or 'n/a'}; "
        f"bases from {_describe_settings(edited) or 'no rank edit'}",
    ], width=190)
    layer = [
        geom_text(aes(label="label"), size=6, nudge_y=0.04, show_legend=False),
        scale_x_continuous(expand=(0.1, 0)),
    ]
    _save_asr_scatter(table, layer, "Rank-level regions: attack success vs utility", caption, png_path, pdf_path)
    return table


def plot_fig3_ranks(metrics: pd.DataFrame, png_path: str | Path, pdf_path: str | Path, min_accuracy: float) -> pd.DataFrame:
    """Plot ASR after removing the least safety-critical ranks against the number of ranks removed."""
    table = experiment_table(metrics)
    bottom = table[(table["region"] == "actsvd_bottom") & (table["utility_accuracy"] > min_accuracy)].copy()
    bottom = bottom[bottom["variant"].isin(["adv_suffix", "adv_decoding"])]

    # Every curve starts at the aligned model, r = 0.
    aligned = table[(table["experiment_id"] == "aligned") & table["variant"].isin(bottom["variant"].unique())].copy()
    starts = []
    for method in bottom["method"].unique():
        start = aligned.copy()
        start["method"] = method
        start["rank"] = 0
        starts.append(start)
    curves = pd.concat([*starts, bottom], ignore_index=True)
    curves["rank"] = curves["rank"].astype(float)
    curves = curves.sort_values(["method", "variant", "rank"])

    reference = bottom["reference_rank"].dropna()
    caption = _run_caption(table[table["region"] == "actsvd_bottom"], [
        "the r least safety-critical output directions of every layer removed (the top R - r kept), bases from "
        f"{_describe_settings(bottom) or 'no rank edit'}; r at width {int(reference.iloc[0]) if len(reference) else 'n/a'}, "
        f"scaled to each layer; r = 0 is the aligned model; only models with accuracy > {min_accuracy}",
    ])
    figure = (
        ggplot(curves, aes("rank", "asr", color="method"))
        + geom_line()
        + geom_point(size=2)
        + geom_errorbar(aes(ymin="asr_low", ymax="asr_high"), alpha=0.4)
        + facet_wrap("~attack")
        + labs(x="removed ranks r (of each layer's R)", y="attack success rate", color="edit",
               title="Removing the least safety-critical ranks", caption=caption)
        + _style()
    )
    _save(figure, png_path, pdf_path)
    return curves


def _heat_map(table: pd.DataFrame, value: str, legend: str, title: str, caption: str, png_path, pdf_path) -> None:
    """Plot one tile per block and module, modules in layer-name order."""
    order = list(dict.fromkeys(table.sort_values("layer")["module"]))
    table = table.assign(module=pd.Categorical(table["module"], categories=order))
    figure = (
        ggplot(table, aes("block", "module", fill=value))
        + geom_tile()
        + scale_fill_gradient(low="#f7fbff", high="#08306b", limits=(0, 1))
        + labs(x="block", y="module", fill=legend, title=title, caption=caption)
        + _style()
    )
    _save(figure, png_path, pdf_path)


def plot_fig4_jaccard(overlaps: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> None:
    """Plot a heat map of the Jaccard index of top safety and top utility weights, per block and module."""
    first = overlaps.iloc[0]
    caption = (
        f"top {100 * first['fraction']:g}% by {METHOD_NAMES.get(first['score_method'], first['score_method'])} "
        f"score, {first['selection']}-wise, {first['safety_dataset']} vs {first['utility_dataset']}; "
        f"mean {overlaps['jaccard'].mean():.3f}"
    )
    _heat_map(overlaps, "jaccard", "Jaccard", "Overlap of safety- and utility-critical weights", caption, png_path, pdf_path)


def plot_fig4_subspace(similarity: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> None:
    """Plot a heat map of the similarity of top safety and top utility output subspaces, per block and module."""
    first = similarity.iloc[0]
    ranks = ", ".join(f"{rank} of {full}" for rank, full in
                      similarity[["rank", "full_rank"]].drop_duplicates().sort_values("full_rank").itertuples(index=False))
    caption = (
        f"ActSVD output subspaces from {first['safety_dataset']} and {first['utility_dataset']} inputs; "
        f"similarity ||U_u^T U_s||_F^2 / r with r = {first['rank_fraction']:g} x full rank ({ranks}); "
        f"mean {similarity['similarity'].mean():.3f}"
    )
    _heat_map(similarity, "similarity", "similarity", "Similarity of safety and utility subspaces", caption, png_path, pdf_path)


def plot_fig9_probing(probes: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> None:
    """Plot a histogram of the held-out accuracy of the per-head probes."""
    first = probes.iloc[0]
    caption = (
        f"{len(probes)} heads, a logistic-regression probe each on last-token head outputs\n"
        f"{int(first['n_train'])} training and {int(first['n_test'])} held-out prompts, half of them harmful\n"
        f"median accuracy {probes['accuracy'].median():.3f}, dashed line: chance"
    )
    figure = (
        ggplot(probes, aes("accuracy"))
        + geom_histogram(binwidth=0.02, fill="#4c72b0", color="white")
        + geom_vline(xintercept=0.5, linetype="dashed")
        + labs(x="probe accuracy on held-out prompts", y="heads", title="Attention-head probes: harmful vs harmless",
               caption=caption)
        + _style()
    )
    _save(figure, png_path, pdf_path, width=7, height=4.5)


def _pareto_rows(metrics: pd.DataFrame, region: str, columns: list[str], groups: list[str]) -> pd.DataFrame:
    """Return the aligned model, then per group the experiments of `region` on the Pareto front of ASR_Vanilla and accuracy."""
    table = experiment_table(metrics)
    wide = table.pivot_table(index="experiment_id", columns="variant", values="asr").add_prefix("asr_")
    per_experiment = table.drop_duplicates("experiment_id").set_index("experiment_id")
    wide = wide.join(per_experiment[columns + ["region"]])
    asr_columns = [f"asr_{v}" for v in VARIANT_LABELS if f"asr_{v}" in wide.columns]
    rows = [wide.loc[["aligned"]]] if "aligned" in wide.index else []
    selected = wide[wide["region"] == region].dropna(subset=["asr_vanilla"])
    for _, group in selected.groupby(groups, sort=True):
        front = group[pareto_front(group, "utility_accuracy", "asr_vanilla")]
        rows.append(front.sort_values("asr_vanilla", ascending=False))
    result = pd.concat(rows).reset_index()[["experiment_id"] + columns + asr_columns]
    for column in groups:
        result[column] = result[column].astype(object).where(result[column].notna(), "")
    return result


def write_table6(metrics: pd.DataFrame, csv_path: str | Path, markdown_path: str | Path) -> pd.DataFrame:
    """Write the best (p, q) rows: set-difference points on the Pareto front of ASR_Vanilla and accuracy, per rule.

    Columns: the rule, p, q, actual sparsity, each evaluated ASR (paper rule) and mean accuracy.
    The aligned model comes first for reference.
    """
    groups = ["score_method", "selection", "safety_dataset", "mode"]
    result = _pareto_rows(metrics, "set_difference", groups + ["p", "q", "actual_sparsity", "utility_accuracy"], groups)
    _write_table(result, csv_path, markdown_path)
    return result

def _write_table(result: pd.DataFrame, csv_path: str | Path, markdown_path: str | Path) -> None:
    with atomic_path(csv_path, suffix=".csv") as temporary:
        result.to_csv(temporary, index=False)
    with atomic_path(markdown_path, suffix=".md") as temporary:
        printable = result.astype(object).where(result.notna(), None)
        temporary.write_text(printable.to_markdown(index=False, floatfmt=".4g", missingval="") + "\n")


def write_table7(metrics: pd.DataFrame, csv_path: str | Path, markdown_path: str | Path) -> pd.DataFrame:
    """Write the best (r_u, r_s) rows: orthogonal projections on the Pareto front of ASR_Vanilla and accuracy, per mode.

    Columns: r_u, r_s (at the width reference_rank), the largest rank(dW) over layers, each
    evaluated ASR (paper rule) and mean accuracy. The aligned model comes first for reference.
    """
    groups = ["safety_dataset", "mode"]
    columns = groups + ["reference_rank", "r_u", "r_s", "removed_rank", "utility_accuracy"]
    result = _pareto_rows(metrics, "orthogonal_projection", columns, groups).rename(columns={"removed_rank": "rank_dW"})
    for column in ("reference_rank", "r_u", "r_s", "rank_dW"):
        result[column] = result[column].astype("Int64")
    _write_table(result, csv_path, markdown_path)
    return result


ATTACK_COLUMNS = ["attack_data", "attack_examples", "protection", "protected_fraction"]


def _attack_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """Return one row per fine-tuning attack (and the aligned model): the ASRs (paper rule), accuracy and final loss."""
    table = experiment_table(metrics)
    wide = table.pivot_table(index="experiment_id", columns="variant", values="asr").add_prefix("asr_")
    per_experiment = table.drop_duplicates("experiment_id").set_index("experiment_id")
    wide = wide.join(per_experiment[ATTACK_COLUMNS + ["region", "utility_accuracy"]])
    loss = metrics[metrics["metric"] == "attack_final_loss"].set_index("experiment_id")["value"]
    wide["final_loss"] = wide.index.map(loss)
    return wide[(wide["region"] == "finetune_attack") | (wide.index == "aligned")]


def write_table3(metrics: pd.DataFrame, csv_path: str | Path, markdown_path: str | Path) -> pd.DataFrame:
    """Write Table 3: each evaluated ASR after every fine-tuning attack, by data, n, protection and protected fraction.

    The aligned model comes first for reference; accuracy and the final training loss follow the ASRs.
    """
    wide = _attack_rows(metrics)
    asr_columns = [f"asr_{v}" for v in VARIANT_LABELS if f"asr_{v}" in wide.columns]
    wide["order"] = wide["region"].eq("finetune_attack").astype(int)
    result = wide.sort_values(["order", "attack_data", "attack_examples", "protected_fraction", "protection"]).reset_index()
    result = result[["experiment_id"] + ATTACK_COLUMNS + asr_columns + ["utility_accuracy", "final_loss"]]
    result["attack_examples"] = result["attack_examples"].astype("Int64")
    for column in ("attack_data", "protection"):
        result[column] = result[column].astype(object).where(result[column].notna(), "")
    _write_table(result, csv_path, markdown_path)
    return result


def plot_fig_finetune_attack(metrics: pd.DataFrame, png_path: str | Path, pdf_path: str | Path) -> pd.DataFrame:
    """Plot ASR_Vanilla after fine-tuning attacks against the protected fraction, one line per n and protection.

    Colour separates the attack data and n. Line type and point shape separate frozen from rewound.
    """
    table = experiment_table(metrics)
    attacks = table[(table["region"] == "finetune_attack") & (table["variant"] == "vanilla")].copy()
    aligned = table[(table["experiment_id"] == "aligned") & (table["variant"] == "vanilla")]
    attacks["curve"] = attacks.apply(
        lambda row: f"{row['attack_data']}, n = {int(row['attack_examples'])}", axis=1,
    ) if len(attacks) else pd.Series(dtype=str)
    attacks["protected_fraction"] = attacks["protected_fraction"].astype(float)
    attacks["protection"] = np.where(attacks["protection"] == "rewind", "rewound", "frozen")
    caption = _run_caption(attacks, [
        "full fine-tuning of the aligned model; the top-q weights of each row by safety score are frozen (zero gradient, "
        "no update) or rewound after training; q = 0 protects nothing; dotted line: the aligned model; "
        "points are shifted sideways a little so that equal values stay visible",
    ])
    # Frozen and rewound attacks can reach the same ASR: dodge them so neither hides the other.
    dodge = position_dodge(width=0.03)
    figure = (
        ggplot(attacks.sort_values("protected_fraction"),
               aes("protected_fraction", "asr", color="curve", linetype="protection", shape="protection"))
        + geom_line(position=dodge)
        + geom_point(size=2.5, position=dodge)
        + geom_errorbar(aes(ymin="asr_low", ymax="asr_high"), width=0.02, alpha=0.5, position=dodge)
        + labs(x="protected fraction q of each row", y="ASR_Vanilla", color="attack", linetype="protection",
               shape="protection",
               title="Fine-tuning attacks with a protected safety-critical region", caption=caption)
        + _style()
    )
    if len(aligned):
        figure = figure + geom_hline(yintercept=float(aligned["asr"].iloc[0]), linetype="dotted")
    _save(figure, png_path, pdf_path)
    return attacks
