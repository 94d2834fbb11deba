"""Figures are drawn from the metrics table alone."""

from __future__ import annotations

import pandas as pd

from safety_brittleness.figures import asr_utility_table, plot_asr_vs_utility, write_grid_table


def synthetic_metrics() -> pd.DataFrame:
    rows = []
    points = [("base", "base", "none", None, None, 0.9, 0.7), ("aligned", "aligned", "none", None, None, 0.02, 0.68),
              ("sd1", "aligned", "set_difference", 0.1, 0.01, 0.6, 0.6)]
    for experiment_id, model, region, p, q, asr, accuracy in points:
        common = {"experiment_id": experiment_id, "model": model, "region": region, "p": p, "q": q, "n": 100,
                  "score_method": "snip" if p else None, "selection": "row" if p else None,
                  "safety_dataset": "safety-full" if p else None, "utility_dataset": "utility" if p else None,
                  "mode": "one-shot" if p else None}
        for aggregation in ("paper", "reference_code"):
            rows.append({**common, "metric": "asr_vanilla", "task": None, "value": asr, "ci_low": asr - 0.05,
                         "ci_high": asr + 0.05, "aggregation": aggregation, "judge": "keyword"})
            rows.append({**common, "metric": "asr_adv_suffix", "task": None, "value": asr / 2, "ci_low": 0.0,
                         "ci_high": 1.0, "aggregation": aggregation})
        rows.append({**common, "metric": "utility_accuracy", "task": "mean", "value": accuracy, "ci_low": accuracy - 0.03, "ci_high": accuracy + 0.03})
        rows.append({**common, "metric": "utility_accuracy", "task": "embedded_capitals", "value": 0.0, "ci_low": 0.0, "ci_high": 0.0})
        rows.append({**common, "metric": "actual_sparsity", "task": None, "value": 0.01 if p else 0.0, "ci_low": None, "ci_high": None})
    return pd.DataFrame(rows)


def test_asr_utility_table_uses_mean_accuracy():
    table = asr_utility_table(synthetic_metrics()).set_index("experiment_id")
    assert len(table) == 3
    assert table.loc["sd1", "utility_accuracy"] == 0.6
    assert table.loc["aligned", "asr_vanilla"] == 0.02
    assert table.loc["sd1", "actual_sparsity"] == 0.01


def test_plot_writes_png_and_pdf(tmp_path):
    png = tmp_path / "fig.png"
    pdf = tmp_path / "fig.pdf"
    plot_asr_vs_utility(synthetic_metrics(), png, pdf)
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert pdf.read_bytes()[:4] == b"%PDF"


def test_grid_table_has_one_row_per_experiment(tmp_path):
    table = write_grid_table(synthetic_metrics(), tmp_path / "grid.csv", tmp_path / "grid.md")
    assert list(table["experiment_id"]) == ["base", "aligned", "sd1"]
    markdown = (tmp_path / "grid.md").read_text()
    assert "| experiment_id" in markdown
    assert "sd1" in markdown
    assert (tmp_path / "grid.csv").read_text().count("\n") == 4
    assert "asr_adv_suffix" in table.columns
    assert "asr_adv_suffix_reference_code" in table.columns
    assert "asr_adv_decoding" not in table.columns
