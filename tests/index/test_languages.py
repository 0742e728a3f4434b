"""Documents and questions in any language (issue 16): detection, mixed corpora, the seed pages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.index.analysis import Analyzer
from rag.bench.languages import read_questions, section_hits
from rag.cli.main import cli
from rag.config import Settings
from rag.runtime import build_retriever
from rag.index.search import build_index, search_index
from rag.types import Chunk
from tests.conftest import REPO, SHARED_DATA

SEEDS = SHARED_DATA / "seeds"
QUESTIONS = REPO / "tests" / "data" / "seed_questions.jsonl"
needs_seeds = pytest.mark.skipif(not (SEEDS / "workshop-session04.mr.md").exists(), reason=f"seed pages not at {SEEDS}")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Foundry Local चा डिफॉल्ट पोर्ट कोणता आहे?", "mr"),
        ("फाउंड्री लोकल का डिफ़ॉल्ट पोर्ट क्या है?", "hi"),
        ("ಸೇವೆಯ ಡೀಫಾಲ್ಟ್ ಪೋರ್ಟ್ ಯಾವುದು?", "kn"),
        ("சேவையின் இயல்புநிலை போர்ட் எது?", "ta"),
        ("服务的默认端口是什么？", "zh"),
        ("サービスのデフォルトポートは何ですか？", "ja"),
        ("Welcher Port ist der Standard für den Dienst?", "de"),
        ("¿Cuál es el puerto predeterminado del servicio?", "es"),
        ("Which port does the service use by default?", "en"),
        ("ollama port", "en"),  # too short to tell: English, the default
    ],
)
def test_questions_get_their_language(text: str, language: str) -> None:
    assert Analyzer().language_of(text) == language


def test_a_question_finds_the_document_in_its_own_language() -> None:
    texts = {
        "en.md": ("Models", "The models run locally on your computer; start the service first, then pull the models."),
        "de.md": ("Modelle", "Die Modelle laufen lokal auf Ihrem Rechner; starten Sie zuerst den Dienst, dann laden "
                             "Sie die Modelle herunter."),
        "mr.md": ("मॉडेल्स", "मॉडेल्स तुमच्या संगणकावर स्थानिक पातळीवर चालतात; आधी सेवा सुरू करा, मग मॉडेल्स डाउनलोड करा."),
        "zh.md": ("模型", "模型在您的电脑上本地运行；请先启动服务，然后下载模型。"),
    }
    analyzer = Analyzer()
    chunks = [Chunk(name, 0, text, 0, len(text), title) for name, (title, text) in texts.items()]
    snapshot = build_index(chunks, analyzer, "rank-bm25", 1.2, 0.75, title_weight=0.2)
    for question, expected in [
        ("Wie starte ich den Dienst, damit die Modelle lokal laufen?", "de.md"),
        ("मॉडेल्स स्थानिक पातळीवर कसे चालवायचे?", "mr.md"),
        ("如何在本地运行模型？", "zh.md"),
        ("How do I run the models locally?", "en.md"),
    ]:
        top = search_index(snapshot, analyzer, question, 2).passages
        assert top and top[0].chunk.source == expected, (question, [p.chunk.source for p in top])


@needs_seeds
@pytest.mark.parametrize("with_bundled", [False, True])
def test_seed_page_questions_find_their_sections(tmp_path: Path, with_bundled: bool) -> None:
    """The Marathi and Kannada workshop pages, alone and uploaded beside the English corpus: readers'
    questions (≥ 15 per language, not copied sentences) find the section that answers them."""
    corpus = tmp_path / "corpus"
    if with_bundled:
        shutil.copytree(REPO / "docs_corpus", corpus)
    else:
        corpus.mkdir()
    for page in ("workshop-session04.mr.md", "workshop-session04.kn.md"):
        shutil.copy(SEEDS / page, corpus / page)
    questions = read_questions(QUESTIONS)
    results = {r.language: r for r in section_hits(corpus, questions)}
    assert set(results) == {"mr", "kn"} and all(r.questions >= 15 for r in results.values())
    # Measured: mr 0.75 / 0.90, kn 0.90 / 0.95 (before: 0.55 / 0.80 and 0.75-0.80 / 0.85).
    for r in results.values():
        assert r.hit_at_1 >= 0.7 and r.hit_at_3 >= 0.85, (r.language, r.hit_at_1, r.hit_at_3, r.misses)
    assert all(s >= Settings(corpus_dir=corpus, _env_file=None).off_topic_support for s in _supports(corpus, questions)), \
        "a reader's question about the page was taken for off topic"


def _supports(corpus: Path, questions: list[dict[str, object]]) -> list[float]:
    retriever = build_retriever(Settings(corpus_dir=corpus, data_dir=corpus.parent / "data", _env_file=None))
    retriever.warm_up()
    return [retriever.index.search(str(row["question"]), 5).signals.support for row in questions]


@needs_seeds
def test_bench_languages_prints_hits_per_language(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEEDS / "workshop-session04.mr.md", corpus)
    result = CliRunner().invoke(cli, ["bench", "languages", "--corpus", str(corpus), "--questions", str(QUESTIONS)])
    assert result.exit_code == 0, result.output
    assert "mr: 20 questions · hit@1" in result.output
