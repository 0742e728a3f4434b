# make run   - create .venv, install, start the chat at http://127.0.0.1:$(PORT)
# make test  - install the app and its test dependencies, run the whole suite
VENV   ?= .venv
PYTHON ?= python3
PORT   ?= 8000
HOST   ?= 127.0.0.1
BIN    := $(VENV)/bin

.PHONY: install run test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: install
	$(BIN)/chainlit run app.py --headless --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Retrieval benchmark on BEIR SciFact (kept outside the repository: licence CC BY-NC).
SCIFACT ?= ../shared/data/beir/scifact
bench: install
	$(BIN)/rag bench retrieval --dataset $(SCIFACT) --engine rank-bm25
	$(BIN)/rag bench retrieval --dataset $(SCIFACT) --engine bm25s

clean:
	rm -rf $(VENV) .files .pytest_cache build *.egg-info
