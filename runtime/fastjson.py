"""The JSON helpers under their first names, for the modules that still import them from here:
they live in runtime/hotpath.py (json_loads, json_dumps, json_dumps_indent); import them from there."""
from .hotpath import json_dumps as dumps, json_dumps_indent as dumps_indent, json_loads as loads  # noqa: F401
