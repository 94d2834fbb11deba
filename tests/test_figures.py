"""Figures and tables are drawn from the Parquet tables alone."""

from __future__ import annotations

import pandas as pd
import pytest

from safety_brittleness.experiments import PARAMETER_COLUMNS
from safety_brittleness.figures import (
    asr_utility_table, experiment_table, pareto_front, plot_fig2_neurons, plot_fig2_ranks, plot_fig3_neurons,
    plot_fig3_ranks, plot_fig4_jaccard, plot_fig4_subspace, plot_fig7_safety_data, plot_fig8_safety_data_bottom,
    plot_fig9_probing, plot_fig_finetune_attack, write_grid_table, write_table3, write_table6, write_table7,
)

EXPERIMENTS = [
    # id, parameters, ASR_Vanilla, accuracy, actual sparsity
    ("base", {"model": "base", "region": "none"}, 0.9, 0.7, 0.0),
    ("aligned", {"model": "aligned", "region": "none"}, 0.02, 0.68, 0.0),
    ("sd1", {"region": "set_difference", "score_method": "snip", "selection": "row", "mode": "one-shot",
             "safety_dataset": "safety-full", "utility_dataset": "utility", "p": 0.1, "q": 0.01}, 0.6, 0.6, 0.01),
    ("sd2", {"region": "set_difference", "score_method": "snip", "selection": "row", "mode": "one-shot",
             "safety_dataset": "safety-full", "utility_dataset": "utility", "p": 0.2, "q": 0.01}, 0.4, 0.5, 0.01),
    ("sd3", {"region": "set_difference", "score_method": "snip", "selection": "row", "mode": "one-shot",
             "safety_dataset": "safety-full", "utility_dataset": "utility", "p": 0.3, "q": 0.01}, 0.7, 0.65, 0.02),
    ("sd1-short", {"region": "set_difference", "score_method": "snip", "selection": "row", "mode": "one-shot",
                   "safety_dataset": "safety-short", "utility_dataset": "utility", "p": 0.1, "q": 0.01}, 0.5, 0.6, 0.01),
    ("top", {"region": "top", "score_method": "snip", "selection": "row", "mode": "one-shot",
             "safety_dataset": "safety-full", "sparsity": 0.01}, 0.95, 0.3, 0.01),
    ("probe", {"region": "head_probing", "top_k": 10}, 0.05, 0.66, 0.002),
    ("bottom-short", {"region": "bottom", "score_method": "snip", "selection": "row", "mode": "one-shot",
                      "safety_dataset": "safety-short", "sparsity": 0.2}, 0.01, 0.64, 0.2),
    ("bottom-full", {"region": "bottom", "score_method": "snip", "selection": "row", "mode": "one-shot",
                     "safety_dataset": "safety-full", "sparsity": 0.2}, 0.03, 0.62, 0.2),
    ("bottom-random-0", {"region": "bottom", "score_method": "random", "selection": "row", "mode": "one-shot",
                         "sparsity": 0.2, "region_seed": 0}, 0.10, 0.55, 0.2),
    ("bottom-random-1", {"region": "bottom", "score_method": "random", "selection": "row", "mode": "one-shot",
                         "sparsity": 0.2, "region_seed": 1}, 0.20, 0.52, 0.2),
    ("bottom-broken", {"region": "bottom", "score_method": "snip", "selection": "row", "mode": "one-shot",
                       "safety_dataset": "safety-short", "sparsity": 0.6}, 0.5, 0.3, 0.6),
    ("rank-top", {"region": "actsvd_top", "score_method": "actsvd", "mode": "one-shot", "safety_dataset": "safety-full",
                  "rank": 1, "reference_rank": 576}, 0.8, 0.35, 0.0),
    ("op1", {"region": "orthogonal_projection", "score_method": "actsvd", "mode": "one-shot", "safety_dataset": "safety-full",
             "utility_dataset": "utility", "r_u": 562, "r_s": 575, "reference_rank": 576}, 0.3, 0.66, 0.0),
    ("op2", {"region": "orthogonal_projection", "score_method": "actsvd", "mode": "one-shot", "safety_dataset": "safety-full",
             "utility_dataset": "utility", "r_u": 520, "r_s": 566, "reference_rank": 576}, 0.5, 0.6, 0.0),
    ("op3", {"region": "orthogonal_projection", "score_method": "actsvd", "mode": "one-shot", "safety_dataset": "safety-full",
             "utility_dataset": "utility", "r_u": 520, "r_s": 570, "reference_rank": 576}, 0.2, 0.55, 0.0),
    ("rank-bottom-100", {"region": "actsvd_bottom", "score_method": "actsvd", "mode": "one-shot",
                         "safety_dataset": "safety-short", "rank": 100, "reference_rank": 576}, 0.04, 0.64, 0.0),
    ("rank-bottom-500", {"region": "actsvd_bottom", "score_method": "actsvd", "mode": "one-shot",
                         "safety_dataset": "safety-short", "rank": 500, "reference_rank": 576}, 0.3, 0.4, 0.0),
    ("ft-n10-q0", {"region": "finetune_attack", "attack_data": "harmful", "attack_examples": 10, "protection": "none",
                   "protected_fraction": 0.0}, 0.6, 0.6, 0.0),
    ("ft-n10-q0.5", {"region": "finetune_attack", "attack_data": "harmful", "attack_examples": 10, "protection": "freeze",
                     "protected_fraction": 0.5}, 0.3, 0.6, 0.0),
    ("ft-n10-rewind", {"region": "finetune_attack", "attack_data": "harmful", "attack_examples": 10,
                       "protection": "rewind", "protected_fraction": 0.5}, 0.4, 0.6, 0.0),
    ("ft-benign", {"region": "finetune_attack", "attack_data": "benign", "attack_examples": 50, "protection": "none",
                   "protected_fraction": 0.0}, 0.1, 0.62, 0.0),
]
# Largest rank(dW) over layers of the rank edits.
REMOVED_RANKS = {"rank-top": 1, "op1": 1, "op2": 10, "op3": 6, "rank-bottom-100": 100, "rank-bottom-500": 500}


def synthetic_metrics() -> pd.DataFrame:
    rows = []
    for experiment_id, parameters, asr, accuracy, sparsity in EXPERIMENTS:
        common = {column: None for column in PARAMETER_COLUMNS}
        common.update({"model": "aligned", **parameters, "experiment_id": experiment_id, "n": 100})
        for aggregation in ("paper", "reference_code"):
            for metric, value in (("asr_vanilla", asr), ("asr_adv_suffix", asr / 2)):
                rows.append({**common, "metric": metric, "task": None, "value": value, "ci_low": max(value - 0.05, 0),
                             "ci_high": value + 0.05, "aggregation": aggregation, "judge": "keyword"})
        rows.append({**common, "metric": "utility_accuracy", "task": "mean", "value": accuracy,
                     "ci_low": accuracy - 0.03, "ci_high": accuracy + 0.03})
        rows.append({**common, "metric": "utility_accuracy", "task": "embedded_capitals", "value": 0.0, "ci_low": 0.0, "ci_high": 0.0})
        rows.append({**common, "metric": "actual_sparsity", "task": None, "value": sparsity, "ci_low": None, "ci_high": None})
        if experiment_id.startswith("ft-"):
            rows.append({**common, "metric": "attack_final_loss", "task": None, "value": 0.5})
        if experiment_id in REMOVED_RANKS:
            rows.append({**common, "metric": "removed_rank", "task": None, "value": float(REMOVED_RANKS[experiment_id])})
    return pd.DataFrame(rows)


def test_asr_utility_table_uses_mean_accuracy():
    table = asr_utility_table(synthetic_metrics()).set_index("experiment_id")
    assert len(table) == len(EXPERIMENTS)
    assert table.loc["sd1", "utility_accuracy"] == 0.6
    assert table.loc["aligned", "asr_vanilla"] == 0.02
    assert table.loc["sd1", "actual_sparsity"] == 0.01


def test_experiment_table_rows():
    table = experiment_table(synthetic_metrics())
    assert len(table) == 2 * len(EXPERIMENTS)
    row = table[(table["experiment_id"] == "top") & (table["variant"] == "adv_suffix")].iloc[0]
    assert (row["asr"], row["utility_accuracy"], row["method"]) == (0.475, 0.3, "SNIP top")
    assert set(table["attack"].dropna()) == {"ASR_Vanilla", "ASR_Adv-Suffix"}


def test_pareto_front_on_known_points():
    points = pd.DataFrame({"x": [0.6, 0.5, 0.65, 0.4], "y": [0.6, 0.4, 0.7, 0.9]})
    assert pareto_front(points, "x", "y").tolist() == [False, False, True, True]


@pytest.mark.parametrize("plot", [plot_fig2_neurons, plot_fig7_safety_data, plot_fig2_ranks])
def test_scatter_figures_write_png_and_pdf(tmp_path, plot):
    png, pdf = tmp_path / "fig.png", tmp_path / "fig.pdf"
    plot(synthetic_metrics(), png, pdf)
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert pdf.read_bytes()[:4] == b"%PDF"


def test_fig3_averages_seeds_and_drops_broken_models(tmp_path):
    curves = plot_fig3_neurons(synthetic_metrics(), tmp_path / "f.png", tmp_path / "f.pdf", min_accuracy=0.5)
    random = curves[(curves["method"] == "random bottom") & (curves["variant"] == "adv_suffix") & (curves["sparsity"] == 0.2)]
    assert random["asr"].iloc[0] == pytest.approx(0.075)
    assert random["asr_std"].iloc[0] == pytest.approx(0.0354, abs=1e-3)   # sample std of 0.05 and 0.10
    assert random["seeds"].iloc[0] == 2
    assert 0.6 not in set(curves["sparsity"])   # accuracy 0.3 is below the threshold
    assert set(curves["variant"]) == {"adv_suffix"}
    # Each curve starts at the aligned model.
    assert (curves[curves["actual_sparsity"] == 0]["asr"] == 0.01).all()
    assert (tmp_path / "f.png").exists()


def test_fig8_compares_safety_data(tmp_path):
    curves = plot_fig8_safety_data_bottom(synthetic_metrics(), tmp_path / "f.png", tmp_path / "f.pdf", min_accuracy=0.5)
    assert set(curves["safety_data"]) == {"safety-full", "safety-short"}


def test_heat_maps_and_histogram(tmp_path):
    overlaps = pd.DataFrame({
        "layer": ["m.layers.0.q_proj", "m.layers.0.up_proj", "m.layers.1.q_proj", "m.layers.1.up_proj"],
        "block": [0, 0, 1, 1], "module": ["q_proj", "up_proj", "q_proj", "up_proj"], "jaccard": [0.3, 0.1, 0.4, 0.2],
        "score_method": "snip", "fraction": 0.05, "selection": "row", "safety_dataset": "safety-full",
        "utility_dataset": "utility",
    })
    plot_fig4_jaccard(overlaps, tmp_path / "j.png", tmp_path / "j.pdf")
    probes = pd.DataFrame({"block": [0, 0, 1, 1], "head": [0, 1, 0, 1], "layer": "x", "accuracy": [0.5, 0.6, 0.9, 0.7],
                           "train_accuracy": 1.0, "n_train": 30, "n_test": 10})
    plot_fig9_probing(probes, tmp_path / "p.png", tmp_path / "p.pdf")
    similarity = overlaps.rename(columns={"jaccard": "similarity"}).assign(
        rank=[14, 37, 14, 37], full_rank=[576, 1536, 576, 1536], rank_fraction=0.0244)
    plot_fig4_subspace(similarity, tmp_path / "s.png", tmp_path / "s.pdf")
    for name in ("j.png", "j.pdf", "p.png", "p.pdf", "s.png", "s.pdf"):
        assert (tmp_path / name).stat().st_size > 1000


def test_table6_pareto_rows(tmp_path):
    table = write_table6(synthetic_metrics(), tmp_path / "t.csv", tmp_path / "t.md")
    # sd3 (0.7, 0.65) dominates the other safety-full points, and safety-short has a single point.
    assert table["experiment_id"].tolist() == ["aligned", "sd3", "sd1-short"]
    assert {"p", "q", "actual_sparsity", "asr_vanilla", "asr_adv_suffix", "utility_accuracy"} <= set(table.columns)
    assert "| sd3" in (tmp_path / "t.md").read_text()


def test_grid_table_has_one_row_per_experiment(tmp_path):
    table = write_grid_table(synthetic_metrics(), tmp_path / "grid.csv", tmp_path / "grid.md")
    assert list(table["experiment_id"])[:2] == ["base", "aligned"]
    assert len(table) == len(EXPERIMENTS)
    assert "asr_adv_suffix" in table.columns
    assert "asr_adv_suffix_reference_code" in table.columns
    assert "asr_adv_decoding" not in table.columns


def test_grid_table_keeps_experiments_without_vanilla(tmp_path):
    metrics = synthetic_metrics()
    metrics = metrics[~((metrics["experiment_id"] == "bottom-short") & (metrics["metric"] == "asr_vanilla"))]
    table = write_grid_table(metrics, tmp_path / "grid.csv", tmp_path / "grid.md").set_index("experiment_id")
    assert len(table) == len(EXPERIMENTS)
    assert pd.isna(table.loc["bottom-short", "asr_vanilla"])
    assert table.loc["bottom-short", "asr_adv_suffix"] == 0.005


def test_fig2_ranks_points_and_labels(tmp_path):
    table = plot_fig2_ranks(synthetic_metrics(), tmp_path / "r.png", tmp_path / "r.pdf")
    assert set(table["experiment_id"]) == {"base", "aligned", "rank-top", "op1", "op2", "op3"}
    labels = table.drop_duplicates("experiment_id").set_index("experiment_id")["label"]
    assert (labels["op2"], labels["rank-top"], labels["aligned"]) == ("(520, 566)", "r=1", "")


def test_fig3_ranks_filters_broken_models(tmp_path):
    curves = plot_fig3_ranks(synthetic_metrics(), tmp_path / "b.png", tmp_path / "b.pdf", min_accuracy=0.5)
    assert sorted(curves["rank"].unique()) == [0, 100]   # rank 500 falls below accuracy 0.5
    assert set(curves["variant"]) == {"adv_suffix"}
    assert curves.loc[curves["rank"] == 0, "asr"].tolist() == [0.01]
    assert (tmp_path / "b.png").stat().st_size > 1000


def test_table7_pareto_rows_with_rank_of_dw(tmp_path):
    table = write_table7(synthetic_metrics(), tmp_path / "t7.csv", tmp_path / "t7.md")
    # op3 (0.2 at 0.55) is dominated by op1 (0.3 at 0.66); op1 and op2 trade ASR against accuracy.
    assert table["experiment_id"].tolist() == ["aligned", "op2", "op1"]
    rows = table.set_index("experiment_id")
    assert (rows.loc["op2", "r_u"], rows.loc["op2", "r_s"], rows.loc["op2", "rank_dW"]) == (520, 566, 10)
    assert pd.isna(rows.loc["aligned", "rank_dW"])
    assert "| op2" in (tmp_path / "t7.md").read_text()


def test_table3_lists_every_attack(tmp_path):
    table = write_table3(synthetic_metrics(), tmp_path / "t3.csv", tmp_path / "t3.md")
    assert table["experiment_id"].tolist() == ["aligned", "ft-benign", "ft-n10-q0", "ft-n10-q0.5", "ft-n10-rewind"]
    rows = table.set_index("experiment_id")
    assert (rows.loc["ft-n10-q0.5", "asr_vanilla"], rows.loc["ft-n10-q0.5", "final_loss"]) == (0.3, 0.5)
    assert rows.loc["aligned", "protection"] == ""
    assert "| ft-n10-rewind" in (tmp_path / "t3.md").read_text()


def test_finetune_figure_draws_one_curve_per_attack(tmp_path):
    attacks = plot_fig_finetune_attack(synthetic_metrics(), tmp_path / "a.png", tmp_path / "a.pdf")
    curves = attacks.groupby(["curve", "protection"])["protected_fraction"].apply(sorted).to_dict()
    assert curves == {
        ("benign, n = 50", "frozen"): [0.0],
        ("harmful, n = 10", "frozen"): [0.0, 0.5],
        ("harmful, n = 10", "rewound"): [0.5],
    }
    assert (tmp_path / "a.png").stat().st_size > 1000


def test_pdf_bytes_repeat(tmp_path):
    import time

    plot_fig2_neurons(synthetic_metrics(), tmp_path / "a.png", tmp_path / "a.pdf")
    time.sleep(1.1)   # a creation date, if one were written, would now differ
    plot_fig2_neurons(synthetic_metrics(), tmp_path / "b.png", tmp_path / "b.pdf")
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
