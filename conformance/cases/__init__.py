"""Importing this package registers every case (order = report order)."""
from . import lifecycle, hooks, process, mounts, namespaces, devices, cgroups, linux  # noqa: F401
