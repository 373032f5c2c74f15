"""rvlf's benchmarks (`make bench`): `run.py` is the entry point, `harness.py` the shared timing, machine
facts and report, `items/` one module per benchmark item. See benchmarks/README.md."""
