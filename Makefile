# The README's two commands: `make run` and `make test`. Both do all set-up on a fresh Debian machine.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Debian packages Qt's xcb platform and Xvfb need (see ../shared/notes/gui-headless.md).
DEB_PKGS := xvfb xauth libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 \
            libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-cursor0 libgl1 libegl1 \
            libglx-mesa0 libgl1-mesa-dri

.PHONY: run test setup system-deps bench clean bundle bundle-smoke

setup: system-deps $(STAMP)

system-deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "warning: missing Debian packages (run as root to install): $$missing"; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

run: setup
	$(VENV)/bin/rsmt-studio

test: setup
	$(VENV)/bin/pytest -p no:cacheprovider $(PYTEST_ARGS)

bench: setup
	$(VPY) bench/bvh_read.py
	$(VPY) bench/viewer.py

# The relocatable Linux desktop bundle (packaging/README.md): build it, then smoke-test it unpacked elsewhere.
bundle: setup
	bash packaging/linux/build-bundle.sh

bundle-smoke:
	bash packaging/linux/smoke-test.sh

clean:
	rm -rf $(VENV) build *.egg-info
