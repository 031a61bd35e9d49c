# OpenArena: the two commands of the README.
#   make run   creates .venv, installs, builds the leaderboard of 1.67M real arena votes,
#              then starts the web arena (demo models on a local mock server) on :8000
#   make test  creates .venv with the dev extras and runs the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= out

.PHONY: run test install install-dev clean vendor-frontend

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[all]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

PORT ?= 8000

run: $(VENV)/.installed
	$(BIN)/openarena leaderboard chatbot-arena-20240814 --alias chatgpt-4o-latest=chatgpt-4o-latest-2024-08-08 \
		--ci bootstrap --rounds 100 --out-dir $(OUT) --top 20
	$(BIN)/openarena serve --demo --reference $(OUT)/leaderboard.json --port $(PORT)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n 2 -q

# Re-create src/openarena/serving/static/vendor (committed) from pinned npm packages; needs npm.
vendor-frontend:
	bash scripts/vendor-frontend.sh

clean:
	rm -rf $(VENV) $(OUT)
