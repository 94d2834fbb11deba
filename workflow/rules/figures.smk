def figure_rule_outputs(name, category="Neuron-level study"):
    """PNG (in the HTML report, with its caption file) and PDF of one figure."""
    return {
        "png": report(f"results/figures/{name}.png", caption=f"../report/{name}.rst", category=category),
        "pdf": f"results/figures/{name}.pdf",
    }


rule plot_fig2_neurons:
    output:
        **figure_rule_outputs("fig2_neurons"),
    input:
        code=code("figures"),
        metrics="results/metrics.parquet",
    resources:
        **job_resources("plot_fig2_neurons"),
    log:
        "logs/plot_fig2_neurons.log",
    script:
        "../scripts/run_step.py"


rule plot_fig3_neurons:
    output:
        **figure_rule_outputs("fig3_neurons"),
    input:
        code=code("figures"),
        metrics="results/metrics.parquet",
    params:
        settings=config["figures"],
    resources:
        **job_resources("plot_fig3_neurons"),
    log:
        "logs/plot_fig3_neurons.log",
    script:
        "../scripts/run_step.py"


rule plot_fig7_safety_data:
    output:
        **figure_rule_outputs("fig7_safety_data"),
    input:
        code=code("figures"),
        metrics="results/metrics.parquet",
    resources:
        **job_resources("plot_fig7_safety_data"),
    log:
        "logs/plot_fig7_safety_data.log",
    script:
        "../scripts/run_step.py"


rule plot_fig8_safety_data_bottom:
    output:
        **figure_rule_outputs("fig8_safety_data_bottom"),
    input:
        code=code("figures"),
        metrics="results/metrics.parquet",
    params:
        settings=config["figures"],
    resources:
        **job_resources("plot_fig8_safety_data_bottom"),
    log:
        "logs/plot_fig8_safety_data_bottom.log",
    script:
        "../scripts/run_step.py"


rule plot_fig4_jaccard:
    output:
        **figure_rule_outputs("fig4_jaccard"),
    input:
        code=code("figures"),
        overlaps=OVERLAPS,
    resources:
        **job_resources("plot_fig4_jaccard"),
    log:
        "logs/plot_fig4_jaccard.log",
    script:
        "../scripts/run_step.py"


rule plot_fig4_subspace:
    output:
        **figure_rule_outputs("fig4_subspace", "Rank-level study"),
    input:
        code=code("figures"),
        similarity=SUBSPACES,
    resources:
        **job_resources("plot_fig4_subspace"),
    log:
        "logs/plot_fig4_subspace.log",
    script:
        "../scripts/run_step.py"


rule plot_fig9_probing:
    output:
        **figure_rule_outputs("fig9_probing"),
    input:
        code=code("figures"),
        probes=PROBES,
    resources:
        **job_resources("plot_fig9_probing"),
    log:
        "logs/plot_fig9_probing.log",
    script:
        "../scripts/run_step.py"


rule write_table6:
    output:
        csv=report("results/tables/table6.csv", caption="../report/table6.rst", category="Neuron-level study"),
        markdown="results/tables/table6.md",
    input:
        code=code("figures"),
        metrics="results/metrics.parquet",
    resources:
        **job_resources("write_table6"),
    log:
        "logs/write_table6.log",
    script:
        "../scripts/run_step.py"


rule write_grid_table:
    output:
        csv="results/tables/set_difference_grid.csv",
        markdown="results/tables/set_difference_grid.md",
    input:
        code=code("figures"),
        metrics="results/metrics.parquet",
    resources:
        **job_resources("write_grid_table"),
    log:
        "logs/write_grid_table.log",
    script:
        "../scripts/run_step.py"


rule plot_fig2_ranks:
    output:
        **figure_rule_outputs("fig2_ranks", "Rank-level study"),
    input:
        code=code("figures"),
        metrics="results/metrics.parquet",
    resources:
        **job_resources("plot_fig2_ranks"),
    log:
        "logs/plot_fig2_ranks.log",
    script:
        "../scripts/run_step.py"


rule plot_fig3_ranks:
    output:
        **figure_rule_outputs("fig3_ranks", "Rank-level study"),
    input:
        code=code("figures"),
        metrics="results/metrics.parquet",
    params:
        settings=config["figures"],
    resources:
        **job_resources("plot_fig3_ranks"),
    log:
        "logs/plot_fig3_ranks.log",
    script:
        "../scripts/run_step.py"


rule write_table7:
    output:
        csv=report("results/tables/table7.csv", caption="../report/table7.rst", category="Rank-level study"),
        markdown="results/tables/table7.md",
    input:
        code=code("figures"),
        metrics="results/metrics.parquet",
    resources:
        **job_resources("write_table7"),
    log:
        "logs/write_table7.log",
    script:
        "../scripts/run_step.py"


rule plot_fig_finetune_attack:
    output:
        **figure_rule_outputs("fig_finetune_attack", "Fine-tuning attacks"),
    input:
        code=code("figures"),
        metrics="results/metrics.parquet",
    resources:
        **job_resources("plot_fig_finetune_attack"),
    log:
        "logs/plot_fig_finetune_attack.log",
    script:
        "../scripts/run_step.py"


rule write_table3:
    output:
        csv=report("results/tables/table3.csv", caption="../report/table3.rst", category="Fine-tuning attacks"),
        markdown="results/tables/table3.md",
    input:
        code=code("figures"),
        metrics="results/metrics.parquet",
    resources:
        **job_resources("write_table3"),
    log:
        "logs/write_table3.log",
    script:
        "../scripts/run_step.py"
