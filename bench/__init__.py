"""On-demand benchmarks; run them as modules, e.g. `python -m bench.backup_bench`."""
