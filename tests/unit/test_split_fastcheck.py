"""runtime.fastcheck's keyword builders one family at a time, against jsonschema's Draft4Validator
on small hand-written schemas (the OCI schemas exercise only some keywords; tests/test_fastcheck.py
covers those on whole configs). fastcheck may defer (False) where jsonschema says valid only when it
raises Unsupported; otherwise the verdicts must be equal."""
import pytest
from jsonschema import Draft4Validator

from runtime import fastcheck

INSTANCES = [
    None, True, False, 0, 1, -1, 2, 3, 7, 1.0, 1.5, 2.5, 10, 2 ** 64, "", "a", "ab", "abc", "abcd",
    "RLIMIT_NOFILE", "RLIMIT_", "c", "x", [], [1], [1, 2], [1, 2, 3], [1, 1], [1, True], ["a", "b"],
    [1, "a", None], {}, {"a": 1}, {"a": "x"}, {"a": 1, "b": 2}, {"b": 2}, {"x1": 1}, {"x1": "s"},
    {"a": 1, "b": 2, "c": 3}, {"c": None},
]

SCHEMAS = [
    # fused shapes
    {"type": "integer", "minimum": 0, "maximum": 2},
    {"type": "integer", "minimum": 0, "maximum": 2, "exclusiveMaximum": True},
    {"type": ["string", "null"]},
    {"type": "number", "description": "d"},
    # enum
    {"enum": ["a", "c"]},
    {"enum": [1, True, None, [1]]},
    # objects
    {"properties": {"a": {"type": "integer"}}},
    {"properties": {"a": {"type": "integer"}}, "additionalProperties": False},
    {"patternProperties": {"^x[0-9]$": {"type": "string"}}, "additionalProperties": {"type": "integer"}},
    {"patternProperties": {"^x": {"type": "integer"}, "^a$": {}}, "additionalProperties": False},
    {"required": ["a", "b"]},
    {"minProperties": 2},
    {"maxProperties": 1},
    {"minProperties": 1, "maxProperties": 2},
    {"dependencies": {"a": ["b"]}},
    {"dependencies": {"a": {"required": ["c"]}}},
    # arrays
    {"items": {"type": "integer"}},
    {"items": [{"type": "integer"}, {"type": "string"}]},
    {"items": [{"type": "integer"}], "additionalItems": False},
    {"items": [{"type": "integer"}], "additionalItems": {"type": "string"}},
    {"minItems": 2},
    {"maxItems": 2},
    {"minItems": 2, "maxItems": 2},
    {"minItems": 1, "maxItems": 2, "minLength": 3, "maxLength": 3, "minProperties": 2},
    {"uniqueItems": True},
    # strings
    {"pattern": "^RLIMIT_[A-Z]+$"},
    {"pattern": "^[cbup]$"},
    {"pattern": "b"},
    {"minLength": 2},
    {"maxLength": 2},
    {"minLength": 1, "maxLength": 3},
    # numbers
    {"minimum": 1},
    {"minimum": 1, "exclusiveMinimum": True},
    {"maximum": 2},
    {"maximum": 2, "exclusiveMaximum": True},
    {"multipleOf": 2},
    {"multipleOf": 0.5},
    # combinators
    {"allOf": [{"type": "integer"}, {"minimum": 1}]},
    {"anyOf": [{"type": "string"}, {"type": "null"}]},
    {"oneOf": [{"type": "integer"}, {"minimum": 2}]},
    {"not": {"type": "array"}},
    # several families on one node
    {"type": ["object", "array", "string"], "required": ["a"], "items": {"type": "integer"},
     "maxLength": 3, "enum": [{"a": 1}, [1, 2], "abc", "abcd"]},
]

# the compiled checkers are cached by id(node): keep every schema alive for the whole module
_KEEP = []


@pytest.mark.parametrize("schema", SCHEMAS, ids=[repr(s)[:60] for s in SCHEMAS])
def test_builder_agrees_with_jsonschema(schema):
    _KEEP.append(schema)
    check = fastcheck._compile("unit-test.json", schema)
    slow = Draft4Validator(schema)
    for x in INSTANCES:
        assert check(x) is slow.is_valid(x), (schema, x)


def test_each_min_max_keyword_keeps_its_own_bound():
    # two bounds on one node: each check compares against its own keyword's value
    schema = {"minItems": 1, "maxItems": 3, "minLength": 5, "maxLength": 6,
              "minProperties": 2, "maxProperties": 2}
    _KEEP.append(schema)
    check = fastcheck._compile("unit-test.json", schema)
    assert check([1]) and check([1, 2, 3]) and not check([]) and not check([1, 2, 3, 4])
    assert check("abcde") and not check("abcd") and not check("abcdefg")
    assert check({"a": 1, "b": 2}) and not check({"a": 1})


@pytest.mark.parametrize("schema, what", [
    ({"$ref": 1}, "$ref"),
    ({"id": "x.json", "type": "string"}, "id"),
    ({"type": "float"}, "type 'float'"),
    ({"enum": "a"}, "enum"),
    ({"properties": {}, "additionalProperties": 1}, "additionalProperties"),
    ({"required": "a"}, "required"),
    ({"dependencies": {"a": "b"}}, "dependencies"),
    ({"items": 1}, "items"),
    ({"items": [], "additionalItems": 1}, "additionalItems"),
    ({"anyOf": {}}, "anyOf"),
    # the first unsupported keyword in build order is the one named
    ({"enum": "a", "required": "a", "items": 1, "oneOf": 1}, "enum"),
    ({"required": "a", "items": 1}, "required"),
    ({"items": 1, "allOf": 1}, "items"),
])
def test_unsupported_keyword_defers(schema, what):
    _KEEP.append(schema)
    with pytest.raises(fastcheck.Unsupported) as e:
        fastcheck._compile("unit-test.json", schema)
    assert str(e.value) == what


@pytest.mark.parametrize("pattern", sorted(fastcheck._KNOWN))
def test_known_patterns_agree_with_re(pattern):
    """The re-free matchers of the patterns common configs reach (fastcheck._KNOWN) say True only
    where re.search does (a False falls back to re, so only that matters: re's `$` also matches
    before a final newline, which the RLIMIT matcher leaves to re)."""
    import re
    words = ["", "\n", "\n\n", "a", "a\n", "\na", " ", "é", "c", "b", "u", "p", "cb", "C", "RLIMIT_",
             "RLIMIT_NOFILE", "RLIMIT_nofile", "XRLIMIT_A", "RLIMIT_A\n", "RLIMIT_A1", "io.k8s/x"]
    fast, rx = fastcheck._KNOWN[pattern], re.compile(pattern)
    for w in words:
        assert not fast(w) or rx.search(w) is not None, (pattern, w)


def test_annotations_and_sysctl_need_no_re():
    """Every engine sends annotations and often linux.sysctl (patternProperties ".{1,}"): the check
    of such a config imports no re (5-9 ms of create)."""
    import subprocess
    import sys
    code = ("import sys; from runtime import fastcheck, hotpath;"
            "c = hotpath.json_loads(open('bundles/busybox/config.json').read());"
            "c['annotations'] = {'io.kubernetes.cri.container-type': 'sandbox', 'x': ''};"
            "c['linux']['sysctl'] = {'net.ipv4.ip_forward': '1'};"
            "assert fastcheck.ok(c) is True; print('re' in sys.modules)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = ['.'] + {sys.path!r}; " + code],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
