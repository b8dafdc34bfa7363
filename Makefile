# All set-up lives here: a fresh Debian machine needs only `make demo` and `make test`, as root.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYRUNC := $(VENV)/bin/pyrunc
BUNDLE := bundles/busybox
APT_PKGS := busybox-static runc crun libseccomp2 libcap-dev python3-venv python3-dev uidmap iproute2 procps podman conmon containerd
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Debian's python3 links libpython statically: it starts ~2 ms faster than a shared-libpython
# build (pyenv's), and every pyrunc verb pays interpreter start-up.
BASE_PYTHON := $(shell test -x /usr/bin/python3 && /usr/bin/python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo /usr/bin/python3 || echo python3)

.PHONY: setup launcher bytecode deps bundle demo test conformance bench stress clean

setup: $(VENV)/.installed bytecode

# apt: only what is missing, so a prepared machine does no network at all
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "apt-get install$$missing"; \
	  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null; fi

$(VENV)/.installed: pyproject.toml
	@$(MAKE) --no-print-directory deps
	@test -x $(PY) || $(BASE_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	@$(MAKE) --no-print-directory launcher
	@touch $@

# pip's console script imports re and goes through site: ours starts the venv's python with
# -I -S (no site, no environment) and puts the two paths it needs in front itself.
launcher:
	@purelib=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	printf '#!%s -IS\n"""pyrunc launcher (made by make setup)."""\nimport sys\nsys.path[:0] = ["%s", "%s"]\nfrom runtime.cli import main\nsys.exit(main())\n' \
	  "$(abspath $(PY))" "$(CURDIR)" "$$purelib" > $(PYRUNC).tmp && chmod 755 $(PYRUNC).tmp && mv $(PYRUNC).tmp $(PYRUNC)

# bytecode for every module, whatever PYTHONDONTWRITEBYTECODE says: each pyrunc start imports them
bytecode:
	@$(PY) -m compileall -q runtime

bundle: deps $(BUNDLE)/rootfs/bin/busybox
$(BUNDLE)/rootfs/bin/busybox:
	bash $(BUNDLE)/build-rootfs.sh

demo: setup bundle
	$(PYRUNC) run --bundle $(BUNDLE) pyrunc-demo-$$$$

test: setup bundle
	$(PY) -m pytest -q tests

conformance: setup bundle
	$(PY) -m conformance --runtime $(PYRUNC) --runtime runc --runtime crun

bench: setup bundle
	$(PY) -m benchmarks

# the long forms of the hardening tests: many more fuzz examples (not derandomized), 100
# concurrent containers, long symlink/lock races
stress: setup bundle
	PYRUNC_STRESS=1 PYRUNC_STRESS_RACES=150 $(PY) -m pytest -q tests/test_fuzz.py tests/test_load.py tests/test_crash.py tests/security

clean:
	rm -rf $(VENV) $(BUNDLE)/rootfs build *.egg-info
