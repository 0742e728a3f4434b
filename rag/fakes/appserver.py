"""Start the real app (`chainlit run app.py --headless`) on a loopback port, for benchmarks and browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_app(corpus: Path, model_url: str, port: int, log_path: Path, **env: str) -> subprocess.Popen[bytes]:
    """Run the app against `model_url` with `corpus`; returns once it serves HTTP (or raises).

    Its state (history database, sign-in secret) goes beside the log unless `RAG_DATA_DIR` is given.
    The answer-side support check is off unless `RAG_MIN_DRAFT_SUPPORT` is given: the fake server's
    scripted drafts ("word0 word1 ...") do not answer the questions asked, and escalating every one would
    make the UI tests and benchmarks measure two requests per question.
    """
    environment = {**os.environ, "RAG_CORPUS_DIR": str(corpus), "RAG_BASE_URL": model_url, "PYTHONUNBUFFERED": "1",
                   "RAG_DATA_DIR": str(log_path.parent / "data"), "RAG_MIN_DRAFT_SUPPORT": "0", **env}
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "chainlit"), "run", "app.py", "--headless", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited: {log_path.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("the app did not start within 60 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate and reap."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
