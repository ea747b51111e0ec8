"""Benchmarks: a deterministic data generator and the measurements behind `make bench`."""
