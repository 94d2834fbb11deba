rule plot_fig2_neurons:
    output:
        png="results/figures/fig2_neurons.png",
        pdf="results/figures/fig2_neurons.pdf",
    input:
        code=code("figures"),
        metrics="results/metrics.parquet",
    log:
        "logs/plot_fig2_neurons.log",
    script:
        "../scripts/run_step.py"


rule write_grid_table:
    output:
        csv="results/tables/set_difference_grid.csv",
        markdown="results/tables/set_difference_grid.md",
    input:
        code=code("figures"),
        metrics="results/metrics.parquet",
    log:
        "logs/write_grid_table.log",
    script:
        "../scripts/run_step.py"
