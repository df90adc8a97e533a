"""`make bench-scale`: realistic data at the seeds' scale (generate.py) and the benchmark (run.py)."""
