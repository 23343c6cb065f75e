# isonb: `make run` runs the main job, `make test` runs every test. Both set up .venv first.
#
# Torch is pinned deliberately: `torch==2.13.0` resolves to the CPU build on local disk on
# isonb's build machines (pip's find-links); the package itself only asks for `torch>=2.2`,
# which the pinned install already satisfies, so pip never pulls a multi-GB CUDA build.
# On a GPU cluster, install the CUDA build you want into the venv first (TORCH_SPEC=...).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.isonb-installed
OUT ?= outputs

.PHONY: run test docs clean-venv system-deps

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name isonb --display-name "isonb (.venv)" >/dev/null
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/isonb datasets summary --out $(OUT)
	$(BIN)/isonb datasets ceiling --out $(OUT)
	$(BIN)/isonb run --config configs/macrophage_default.yaml --out-dir $(OUT)/runs

# SLURM (slurm-wlm, munge) and chromium for the scheduler and browser tests: installed when make runs as root
# with apt-get (CI, fresh machines); elsewhere those tests skip with the reason (CI makes them mandatory).
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then bash .ci/install_system_deps.sh; \
	else echo "system deps: not root or no apt-get; install slurm-wlm munge chromium yourself or the SLURM/browser tests skip"; fi

test: $(STAMP) system-deps
	$(BIN)/nbdev-test --flags "slow" --do-print
	$(BIN)/pytest -q

docs: $(STAMP)
	$(BIN)/python tools/build_docs.py --check

clean-venv:
	rm -rf $(VENV)
