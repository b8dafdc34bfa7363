"""Benchmarks for pyrunc against runc and crun: `python -m benchmarks --help`."""
