"""Reading and validating a bundle's config.json (config.md, config-linux.md).

Validation is two-staged: the JSON schemas of the runtime-spec (vendored in oci-schemas/), then the
semantic rules the schemas cannot express. Errors name the field as a JSON path.
"""
import os

from .hotpath import json_document
from .errors import Error, why

from .schemas import SCHEMA_DIR

NAMESPACES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")

MAX_CONFIG = 128 << 20  # runtime/state.py's MAX_STATE is twice this


def load(bundle):
    """Read, parse and validate BUNDLE/config.json; returns the config dict."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG + 1)  # bounded: its state (annotations...) must fit MAX_STATE
    except FileNotFoundError:
        raise Error(f"config.json: no such file in bundle {bundle}") from None
    except OSError as e:
        raise Error(f"config.json: cannot read {path}: {why(e)}") from None
    if len(raw) > MAX_CONFIG:
        raise Error(f"config.json: larger than {MAX_CONFIG >> 20} MiB")
    try:
        cfg = json_document(raw)  # no json: hot path, see runtime/hotpath.py
    except ValueError as e:  # UnicodeDecodeError included
        raise Error(f"config.json: invalid JSON: {e}") from None
    validate(cfg)
    return cfg


def json_path(parts):
    """['linux', 'namespaces', 0, 'type'] -> 'linux.namespaces[0].type'."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(root)"


_validator = None


def schema_validator():
    """The full jsonschema validator of config-schema.json (imported lazily: hot path, see runtime/hotpath.py)."""
    global _validator
    if _validator is None:
        import json
        import jsonschema
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4

        resources = []
        for name in os.listdir(SCHEMA_DIR):
            if name.endswith(".json"):
                with open(os.path.join(SCHEMA_DIR, name)) as f:
                    resources.append((name, Resource.from_contents(json.load(f), default_specification=DRAFT4)))
        registry = Registry().with_resources(resources)
        schema = registry.contents("config-schema.json")
        _validator = jsonschema.Draft4Validator(schema, registry=registry)
    return _validator


def schema_errors(cfg):
    """All schema violations as one-line messages, most specific first."""
    from jsonschema.exceptions import best_match

    v = schema_validator()
    try:
        errs = list(v.iter_errors(cfg))
    except Exception as e:  # noqa: BLE001 - e.g. an unresolvable $ref in the vendored schemas
        return [f"config.json: does not validate against the runtime-spec schema: {e}"]
    if not errs:
        return []
    e = best_match(errs)
    # descend into anyOf/oneOf to the error that names the deepest field
    while e.context:
        e = best_match(e.context)
    return [f"config.json: {json_path(e.absolute_path)}: {e.message}"]


def validate(cfg, warn=None):
    """Schema then semantic validation; raises Error naming the first bad field. A value that one
    of the ENGINE_LENIENCIES covers is judged by its spec form and reported through WARN
    (default: a warning in --log)."""
    if not isinstance(cfg, dict):
        raise Error("config.json: (root): must be a JSON object")
    from . import fastcheck

    view, notes, drops = lenient_view(cfg)
    if not fastcheck.ok(view):
        errs = schema_errors(view)
        if errs:
            raise Error(errs[0])
    for parts in drops:  # values runc ignores: the runtime does not get them either
        del _get(cfg, parts[:-1])[parts[-1]]
    if notes:
        if warn is None:
            from . import log
            warn = log.warning
        for n in notes:
            warn(n)
    semantic_check(cfg)


# -- Engine leniencies ---------------------------------------------------------------------------
# oci-schemas/ is the spec and stays as vendored. Real engines send a few values its schemas refuse
# and runc runs; a runtime is never stricter than runc on what engines send. Each such value is
# listed here, and relaxed nowhere else: the schemas judge a copy of the config in which the
# engine's value is replaced by its spec form (nothing else is relaxed: a bad value next to it is
# still refused), the runtime gets the engine's value and gives it runc's meaning, and a warning
# naming the field goes to --log. A value runc ignores (IGNORED as its spec form) is removed from
# the config the runtime gets. The finders are a few dict lookups: a config that uses none costs
# next to nothing.
#
# Each entry: (name, who sends it, what runc does with it, finder, what the warning says pyrunc
# does). A finder yields, for each occurrence, (JSON path as a list, the spec form the schema
# judges, or IGNORED).

IGNORED = object()
_S_IFMT = 0o170000
_DEVICE_IFMT = {"c": 0o020000, "u": 0o020000, "b": 0o060000, "p": 0o010000}


def _devices_filemode_type_bits(cfg):
    """linux.devices[].fileMode with the file type bits of the device's own type (st_mode)."""
    linux = cfg.get("linux")
    devs = linux.get("devices") if isinstance(linux, dict) else None
    if not isinstance(devs, list):
        return
    for i, d in enumerate(devs):
        if not isinstance(d, dict):
            continue
        m = d.get("fileMode")
        if not isinstance(m, int) or isinstance(m, bool) or m <= 0o777 or m >> 16:
            continue
        # only the type bits of the type the entry declares: anything else stays an error
        if m & _S_IFMT == _DEVICE_IFMT.get(d.get("type")) and not m & 0o7000:
            yield ["linux", "devices", i, "fileMode"], m & 0o777


_RECURSIVE_ROOT_PROPAGATION = {"rprivate": "private", "rshared": "shared", "rslave": "slave",
                               "runbindable": "unbindable"}


def _rootfs_propagation_recursive(cfg):
    """linux.rootfsPropagation in its recursive spelling (mount(8)'s rshared, rslave, ...)."""
    linux = cfg.get("linux")
    rp = linux.get("rootfsPropagation") if isinstance(linux, dict) else None
    if isinstance(rp, str) and rp in _RECURSIVE_ROOT_PROPAGATION:
        yield ["linux", "rootfsPropagation"], _RECURSIVE_ROOT_PROPAGATION[rp]


_ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")


def _seccomp_errno_ret_unused(cfg):
    """linux.seccomp.defaultErrnoRet / syscalls[].errnoRet beside an action that returns no errno."""
    linux = cfg.get("linux")
    sc = linux.get("seccomp") if isinstance(linux, dict) else None
    if not isinstance(sc, dict):
        return
    if "defaultErrnoRet" in sc and isinstance(sc.get("defaultAction"), str) \
            and sc["defaultAction"] not in _ERRNO_ACTIONS:
        yield ["linux", "seccomp", "defaultErrnoRet"], IGNORED
    calls = sc.get("syscalls")
    if isinstance(calls, list):
        for i, c in enumerate(calls):
            if isinstance(c, dict) and "errnoRet" in c and isinstance(c.get("action"), str) \
                    and c["action"] not in _ERRNO_ACTIONS:
                yield ["linux", "seccomp", "syscalls", i, "errnoRet"], IGNORED


ENGINE_LENIENCIES = (
    ("linux.devices[].fileMode with file type bits",
     "podman 4.3 (--device, --privileged: it copies the host node's st_mode, e.g. 8630 = 0o20666 "
     "for a character device)",
     "runc ORs the device type into the mode for mknod(2) and chmods with the permission bits "
     "only; pyrunc makes the node of the entry's type with the permission bits (mode & 0o777)",
     _devices_filemode_type_bits,
     "the permission bits {spec} are used, as runc does"),
    ("linux.rootfsPropagation rprivate/rshared/rslave/runbindable",
     "containerd's CRI plugin (a volume with Bidirectional -> rshared, HostToContainer -> rslave), "
     "podman 4.3 (-v SRC:DST:slave/rslave -> rslave), Docker 20.10 (slave/rslave volumes), "
     "ctr --rootfs-propagation",
     "runc maps each to its propagation flag with MS_REC and applies it to / of the new mount "
     "namespace before pivot_root, so volumes propagate as asked; pyrunc does the same "
     "(runtime/rootfs.py ROOT_PROPAGATION) and also sets it on the container's / after pivot_root "
     "(tests/test_engine_corpus.py checks host-to-container and container-to-host mounts agree "
     "with runc's)",
     _rootfs_propagation_recursive,
     "applied recursively (checked as {spec}, with MS_REC), as runc does"),
    ("seccomp errnoRet beside an action without an errno",
     "podman 4.3 (--security-opt seccomp=PROFILE) and ctr --seccomp-profile pass a profile's "
     "defaultErrnoRet/errnoRet through whatever its action (config-linux.md says MUST fail)",
     "runc 1.1 takes the errno only for SCMP_ACT_ERRNO/SCMP_ACT_TRACE and ignores it otherwise "
     "(checked: defaultAction SCMP_ACT_ALLOW + defaultErrnoRet, SCMP_ACT_LOG + errnoRet run)",
     _seccomp_errno_ret_unused,
     "ignored, as runc does"),
)


def lenient_view(cfg):
    """(view, notes, drops): CFG with every ENGINE_LENIENCIES value replaced by its spec form, or
    removed when runc ignores it (the nodes on the way are copied: CFG itself is not changed), one
    warning per leniency used, and the paths of the values runc ignores. (CFG, [], []) when there
    is none."""
    view, copied, notes, drops = cfg, set(), [], []
    for name, engines, runc, find, says in ENGINE_LENIENCIES:
        try:
            hits = list(find(cfg))
        except Exception:  # noqa: BLE001 - odd shapes are the schema's to report, not ours
            hits = []
        for parts, spec_value in hits:
            if view is cfg:
                view = dict(cfg)
                copied.add(id(view))
            node = view
            for key in parts[:-1]:
                child = node[key]
                if id(child) not in copied:
                    child = list(child) if isinstance(child, list) else dict(child)
                    copied.add(id(child))
                    node[key] = child
                node = child
            if spec_value is IGNORED:
                del node[parts[-1]]
                drops.append(parts)
            else:
                node[parts[-1]] = spec_value
        if hits:
            first, spec_value = hits[0]
            more = f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""
            got = _get(cfg, first)
            shown = oct(got) if isinstance(got, int) and spec_value is not IGNORED else repr(got)
            spec = oct(spec_value) if isinstance(spec_value, int) else repr(spec_value)
            notes.append(f"config.json: {json_path(first)}: {shown}{more} is outside the runtime-spec; "
                         f"accepted as engines send it ({name}): " + says.format(spec=spec))
    return view, notes, drops


def _get(cfg, parts):
    for p in parts:
        cfg = cfg[p]
    return cfg


def semantic_check(cfg):
    """Rules of config.md/config-linux.md beyond the schema."""
    if "ociVersion" not in cfg:
        raise Error("config.json: ociVersion: is required")
    root = cfg.get("root")
    if not root or not root.get("path"):
        raise Error("config.json: root.path: is required on Linux")
    proc = cfg.get("process")
    if proc is not None:
        if not proc.get("args"):
            raise Error("config.json: process.args: must name the program to run")
        for field in ("args", "env"):  # execve takes C strings: a NUL would cut them short
            for i, a in enumerate(proc.get(field) or []):
                if "\0" in a:
                    raise Error(f"config.json: process.{field}[{i}]: contains a NUL byte")
        cwd = proc.get("cwd", "")
        if not cwd.startswith("/"):
            raise Error(f"config.json: process.cwd: must be an absolute path, not {cwd!r}")
    for key in cfg.get("annotations") or {}:
        if not key:
            raise Error("config.json: annotations: keys MUST NOT be an empty string")
    linux = cfg.get("linux") or {}
    if "intelRdt" in linux and not _resctrl_mounted():
        raise Error("config.json: linux.intelRdt: resctrl is not mounted on this host")
    seen = set()
    for i, ns in enumerate(linux.get("namespaces") or []):
        t = ns.get("type")
        if t not in NAMESPACES:
            raise Error(f"config.json: linux.namespaces[{i}].type: unknown namespace type {t!r}")
        if t in seen:
            raise Error(f"config.json: linux.namespaces[{i}].type: duplicate namespace {t!r}")
        seen.add(t)
        p = ns.get("path")
        if p is not None and not p.startswith("/"):
            raise Error(f"config.json: linux.namespaces[{i}].path: must be absolute, not {p!r}")
    has_userns = "user" in seen
    if has_userns:
        userns_new = not any(ns.get("type") == "user" and ns.get("path") for ns in linux.get("namespaces"))
        if userns_new and not (linux.get("uidMappings") and linux.get("gidMappings")):
            raise Error("config.json: linux.uidMappings: a new user namespace needs uidMappings and gidMappings")
    elif linux.get("uidMappings") or linux.get("gidMappings"):
        raise Error("config.json: linux.uidMappings: mappings given without a user namespace")
    if "timeOffsets" in linux and "time" not in seen:
        raise Error("config.json: linux.timeOffsets: given without a time namespace")
    if "mount" not in seen and "user" in seen:
        # the mounts of the container are made in a scratch mount namespace and its root then
        # taken back into the runtime's (runtime/rootfs.py): a user namespace's root may not
        # enter a mount namespace of the host's (runc fails here too, at its first mount)
        raise Error("config.json: linux.namespaces: a user namespace needs a mount namespace of the "
                    "container too (without one, the container would have to mount in the "
                    "runtime's mount namespace)")
    for i, m in enumerate(cfg.get("mounts") or []):
        d = m.get("destination", "")
        if not d.startswith("/"):
            # config.md: SHOULD be absolute; runc resolves relative ones against / as well
            m["destination"] = "/" + d
    if cfg.get("hostname") and "uts" not in seen:
        raise Error("config.json: hostname: setting the hostname needs a uts namespace")
    if cfg.get("domainname") and "uts" not in seen:
        raise Error("config.json: domainname: setting the domainname needs a uts namespace")


def namespaces(cfg):
    """{type: path-or-None} of linux.namespaces."""
    return {ns["type"]: ns.get("path") for ns in (cfg.get("linux") or {}).get("namespaces") or []}


def _resctrl_mounted():
    with open("/proc/self/mountinfo") as f:
        return any(" - resctrl " in line for line in f)
