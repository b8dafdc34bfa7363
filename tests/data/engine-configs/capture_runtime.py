#!/usr/bin/python3
"""A capture "runtime": registered with an engine in place of runc, it copies the bundle's
config.json of every `create` (and records whether each bind mount's source is a file or a
directory, as the source may be gone by the time the corpus is written), then execs runc with the
same arguments. The output directory is the CAPTURE_OUT line below, rewritten by capture.py."""
import json
import os
import sys

CAPTURE_OUT = "@CAPTURE_OUT@"
RUNC = "/usr/sbin/runc"


def main(argv):
    verb, bundle, prev = None, None, None
    for a in argv:
        if prev in ("--bundle", "-b"):
            bundle = a
        elif a.startswith("--bundle="):
            bundle = a.split("=", 1)[1]
        elif verb is None and a in ("create", "run"):
            verb = a
        prev = a
    if verb:
        bundle = bundle or os.getcwd()
        try:
            with open(os.path.join(bundle, "config.json")) as f:
                cfg = json.load(f)
            kinds = {}
            for m in cfg.get("mounts") or []:
                src = m.get("source") or ""
                if src.startswith("/") and (m.get("type") == "bind" or "bind" in (m.get("options") or [])
                                            or "rbind" in (m.get("options") or [])):
                    kinds[src] = "dir" if os.path.isdir(src) else "file" if os.path.exists(src) else "missing"
            name = argv[-1]
            with open(os.path.join(CAPTURE_OUT, name + ".json"), "w") as f:
                json.dump({"argv": argv, "config": cfg, "kinds": kinds}, f)
        except Exception as e:  # noqa: BLE001 - never stand between the engine and runc
            with open(os.path.join(CAPTURE_OUT, "errors.log"), "a") as f:
                f.write(f"{argv}: {e}\n")
    os.execv(RUNC, [RUNC] + argv)


if __name__ == "__main__":
    main(sys.argv[1:])
