# Set-up and the two entry points the README promises. Everything installs into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The shared MovieLens copies sit beside the clone on the project's machines.
export KMREC_DATA_DIR ?= $(abspath ../shared/datasets)

.PHONY: setup run test lint check report report-html claims micro bench peers kernels-bench aot gpu-check mutate clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU wheel first: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	# the peers extra too: the main job compares each model with Surprise's on one split
	$(BIN)/pip install -q -e '.[test,peers]'
	touch $@

setup: $(BIN)/.installed

# the main job: a small real benchmark grid (3 models and their 3 peers on ml-latest-small)
run: setup
	$(BIN)/kmrec-bench sweep=main with_peers=true threads=1

test: setup
	$(BIN)/python -m pytest

check: setup
	$(BIN)/kmrec check

# ruff (pyproject.toml's [tool.ruff]); no file may silence it with a noqa comment
lint: setup
	$(BIN)/ruff check kmrec_gpu kernels bench tests
	$(BIN)/mypy kmrec_gpu kernels
	@! grep -rn --include='*.py' '# noqa' kmrec_gpu kernels bench tests

report: setup
	$(BIN)/kmrec report

# every published claim's cells through the harness (done cells are skipped at a clean
# revision), then results/claims.json and the README's claims table from the rows
claims: setup
	$(BIN)/kmrec claims run --readme README.md

micro: setup
	$(BIN)/python bench/run_micro.py

bench: setup
	$(BIN)/python bench/bench_synthetic.py

# ours against each operation's peer, interleaved, one thread (Surprise: the peers extra;
# LensKit: the lenskit extra)
peers: setup
	$(BIN)/python bench/bench_peers.py --label after

# mutation testing of the result-critical modules (pyproject.toml's [tool.mutmut]; over an hour,
# not in CI): each mutant against the tests that call it, then results/mutation.md
mutate: setup
	$(BIN)/pip install -q -e '.[mutate]'
	rm -rf mutants  # mutmut's own scratch copy (.gitignore'd), rebuilt by every run
	$(BIN)/mutmut run
	$(BIN)/python bench/mutation_report.py

# the Triton kernels against their composed paths (needs a CUDA GPU; says so and exits 0
# without one)
kernels-bench: setup
	$(BIN)/python bench/bench_triton.py

# every Triton kernel specialization compiled for sm_80, sm_89 and sm_90 without a GPU;
# the table goes to results/kernels/aot.md (CI runs the same compile in the tests)
aot: setup
	$(BIN)/python bench/kernels_aot.py

# the first minutes of a lent CUDA GPU: kernel and CUDA tests, the CPU against GPU sweep,
# the kernel benchmark, cuML's peers; says so and exits 0 where there is no GPU
gpu-check: setup
	$(BIN)/python bench/gpu_check.py

clean:
	rm -rf $(VENV) .pytest_cache

# the results page (self-contained HTML) and its screenshot, as built on this machine
# (Debian's chromium: apt-get install chromium)
report-html: setup
	$(BIN)/kmrec report --html
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,2400 \
		--virtual-time-budget=8000 --screenshot=$(abspath results/report.png) \
		file://$(abspath results/report.html)
