"""`rag bench ingest`: time from upload to searchable, and the cost of re-indexing as the corpus grows.

A synthetic background corpus of N chunks (Markdown files, one chunk per section, deterministic text)
is indexed first; then a 100-page PDF, a 1 MB Markdown file and a DOCX of the same text are uploaded
through the same path the chat uses (`Retriever.add_upload`: parse outside the lock, chunk, atomic write,
index rebuild), and a query for a word only the upload contains must find it. Each format's parse is run
once more under tracemalloc for its peak Python memory (pypdf, python-docx and the chunker are pure
Python, so that is where a large upload's memory goes).
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.fakes.samples import make_docx, make_pdf
from rag.config import Settings
from rag.documents.library import Library
from rag.runtime import build_library, build_retriever

_WORDS = (
    "model server token latency retrieval passage corpus index answer question stream prompt budget "
    "escalation policy signal coverage score document chunk heading page upload parser engine memory "
    "throughput benchmark quality grounded citation source context window reasoning channel harmony "
    "endpoint port alias cache offline tokenizer vocabulary stemming stopword analyzer ranking recall"
).split()


@dataclass(frozen=True)
class IngestRow:
    """One corpus size: seconds to index the background, then each upload's parse/index/total ms."""

    engine: str
    background_chunks: int
    background_index_s: float
    pdf_pages: int
    pdf_chunks: int
    pdf_parse_ms: float
    pdf_index_ms: float
    pdf_total_ms: float
    markdown_bytes: int
    markdown_chunks: int
    markdown_parse_ms: float
    markdown_index_ms: float
    markdown_total_ms: float
    docx_bytes: int = 0
    docx_chunks: int = 0
    docx_total_ms: float = 0.0
    # format -> {"bytes": size of the file, "peak_mb": peak Python memory while parsing and chunking it}
    parse_peak: dict[str, dict[str, float]] = field(default_factory=dict)


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n)).capitalize() + "."


def write_background(root: Path, chunks: int, seed: int = 7) -> None:
    """`chunks` sections of ~120 words over files of 100 sections each."""
    rng = random.Random(seed)
    per_file = 100
    for f in range(0, chunks, per_file):
        sections = [
            f"## Section {f + i}\n\n" + " ".join(_sentence(rng, 12) for _ in range(10))
            for i in range(min(per_file, chunks - f))
        ]
        (root / f"background-{f // per_file:05d}.md").write_text(f"# Background {f}\n\n" + "\n\n".join(sections))


def sample_pdf(pages: int, marker: str) -> bytes:
    """A text PDF of `pages` pages of ~300 words; `marker` appears on the last page only."""
    rng = random.Random(11)
    texts = ["\n".join(_sentence(rng, 12) for _ in range(25)) for _ in range(pages)]
    texts[-1] += f"\nThe {marker} appears here."
    return make_pdf(texts, title="Benchmark report")


def sample_markdown(size: int, marker: str) -> bytes:
    """About `size` bytes of Markdown in sections; `marker` in the middle."""
    rng = random.Random(13)
    parts: list[str] = ["# Benchmark handbook"]
    total = 0
    i = 0
    while total < size:
        section = f"## Part {i}\n\n" + " ".join(_sentence(rng, 14) for _ in range(8))
        parts.append(section)
        total += len(section) + 2
        i += 1
    parts[len(parts) // 2] += f" The {marker} is described in this part."
    return "\n\n".join(parts).encode()


def sample_docx(paragraphs: int, marker: str) -> bytes:
    """A DOCX of headed sections of ~120 words each; `marker` in the last paragraph."""
    rng = random.Random(17)
    blocks: list[tuple[str, str]] = []
    for i in range(paragraphs):
        if i % 10 == 0:
            blocks.append(("Heading 1", f"Part {i // 10}"))
        blocks.append(("Normal", " ".join(_sentence(rng, 12) for _ in range(10))))
    blocks.append(("Normal", f"The {marker} is described here."))
    return make_docx(blocks, title="Benchmark manual")


def parse_peak_mb(library: Library, name: str, data: bytes) -> float:
    """Peak memory (MB, tracemalloc) of validating, parsing and chunking one upload; nothing is written."""
    tracemalloc.start()
    try:
        library.prepare(name, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return round(peak / 2**20, 1)


async def _measure(settings: Settings, background: int, pdf_pages: int, markdown_bytes: int) -> IngestRow:
    with tempfile.TemporaryDirectory(prefix="rag-bench-ingest-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        write_background(corpus, background)
        # The user's settings (engine, chunking, limits), over the benchmark's own corpus folder.
        settings = settings.model_copy(update={"corpus_dir": corpus})
        library = build_library(settings)
        retriever = build_retriever(settings, library)
        started = time.perf_counter()
        await retriever.refresh()
        index_s = time.perf_counter() - started
        uploads = (
            ("report.pdf", sample_pdf(pdf_pages, "pdfmarkerquokka"), "pdfmarkerquokka"),
            ("handbook.md", sample_markdown(markdown_bytes, "mdmarkernarwhal"), "mdmarkernarwhal"),
            ("manual.docx", sample_docx(max(markdown_bytes // 800, 10), "docxmarkerokapi"), "docxmarkerokapi"),
        )
        peaks = {name.rsplit(".", 1)[1]: {"bytes": float(len(data)), "peak_mb": parse_peak_mb(library, name, data)}
                 for name, data, _ in uploads}
        results = []
        for name, data, marker in uploads:
            t0 = time.perf_counter()
            outcome = await retriever.add_upload(name, data)
            total_ms = (time.perf_counter() - t0) * 1000
            if outcome.status != "added":
                raise RuntimeError(f"{name} was not added: {outcome.reason}")
            hit = await retriever.search(marker, 1)
            if not hit.passages or hit.passages[0].chunk.source != outcome.source:
                raise RuntimeError(f"{name} is not searchable after upload")
            results.append((outcome, total_ms, len(data)))
        (pdf, pdf_ms, _), (md, md_ms, md_size), (docx, docx_ms, docx_size) = results
        return IngestRow(
            engine=settings.engine,
            background_chunks=background,
            background_index_s=round(index_s, 2),
            pdf_pages=pdf.pages or 0,
            pdf_chunks=pdf.chunks,
            pdf_parse_ms=round(pdf.parse_ms, 1),
            pdf_index_ms=round(pdf.index_ms, 1),
            pdf_total_ms=round(pdf_ms, 1),
            markdown_bytes=md_size,
            markdown_chunks=md.chunks,
            markdown_parse_ms=round(md.parse_ms, 1),
            markdown_index_ms=round(md.index_ms, 1),
            markdown_total_ms=round(md_ms, 1),
            docx_bytes=docx_size,
            docx_chunks=docx.chunks,
            docx_total_ms=round(docx_ms, 1),
            parse_peak=peaks,
        )


def run_ingest_bench(settings: Settings, sizes: list[int], pdf_pages: int = 100, markdown_bytes: int = 1_000_000) -> list[IngestRow]:
    """One row per background size."""
    return [asyncio.run(_measure(settings, n, pdf_pages, markdown_bytes)) for n in sizes]


def report_json(rows: list[IngestRow]) -> str:
    """A JSON array of rows."""
    return json.dumps([asdict(r) for r in rows])


def report_text(rows: list[IngestRow]) -> str:
    """A table."""
    lines = ["engine     background  index   | PDF: parse  index  total  | Markdown: parse  index  total | DOCX total"]
    for r in rows:
        lines.append(
            f"{r.engine:<10} {r.background_chunks:>8} ch {r.background_index_s:>5.1f} s | "
            f"{r.pdf_parse_ms:>7.0f} {r.pdf_index_ms:>6.0f} {r.pdf_total_ms:>6.0f} ms | "
            f"{r.markdown_parse_ms:>8.0f} {r.markdown_index_ms:>6.0f} {r.markdown_total_ms:>6.0f} ms | "
            f"{r.docx_total_ms:>7.0f} ms"
        )
    if rows:
        peaks = ", ".join(f"{kind} {v['bytes'] / 2**20:.1f} MB -> {v['peak_mb']:.0f} MB peak"
                          for kind, v in rows[0].parse_peak.items())
        lines.append(f"parse memory (tracemalloc, per upload): {peaks}")
    return "\n".join(lines)
