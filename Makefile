# The two set-up commands of the README. Each creates .venv (Python >= 3.10) and installs what it needs.
#   make demo   the main job: the spatial_reasoner node on the bundled real capture, over ROS 2
#   make test   the whole test suite
PYTHON ?= python3
VENV ?= .venv
BACKEND ?= $(if $(ACTIAL_VLLM_URL),vllm,geometry)
CAPTURE ?= data/sample_capture
OUT ?= out/demo_answers.jsonl

.PHONY: demo test test-py310 venv lint

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip

# Re-install when the package metadata changes (a stamp per extras set).
$(VENV)/.installed-ros: setup.py setup.cfg | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet -e '.[ros]'
	touch $@

$(VENV)/.installed-dev: setup.py setup.cfg | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet -e '.[ros,dev,train,sim]'
	touch $@ $(VENV)/.installed-ros

# The interface package (actial_ros_msgs: ViewpointAnswer.msg, AskSpatial.action), built by colcon from the
# Kilted wheels into the venv (scripts/build_interfaces.sh; about 1 min the first time).
MSGS_SOURCES := actial_ros_msgs/package.xml actial_ros_msgs/CMakeLists.txt $(wildcard actial_ros_msgs/msg/*.msg) \
	$(wildcard actial_ros_msgs/action/*.action) scripts/build_interfaces.sh
$(VENV)/.installed-msgs: $(MSGS_SOURCES) | $(VENV)/.installed-ros
	bash scripts/build_interfaces.sh $(VENV)
	touch $@

venv: $(VENV)/.installed-dev $(VENV)/.installed-msgs

demo: $(VENV)/.installed-ros $(VENV)/.installed-msgs
	$(VENV)/bin/actial-ros demo --capture $(CAPTURE) --backend $(BACKEND) --out $(OUT)

# The real-vLLM tier (test/serving/) runs vLLM's CPU build from its own venv, .venv-vllm/ (about 2 min
# and 3.5 GB the first time; the environment fixes it needs live in that script, never in the package).
test: $(VENV)/.installed-dev $(VENV)/.installed-msgs
	PYTHON=$(PYTHON) bash test/serving/setup_vllm_env.sh
	bash scripts/install_test_browser.sh
	$(VENV)/bin/python -m pytest
	$(MAKE) test-py310

# The ROS-free core on Python 3.10 (ROS 2 Humble's Python), in its own venv: Kilted's rclpy wheels are
# built for 3.11 only, so the ROS tests skip there and run above. Skipped, saying so, without a python3.10.
PY310 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3.10) python3.10)
VENV310 ?= .venv-py310
test-py310:
	@if ! $(PY310) -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then \
		echo "test-py310: no working Python 3.10 ($(PY310)): the Python 3.10 run is SKIPPED"; exit 0; fi; \
	set -e; \
	[ -x $(VENV310)/bin/python ] || $(PY310) -m venv $(VENV310); \
	$(VENV310)/bin/python -m pip install --quiet --upgrade pip; \
	$(VENV310)/bin/python -m pip install --quiet -e . 'pytest>=8' 'pytest-timeout>=2.3' 'hypothesis>=6.100' 'pycolmap>=3.10'; \
	$(VENV310)/bin/python -m pytest -q -m 'not ros' test --ignore=test/nodes --ignore=test/training \
		--ignore=test/serving --ignore=test/simulation --ignore=test/test_packaging.py --ignore=test/test_sim_gazebo.py

lint: $(VENV)/.installed-dev $(VENV)/.installed-msgs
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	# Python 3.10 (ROS 2 Humble) is promised by setup.py: no newer syntax or standard-library names.
	$(VENV)/bin/vermin --target=3.10- --violations --no-tips --eval-annotations actial_ros training scripts benchmarks test
	# mypy strict, typed as 3.11 and 3.10, and the layers (pyproject.toml [tool.importlinter]: cli > commands > nodes >
	# engine > backends, sources > bags > core; no rclpy or torch in the core), over the installed layout.
	bash scripts/lint_installed.sh $(VENV)
	# The tests too, strict (conftest.py files one at a time: mypy would see several modules named conftest), against
	# the installed layout that lint_installed.sh staged (build/installed_layout first on the path: through the editable
	# install, actial_ros.training would be Any to them).
	MYPYPATH=build/installed_layout:test:test/training:test/serving $(VENV)/bin/mypy --strict --ignore-missing-imports \
		$$(git ls-files 'test/*.py' | grep -v conftest.py)
	for conftest in $$(git ls-files 'test/*conftest.py'); do \
		MYPYPATH=build/installed_layout:test:test/training:test/serving $(VENV)/bin/mypy --strict \
			--ignore-missing-imports $$conftest || exit 1; \
	done
