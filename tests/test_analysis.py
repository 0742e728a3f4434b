from rag.analysis import Analyzer


def test_lowercases_drops_stopwords_and_stems() -> None:
    assert Analyzer().terms("The Running of the Models is FASTER") == ["run", "model", "faster"]


def test_unicode_words_and_numbers_are_tokens() -> None:
    terms = Analyzer().terms("Phi-4-mini: naïve café, Ελληνικά 中文 128K")
    assert terms[:3] == ["phi", "4", "mini"]
    assert "naïv" in terms and "café" in terms and "ελληνικά" in terms and "中文" in terms and "128k" in terms


def test_same_terms_for_documents_and_queries() -> None:
    analyzer = Analyzer()
    assert analyzer.terms("escalated escalation escalating") == ["escal"] * 3
    assert analyzer.query_terms("escalated escalation escalating") == ["escal"]


def test_cached_and_uncached_analysis_agree() -> None:
    text = "Retrieval quality depends on tokenization, stemming and stopwords; retrieval speed on the engine."
    warm = Analyzer()
    warm.terms(text)
    assert warm.terms(text) == Analyzer().terms(text)


def test_punctuation_only_gives_no_terms() -> None:
    assert Analyzer().terms("?!... -- __ ()") == []
