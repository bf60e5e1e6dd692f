# Entry points. `make run` and `make test` create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint lock clean-results

run: $(STAMP)
	$(BIN)/snakemake --cores 1

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Unit tests only: skips the end-to-end pipeline runs (1-4 minutes).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/snakemake --lint

# torch==2.14.1 and torchvision==0.29.1 come from the local wheel cache on
# the project's machines; elsewhere pip downloads them.
$(STAMP): requirements.lock pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

lock: $(STAMP)
	{ echo "# Exact versions of every package the pipeline and its tests were run with"; \
	  echo "# (Python 3.11, x86_64). Regenerate with: make lock"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^neurosql'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean-results:
	rm -rf results/* .snakemake/metadata .snakemake/incomplete
	touch results/.gitkeep
