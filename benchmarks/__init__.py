"""`make bench`: throughput figures, printed. Not tests: nothing here asserts."""
