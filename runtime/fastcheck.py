"""Fast schema pre-check: True only when the config is certainly valid against the schemas.

When it returns False the full jsonschema validator runs and produces the error message.

A small draft-04 interpreter with the verdict of jsonschema's Draft4Validator: each schema node is
compiled into a closure on first use and $refs are resolved (and their files read from
oci-schemas/) only when an instance actually reaches them, so a Linux config never reads the
Windows or Solaris schemas and a check costs well under a millisecond. Anything it cannot decide
exactly (an unresolvable $ref, a draft-04 `id`, an unknown type name) makes it answer False, and
the slow path decides.
"""
import os

from .hotpath import json_loads

from .schemas import SCHEMA_DIR
ROOT = "config-schema.json"


class Unsupported(Exception):
    """The schema needs something this checker does not decide; defer to jsonschema."""


_docs = {}      # file name -> parsed schema document
_compiled = {}  # id(schema node) -> checker; the documents keep the nodes alive
_root = None


def _doc(name):
    d = _docs.get(name)
    if d is None:
        # only plain sibling file names: anything else (paths, URLs) is left to jsonschema
        if not name or "/" in name or ":" in name or "\\" in name:
            raise Unsupported(name)
        try:
            with open(os.path.join(SCHEMA_DIR, name), "rb") as f:
                d = json_loads(f.read())
        except (OSError, ValueError):
            raise Unsupported(name) from None
        _docs[name] = d
    return d


def _unquote(s):
    if "%" not in s:
        return s
    from urllib.parse import unquote
    return unquote(s)


def _resolve(base, ref):
    """(file, node) that REF names, relative to file BASE (referencing's draft-04 semantics)."""
    url, _, frag = ref.partition("#")
    name = url or base
    node = _doc(name)
    if not frag:
        return name, node
    frag = _unquote(frag)
    if not frag.startswith("/"):
        raise Unsupported(ref)  # an anchor (draft-04 "id": "#x"), or a malformed pointer
    for seg in frag.split("/")[1:]:
        try:
            if isinstance(node, list):
                node = node[int(seg)]
            else:
                node = node[seg.replace("~1", "/").replace("~0", "~")]
        except (KeyError, IndexError, ValueError, TypeError):
            raise Unsupported(ref) from None
    return name, node


# -- draft-04 types (jsonschema's draft4_type_checker: bool is neither integer nor number,
# and 1.0 is not an integer)

def _is_integer(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_TYPES = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
}


def _type_check(t):
    if isinstance(t, str):
        t = [t]
    fns = []
    for name in t:
        if not isinstance(name, str) or name not in _TYPES:
            raise Unsupported(f"type {name!r}")
        fns.append(_TYPES[name])
    if len(fns) == 1:
        return fns[0]
    return lambda x: any(f(x) for f in fns)


def _equal(a, b):
    """jsonschema._utils.equal: JSON equality where True != 1 and False != 0."""
    if a is b:
        return True
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(i, j) for i, j in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) == len(b) and all(k in b and _equal(v, b[k]) for k, v in a.items())
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


# keywords that assert nothing (jsonschema ignores every keyword it does not know, too)
_validating = {
    "$ref", "additionalItems", "additionalProperties", "allOf", "anyOf", "dependencies", "enum",
    "format", "items", "maxItems", "maxLength", "maxProperties", "maximum", "minItems", "minLength",
    "minProperties", "minimum", "multipleOf", "not", "oneOf", "pattern", "patternProperties",
    "properties", "required", "type", "uniqueItems",
}


def _lazy(base, node):
    """A checker for NODE that compiles it on its first call."""
    fn = _compiled.get(id(node))
    if fn is not None:
        return fn
    real = None

    def check(x):
        nonlocal real
        if real is None:
            real = _compile(base, node)
        return real(x)
    return check


def _lazy_ref(base, ref):
    real = None

    def check(x):
        nonlocal real
        if real is None:
            real = _compile(*_resolve(base, ref))
        return real(x)
    return check


_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _anchored_class(prefix, chars):
    """'^PREFIX[CHARS]+$' without re (hot path: see runtime/hotpath.py): a
    string matched here matches the pattern; the rest (a trailing newline, which `$` also
    accepts) goes to re."""
    def match(s):
        return len(s) > len(prefix) and s.startswith(prefix) and chars.issuperset(s[len(prefix):])
    return match


# patterns of the OCI schemas that common configs reach
_KNOWN = {"^RLIMIT_[A-Z]+$": _anchored_class("RLIMIT_", _UPPER),
          "^[cbup]$": ("c", "b", "u", "p").__contains__,  # linux.devices[].type
          # annotations and linux.sysctl keys (defs.json mapStringString), which every engine
          # sends: re imported for this one cost create 5-9 ms (benchmarks/PROFILE.md)
          ".{1,}": lambda s: bool(s.replace("\n", ""))}


def _search(pattern):
    """re.search semantics as jsonschema's `pattern`; compiled on first use."""
    rx = None
    fast = _KNOWN.get(pattern)

    def match(s):
        nonlocal rx
        if fast is not None and fast(s):
            return True
        if rx is None:
            import re
            try:
                rx = re.compile(pattern)
            except re.error:
                raise Unsupported(pattern) from None
        return rx.search(s) is not None
    return match


def _compile(base, node):
    fn = _compiled.get(id(node))
    if fn is not None:
        return fn
    if not isinstance(node, dict):
        raise Unsupported(repr(node))  # boolean schemas are not draft-04
    fn = _build(base, node)
    _compiled[id(node)] = fn
    return fn


def _build(base, s):
    ref = s.get("$ref")
    if ref is not None:
        # draft-04: $ref ignores its siblings
        if not isinstance(ref, str):
            raise Unsupported("$ref")
        return _lazy_ref(base, ref)
    if isinstance(s.get("id"), str):
        raise Unsupported("id")  # would change the base URI of the refs below it

    t = s.get("type")
    tcheck = _type_check(t) if t is not None else None
    fused = _fused(s, t, tcheck)
    if fused is not None:
        return fused
    checks = []  # each: instance -> bool; applies its own type guard like jsonschema does
    if tcheck is not None:
        checks.append(tcheck)
    # one builder per keyword family, in this order (the order the checks run in)
    _enum(s, checks)
    _objects(base, s, checks)
    _arrays(base, s, checks)
    _strings(s, checks)
    _numbers(s, checks)
    _combinators(base, s, checks)
    return _conjunction(checks)


def _fused(s, t, tcheck):
    """The shapes of nearly every node of the OCI schemas get one fused closure (None: not one)."""
    if t == "integer" and set(s) - {"description"} <= {"type", "minimum", "maximum"} \
            and not s.get("exclusiveMinimum") and not s.get("exclusiveMaximum"):
        lo, hi = s.get("minimum"), s.get("maximum")
        if lo is not None and hi is not None and _is_number(lo) and _is_number(hi):
            return lambda x: isinstance(x, int) and not isinstance(x, bool) and lo <= x <= hi
    if t is not None and set(s) <= {"type", "description"}:
        return tcheck
    return None


def _conjunction(checks):
    if not checks:
        return lambda x: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda x: a(x) and b(x)
    return lambda x: all(c(x) for c in checks)


def _enum(s, checks):
    if "enum" not in s:
        return
    enum = s["enum"]
    if not isinstance(enum, list):
        raise Unsupported("enum")
    if all(isinstance(e, str) for e in enum):
        es = frozenset(enum)
        checks.append(lambda x: isinstance(x, str) and x in es)
    else:
        checks.append(lambda x: any(_equal(e, x) for e in enum))


# -- objects

def _objects(base, s, checks):
    props = s.get("properties")
    pprops = s.get("patternProperties")
    addl = s.get("additionalProperties")
    if props is not None or pprops is not None or addl is not None:
        checks.append(_properties(base, props, pprops, addl))
    req = s.get("required")
    if req is not None:
        if not isinstance(req, list):
            raise Unsupported("required")
        checks.append(lambda x: not isinstance(x, dict) or all(k in x for k in req))
    if "minProperties" in s:
        least = s["minProperties"]
        checks.append(lambda x: not isinstance(x, dict) or len(x) >= least)
    if "maxProperties" in s:
        most = s["maxProperties"]
        checks.append(lambda x: not isinstance(x, dict) or len(x) <= most)
    deps = s.get("dependencies")
    if deps is not None:
        checks.append(_dependencies(base, deps))


def _properties(base, props, pprops, addl):
    """properties, patternProperties and additionalProperties: one pass over the keys."""
    pd = {k: _lazy(base, v) for k, v in (props or {}).items()}
    pp = [(_search(p), _lazy(base, v)) for p, v in (pprops or {}).items()]
    # jsonschema joins the patterns with "|" to find the additional properties
    joined = _search("|".join(pprops)) if pprops else None
    if addl is None or addl is True:
        addl_fn = None
    elif addl is False:
        addl_fn = False
    elif isinstance(addl, dict):
        addl_fn = _lazy(base, addl)
    else:
        raise Unsupported("additionalProperties")

    def objects(x):
        if not isinstance(x, dict):
            return True
        for k, v in x.items():
            f = pd.get(k)
            if f is not None and not f(v):
                return False
            for m, g in pp:
                if m(k) and not g(v):
                    return False
            if addl_fn is not None and f is None and not (joined is not None and joined(k)):
                if addl_fn is False or not addl_fn(v):
                    return False
        return True
    return objects


def _dependencies(base, deps):
    dl = []
    for k, d in deps.items():
        if isinstance(d, dict):
            dl.append((k, _lazy(base, d), None))
        elif isinstance(d, list):
            dl.append((k, None, d))
        else:
            raise Unsupported("dependencies")

    def dependencies(x):
        if not isinstance(x, dict):
            return True
        for k, f, names in dl:
            if k in x:
                if f is not None and not f(x):
                    return False
                if names is not None and not all(n in x for n in names):
                    return False
        return True
    return dependencies


# -- arrays

def _arrays(base, s, checks):
    items = s.get("items")
    if isinstance(items, dict):
        f_item = _lazy(base, items)
        checks.append(lambda x: not isinstance(x, list) or all(f_item(i) for i in x))
    elif isinstance(items, list):
        _tuple_items(base, s, items, checks)
    elif items is not None:
        raise Unsupported("items")
    if "minItems" in s:
        least = s["minItems"]
        checks.append(lambda x: not isinstance(x, list) or len(x) >= least)
    if "maxItems" in s:
        most = s["maxItems"]
        checks.append(lambda x: not isinstance(x, list) or len(x) <= most)
    if s.get("uniqueItems"):
        def unique(x):
            if not isinstance(x, list):
                return True
            return not any(_equal(a, b) for i, a in enumerate(x) for b in x[i + 1:])
        checks.append(unique)


def _tuple_items(base, s, items, checks):
    """items as an array of schemas, and additionalItems for the elements past them."""
    tup = [_lazy(base, i) for i in items]
    checks.append(lambda x: not isinstance(x, list) or all(f(i) for f, i in zip(tup, x)))
    ai = s.get("additionalItems")
    if isinstance(ai, dict):
        f_more = _lazy(base, ai)
        checks.append(lambda x: not isinstance(x, list) or all(f_more(i) for i in x[len(tup):]))
    elif ai is False:
        checks.append(lambda x: not isinstance(x, list) or len(x) <= len(tup))
    elif ai is not None and ai is not True:
        raise Unsupported("additionalItems")


# -- strings

def _strings(s, checks):
    if "pattern" in s:
        m = _search(s["pattern"])
        checks.append(lambda x: not isinstance(x, str) or m(x))
    if "minLength" in s:
        least = s["minLength"]
        checks.append(lambda x: not isinstance(x, str) or len(x) >= least)
    if "maxLength" in s:
        most = s["maxLength"]
        checks.append(lambda x: not isinstance(x, str) or len(x) <= most)


# -- numbers (draft-04: exclusiveMinimum/Maximum are booleans beside minimum/maximum)

def _numbers(s, checks):
    if "minimum" in s:
        lo = s["minimum"]
        if s.get("exclusiveMinimum", False):
            checks.append(lambda x: not _is_number(x) or not x <= lo)
        else:
            checks.append(lambda x: not _is_number(x) or not x < lo)
    if "maximum" in s:
        hi = s["maximum"]
        if s.get("exclusiveMaximum", False):
            checks.append(lambda x: not _is_number(x) or not x >= hi)
        else:
            checks.append(lambda x: not _is_number(x) or not x > hi)
    if "multipleOf" in s:
        checks.append(_multiple_of(s["multipleOf"]))


# -- combinators

def _combinators(base, s, checks):
    for key in ("allOf", "anyOf", "oneOf"):
        subs = s.get(key)
        if subs is None:
            continue
        if not isinstance(subs, list):
            raise Unsupported(key)
        fs = [_lazy(base, sub) for sub in subs]
        if key == "allOf":
            checks.append(lambda x, fs=fs: all(f(x) for f in fs))
        elif key == "anyOf":
            checks.append(lambda x, fs=fs: any(f(x) for f in fs))
        else:
            checks.append(lambda x, fs=fs: sum(1 for f in fs if f(x)) == 1)
    if "not" in s:
        f_not = _lazy(base, s["not"])
        checks.append(lambda x: not f_not(x))


def _multiple_of(db):
    """jsonschema's multipleOf, including its float handling."""
    def check(x):
        if not _is_number(x):
            return True
        if isinstance(db, float):
            q = x / db
            try:
                return int(q) == q
            except OverflowError:
                return False  # jsonschema then tries a Fraction; let it decide
        return not (x % db)
    return check


def ok(cfg):
    """True only when CFG is valid against config-schema.json with all its $refs."""
    global _root
    try:
        if _root is None:
            _root = _compile(ROOT, _doc(ROOT))
        return _root(cfg) is True
    except Exception:  # Unsupported, or anything odd in the input: the slow path decides
        return False
