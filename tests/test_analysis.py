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


def test_question_words_are_left_out_of_queries_only() -> None:
    from rag.analysis import Analyzer

    analyzer = Analyzer()
    assert analyzer.query_terms("Can I use vLLM with this chat?") == ["vllm", "chat"]
    assert analyzer.query_terms("How do I run phi-4-mini on Ollama?") == ["run", "phi", "4", "mini", "ollama"]
    assert analyzer.query_terms("how do I?") == ["how", "do", "i"]  # nothing else: keep what there is
    assert "can" in analyzer.terms("You can run it.")  # documents keep every word


def test_identifiers_split_at_underscores() -> None:
    from rag.analysis import Analyzer

    assert Analyzer().terms("RAG_FIRST_TOKEN_TIMEOUT_S") == ["rag", "first", "token", "timeout", "s"]
