"""Loaders: parse sources, validate rows and write them to the raw schema (sources/ parse, validate.py checks,
pipeline.py writes through sinks/). schema.py declares the raw tables."""
