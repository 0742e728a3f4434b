"""The corpus folder as an attacker or a careless user leaves it: links, pipes, devices, huge files, and
several processes writing at once. Each case failed on the code before the hardening issue."""

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.cli.main import cli
from rag.config import Settings
from rag.documents.corpus import TEMP_PREFIX
from rag.errors import CorpusError
from rag.documents.library import LibraryLock
from rag.runtime import build_library, build_retriever
from rag.types import Chunk, DocumentInfo


def _listing(settings: Settings) -> dict[str, DocumentInfo]:
    library = build_library(settings)
    library.scan()
    return {d.source: d for d in library.documents()}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "passwd.txt"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    return secret


def test_a_link_out_of_the_corpus_is_skipped_with_a_reason(settings: Settings, corpus_dir: Path, outside: Path) -> None:
    (corpus_dir / "guide.md").write_text("# Guide\n\nOllama listens on port 11434.")
    (corpus_dir / "passwd.txt").symlink_to(outside)
    (corpus_dir / "etc.txt").symlink_to("/etc/passwd")
    docs = _listing(settings)
    for name in ("passwd.txt", "etc.txt"):
        assert docs[name].status == "skipped"
        assert docs[name].reason == ("symbolic link to a file outside the corpus folder "
                                     "(set RAG_FOLLOW_EXTERNAL_LINKS=true to allow)")
    retriever = build_retriever(settings)
    retriever.warm_up()
    snapshot = retriever.snapshot
    assert snapshot is not None and {c.source for c in snapshot.chunks} == {"guide.md"}
    assert not any("root:x:0:0" in c.text for c in snapshot.chunks)


def test_the_cli_listing_shows_the_reason(settings: Settings, corpus_dir: Path, outside: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (corpus_dir / "passwd.txt").symlink_to(outside)
    monkeypatch.setenv("RAG_CORPUS_DIR", str(corpus_dir))
    result = CliRunner().invoke(cli, ["corpus", "list"])
    assert result.exit_code == 0 and "skipped: symbolic link to a file outside the corpus folder" in result.output
    search = CliRunner().invoke(cli, ["search", "root bash"])
    assert "root:x" not in search.output


def test_links_inside_the_corpus_and_allowed_external_links_are_served(corpus_dir: Path, outside: Path) -> None:
    (corpus_dir / "real.md").write_text("# Real\n\nkiwi facts")
    (corpus_dir / "alias.md").symlink_to(corpus_dir / "real.md")
    (corpus_dir / "passwd.txt").symlink_to(outside)
    docs = _listing(Settings(corpus_dir=corpus_dir, _env_file=None))
    assert docs["alias.md"].status == "ok" and docs["passwd.txt"].status == "skipped"
    allowed = _listing(Settings(corpus_dir=corpus_dir, follow_external_links=True, _env_file=None))
    assert allowed["passwd.txt"].status == "ok"


def test_a_broken_link_is_skipped(settings: Settings, corpus_dir: Path) -> None:
    (corpus_dir / "gone.md").symlink_to(corpus_dir / "missing.md")
    assert _listing(settings)["gone.md"].reason == "broken symbolic link (its target does not exist or loops)"


def test_a_fifo_never_blocks_the_scan(settings: Settings, corpus_dir: Path) -> None:
    os.mkfifo(corpus_dir / "x.txt")
    (corpus_dir / "ok.md").write_text("# OK\n\nfine")
    result: dict[str, dict[str, DocumentInfo]] = {}
    worker = threading.Thread(target=lambda: result.update(docs=_listing(settings)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():  # unblock the scan so the test run can end, then fail
        with open(corpus_dir / "x.txt", "w") as pipe:
            pipe.write("x")
        pytest.fail("the scan blocked on a FIFO")
    docs = result["docs"]
    assert docs["x.txt"].status == "skipped"
    assert docs["x.txt"].reason == "not a regular file (a named pipe); only regular files are read"
    assert docs["ok.md"].status == "ok"


def test_devices_are_never_read_even_when_links_may_leave_the_folder(corpus_dir: Path) -> None:
    (corpus_dir / "zero.txt").symlink_to("/dev/zero")
    docs = _listing(Settings(corpus_dir=corpus_dir, _env_file=None))
    assert "outside the corpus folder" in (docs["zero.txt"].reason or "")
    docs = _listing(Settings(corpus_dir=corpus_dir, follow_external_links=True, _env_file=None))
    assert docs["zero.txt"].reason == "not a regular file (a character device); only regular files are read"


def test_never_more_than_the_limit_is_read_whatever_the_size_claims(corpus_dir: Path) -> None:
    # /proc files claim a size of 0 bytes; this one holds far more than 100 bytes.
    (corpus_dir / "status.txt").symlink_to("/proc/self/status")
    settings = Settings(corpus_dir=corpus_dir, follow_external_links=True, max_file_mb=0.0001, _env_file=None)
    assert os.stat("/proc/self/status").st_size == 0
    docs = _listing(settings)
    assert docs["status.txt"].status == "skipped"
    assert "could be read, over the limit (RAG_MAX_FILE_MB)" in (docs["status.txt"].reason or "")


def _rag(*args: str, corpus: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAG_CORPUS_DIR": str(corpus)}
    return subprocess.run([str(Path(sys.executable).parent / "rag"), *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_corpus_add_checks_the_size_before_reading(tmp_path: Path, corpus_dir: Path) -> None:
    huge = tmp_path / "huge.md"
    with open(huge, "wb") as handle:  # 200 MB that take no disk: reading it would still take the memory
        handle.truncate(200 * 2**20)
    # A fresh parent process, so its children's peak memory is this command's alone.
    measure = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "sys.stdout.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
               "sys.stderr.write(r.stderr); sys.exit(r.returncode)")
    result = subprocess.run([sys.executable, "-c", measure, str(Path(sys.executable).parent / "rag"), "corpus", "add",
                             str(huge)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "RAG_CORPUS_DIR": str(corpus_dir)})
    assert result.returncode == 1
    assert result.stderr.strip() == f"rejected {huge}: file is 200.0 MB, over the limit of 25 MB (RAG_MAX_FILE_MB)"
    assert int(result.stdout) < 180 * 1024  # KB: the CLI's own footprint, not 200 MB more


def test_a_failed_write_is_one_line(tmp_path: Path, corpus_dir: Path) -> None:
    (corpus_dir / "uploads").write_text("a file where the uploads folder should be")
    doc = tmp_path / "notes.md"
    doc.write_text("# Notes\n\nsomething to add")
    result = _rag("corpus", "add", str(doc), corpus=corpus_dir)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("Error: could not store notes.md in ")


def test_parallel_adds_from_many_processes_store_each_content_once(tmp_path: Path, corpus_dir: Path) -> None:
    (corpus_dir / "guide.md").write_text("# Guide\n\nbase document")
    same = tmp_path / "same"
    same.mkdir()
    files = []
    for i in range(6):  # six copies of one document under different names
        path = same / f"copy-{i}.md"
        path.write_text("# Shared\n\nthe very same words in every copy")
        files.append(path)
    for i in range(5):  # five different documents
        path = tmp_path / f"distinct-{i}.md"
        path.write_text(f"# Distinct {i}\n\nwords unique to document number {i}")
        files.append(path)
    env = {**os.environ, "RAG_CORPUS_DIR": str(corpus_dir)}
    processes = [subprocess.Popen([str(Path(sys.executable).parent / "rag"), "corpus", "add", str(f)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for f in files]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0] * 11, outputs
    assert not any("Traceback" in out + err for out, err in outputs)
    stored = sorted(p.name for p in (corpus_dir / "uploads").iterdir())
    assert len(stored) == 6 and sum(name.startswith("copy-") for name in stored) == 1
    assert sum("skipped" in out and "already in the corpus" in out for out, _ in outputs) == 5


def test_a_live_writers_temporary_file_is_not_taken_for_a_leftover(settings: Settings, corpus_dir: Path) -> None:
    uploads = corpus_dir / "uploads"
    uploads.mkdir()
    in_flight = uploads / f"{TEMP_PREFIX}writing"
    in_flight.write_bytes(b"half written")
    other_process = LibraryLock(corpus_dir)  # its own open file: conflicts like another process's lock
    library = build_library(settings)
    library.lock = LibraryLock(corpus_dir, timeout_s=0.3)
    with other_process.held():
        with pytest.raises(CorpusError, match="stayed locked by another process"):
            library.remove_leftovers()
        assert in_flight.exists()
    assert library.remove_leftovers() == 1 and not in_flight.exists()  # its writer is gone now


async def test_parsing_an_upload_never_holds_up_questions(settings: Settings, corpus_dir: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (corpus_dir / "guide.md").write_text("# Guide\n\nOllama listens on port 11434.")
    library = build_library(settings)
    retriever = build_retriever(settings, library)
    await retriever.refresh()
    searched = threading.Event()
    waited: list[bool] = []
    real_parse = library.corpus.parse_upload

    def slow_parse(source: str, data: bytes) -> tuple[DocumentInfo, tuple[Chunk, ...]]:
        # A big PDF: parsing ends only once a question has been answered, or after 10 s if it could not be.
        waited.append(searched.wait(timeout=10))
        return real_parse(source, data)

    monkeypatch.setattr(library.corpus, "parse_upload", slow_parse)

    async def ask() -> None:
        await asyncio.sleep(0.05)
        result = await retriever.search("ollama port", 3)
        assert result.passages
        searched.set()

    outcome, _ = await asyncio.gather(retriever.add_upload("big.md", b"# Big\n\nnarwhal report"), ask())
    assert outcome.status == "added"
    assert waited == [True]  # the question was answered while the parse was still running
