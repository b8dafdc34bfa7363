"""Runtime-agnostic OCI runtime-spec conformance suite.

Run from the repository root:  python -m conformance --runtime PATH [--runtime PATH ...] [-k FILTER]
"""
