# All set-up lives here: a fresh Debian machine needs only `make demo` and `make test`, as root.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYRUNC := $(VENV)/bin/pyrunc
BUNDLE := bundles/busybox
# docker.io and containernetworking-plugins: the Docker and Kubernetes (CRI) end-to-end tests
APT_PKGS := busybox-static runc crun libseccomp2 python3-venv uidmap iproute2 procps podman conmon containerd util-linux \
	docker.io containernetworking-plugins
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Debian's python3 links libpython statically: it starts ~2 ms faster than a shared-libpython
# build (pyenv's), and every pyrunc verb pays interpreter start-up.
BASE_PYTHON := $(shell test -x /usr/bin/python3 && /usr/bin/python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo /usr/bin/python3 || echo python3)

.PHONY: FORCE setup bytecode deps bundle demo unit test conformance bench stress clean

setup: $(VENV)/.installed bytecode

# apt: only what is missing, so a prepared machine does no network at all
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "apt-get install$$missing"; \
	  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null; fi

# The ordinary pip install of this tree (editable: the tests and the installed pyrunc run the code
# being edited), with the test extra. .venv/bin/pyrunc is bin/pyrunc as pip installs it: no path of
# this clone is written into it. A venv is not relocatable: if the clone moved since, start afresh.
$(VENV)/.installed: pyproject.toml bin/pyrunc $(if $(filter-out $(CURDIR),$(shell cat $(VENV)/.installed 2>/dev/null)),FORCE)
	@$(MAKE) --no-print-directory deps
	@if [ -e $@ ] && [ "$$(cat $@)" != "$(CURDIR)" ]; then echo "the clone moved: new $(VENV)"; rm -rf $(VENV); fi
	@test -x $(PY) || $(BASE_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	@echo "$(CURDIR)" > $@

# bytecode for every module, whatever PYTHONDONTWRITEBYTECODE says: each pyrunc start imports them
bytecode:
	@$(PY) -m compileall -q runtime

bundle: deps $(BUNDLE)/rootfs/bin/busybox
$(BUNDLE)/rootfs/bin/busybox: $(BUNDLE)/build-rootfs.sh
	bash $(BUNDLE)/build-rootfs.sh

demo: setup bundle
	$(PYRUNC) run --bundle $(BUNDLE) pyrunc-demo-$$$$

# the tier that needs neither root nor containers; as root it runs as nobody (setpriv), which
# proves it, when nobody can read this tree and the venv
unit: setup
	@if [ "$$(id -u)" = 0 ] && command -v setpriv >/dev/null && \
	    setpriv --reuid 65534 --regid 65534 --clear-groups -- $(PY) -c 'import runtime, pytest' 2>/dev/null; then \
	  echo "unit tests as nobody (uid 65534)"; \
	  setpriv --reuid 65534 --regid 65534 --clear-groups -- env HOME=/tmp $(PY) -m pytest -q -p no:cacheprovider tests/unit; \
	else \
	  if [ "$$(id -u)" = 0 ]; then echo "unit tests as root: nobody cannot read $(CURDIR) or $(VENV)"; fi; \
	  $(PY) -m pytest -q tests/unit; \
	fi

test: setup bundle unit
	$(PY) -m pytest -q tests --ignore=tests/unit

conformance: setup bundle
	$(PY) -m conformance --runtime $(PYRUNC) --runtime runc --runtime crun

bench: setup bundle
	$(PY) -m benchmarks --engines all

# the long forms of the hardening tests: many more fuzz examples (not derandomized), 100
# concurrent containers, long symlink/lock races
stress: setup bundle
	PYRUNC_STRESS=1 PYRUNC_STRESS_RACES=150 $(PY) -m pytest -q tests/test_fuzz.py tests/test_load.py tests/test_crash.py tests/security

FORCE:

clean:
	rm -rf $(VENV) $(BUNDLE)/rootfs build *.egg-info
