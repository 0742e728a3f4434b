"""Start-up of the real app: settings are read once when the server starts, never at import."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.fakes.appserver import free_port
from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def test_an_invalid_setting_stops_the_server_with_one_line_naming_it(tmp_path: Path) -> None:
    env = {**os.environ, "RAG_CORPUS_DIR": str(REPO / "docs_corpus"), "RAG_TOP_K": "many", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "chainlit"), "run", "app.py", "--headless", "--host", "127.0.0.1",
         "--port", str(free_port())],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "Invalid setting RAG_TOP_K: Input should be a valid integer, unable to parse string as an integer (got 'many')" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_importing_the_app_builds_nothing() -> None:
    code = "import importlib.util as u; s = u.spec_from_file_location('app', 'app.py'); m = u.module_from_spec(s); " \
           "s.loader.exec_module(m); print(m._services)"
    env = {**os.environ, "RAG_TOP_K": "many", "CHAINLIT_APP_ROOT": str(REPO)}  # invalid: reading it would fail
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "None"


def test_no_sign_in_on_a_network_address_is_refused_unless_allowed(tmp_path: Path) -> None:
    env = {**os.environ, "RAG_CORPUS_DIR": str(REPO / "docs_corpus"), "RAG_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "chainlit"), "run", "app.py", "--headless", "--host", "0.0.0.0",
         "--port", str(free_port())],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "refusing to serve 0.0.0.0 without sign-in" in result.stderr and "RAG_AUTH=password" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
