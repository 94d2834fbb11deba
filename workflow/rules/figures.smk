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
