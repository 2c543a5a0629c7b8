"""vsmmon's benchmarks: one module per measure, run by `python -m bench` (see BENCHMARKS.md)."""
