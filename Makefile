# make run   - create .venv, install, start the chat at http://127.0.0.1:$(PORT)
# make test  - install the app and everything the tests need, type-check, run the whole suite
VENV   ?= .venv
PYTHON ?= python3
PORT   ?= 8000
HOST   ?= 127.0.0.1
BIN    := $(VENV)/bin

.PHONY: install test-deps run test bench opensearch opensearch-stop clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: install
	$(BIN)/chainlit run app.py --headless --host $(HOST) --port $(PORT)

# What only the tests need: llama.cpp's server (integration tests) and Debian's Chromium (browser tests;
# installed here when missing and we are root, as on CI; otherwise those tests are skipped with a reason).
test-deps: $(VENV)/.test-deps

# llama.cpp is built portable (-DGGML_NATIVE=OFF): a native build segfaults on the first chat completion
# on CPUs with AMX. pip's own wheel cache does not key on CMAKE_ARGS and could hand back a native wheel
# built earlier, so the build skips pip's cache and keeps its wheel in a folder named for the flags.
LLAMA_CPP_VERSION := 0.3.36
LLAMA_WHEELS ?= $(HOME)/.cache/rag/wheels/llama-cpp-python-$(LLAMA_CPP_VERSION)-portable

$(VENV)/.test-deps: $(VENV)/.installed
	@if ! ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1; then \
		echo "building llama-cpp-python $(LLAMA_CPP_VERSION) (portable; about 10 minutes on 2 cores)"; \
		CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/python -m pip wheel --quiet --no-cache-dir --no-deps \
			--no-binary llama-cpp-python -w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_CPP_VERSION); fi
	$(BIN)/python -m pip install --quiet --force-reinstall --no-deps --no-index --find-links $(LLAMA_WHEELS) \
		llama-cpp-python==$(LLAMA_CPP_VERSION)
	$(BIN)/python -m pip install --quiet -e '.[test,integration]'
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; fi
	touch $@

# Type checks first (configured in pyproject.toml), then the whole suite.
test: test-deps
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Retrieval benchmark on BEIR SciFact (kept outside the repository: licence CC BY-NC).
SCIFACT ?= ../shared/data/beir/scifact
bench: install
	$(BIN)/rag bench retrieval --dataset $(SCIFACT) --engine rank-bm25
	$(BIN)/rag bench retrieval --dataset $(SCIFACT) --engine bm25s

# A local OpenSearch cluster to try RAG_ENGINE=opensearch with: fetched from Maven Central once (Java 21+
# and Maven needed), two nodes on free loopback ports, run as a non-root user; prints the RAG_OPENSEARCH_URL
# to use. `make opensearch-stop` stops it (its data is kept for the next start; add PURGE=1 to remove it).
OPENSEARCH_NODES ?= 2
opensearch: install
	$(BIN)/python -m rag.index.opensearch_cluster start --nodes $(OPENSEARCH_NODES)

opensearch-stop: install
	$(BIN)/python -m rag.index.opensearch_cluster stop $(if $(PURGE),--purge)

clean:
	rm -rf $(VENV) .files .pytest_cache build *.egg-info
