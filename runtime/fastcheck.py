"""Fast schema pre-check: True only when the config is certainly valid against the schemas.

When it returns False the full jsonschema validator runs and produces the error message.
"""


def ok(cfg):
    return False
