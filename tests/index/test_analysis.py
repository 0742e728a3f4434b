import pytest

from rag.index.analysis import Analyzer


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
    from rag.index.analysis import Analyzer

    analyzer = Analyzer()
    assert analyzer.query_terms("Can I use vLLM with this chat?") == ["vllm", "chat"]
    assert analyzer.query_terms("How do I run phi-4-mini on Ollama?") == ["run", "phi", "4", "mini", "ollama"]
    assert analyzer.query_terms("how do I?") == ["how", "do", "i"]  # nothing else: keep what there is
    assert "can" in analyzer.terms("You can run it.")  # documents keep every word


def test_identifiers_split_at_underscores() -> None:
    from rag.index.analysis import Analyzer

    assert Analyzer().terms("RAG_FIRST_TOKEN_TIMEOUT_S") == ["rag", "first", "token", "timeout", "s"]


# --- languages (issue 16) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        # Vowel signs and viramas stay in their words (Python's \w alone split these into one-letter pieces).
        ("मॉडेल्स स्थानिक पातळीवर चालवा", "mr", ["मॉडेल्स", "मॉडेल", "स्थानिक", "स्थान", "पातळीवर", "पातळ", "चालवा", "चालव"]),
        ("मॉडल को स्थानीय रूप से कैसे चलाएं", "hi", ["मॉडल", "स्थानीय", "स्थान", "रूप", "चल"]),
        ("ಮಾದರಿಗಳನ್ನು ಸ್ಥಳೀಯವಾಗಿ ಚಲಾಯಿಸಿ", "kn", ["ಮಾದರಿಗಳನ್ನು", "ಮಾದರ", "ಸ್ಥಳೀಯವಾಗಿ", "ಸ್ಥಳ", "ಚಲಾಯಿಸಿ", "ಚಲಾಯ"]),
        # Tamil: Snowball's Tamil stemmer.
        ("மாதிரிகளை உள்ளூரில் இயக்கவும்", "ta", ["மாதிரி", "உள்ளூர்", "இய"]),
        # Chinese and Japanese: overlapping character bigrams, as Lucene's CJK analyzer makes them.
        ("在本地运行模型", "zh", ["在本", "本地", "地运", "运行", "行模", "模型"]),
        ("モデルを実行する", "ja", ["モデ", "デル", "ルを", "を実", "実行", "行す", "する"]),
        # German: its stopwords and its stemmer, not English's.
        ("Wie starte ich die Modelle lokal auf meinem Rechner?", "de", ["start", "modell", "lokal", "rechn"]),
        ("Die Modelle laufen in der App auf dem Rechner", "de", ["modell", "lauf", "app", "rechn"]),
    ],
)
def test_words_stay_whole_in_every_script(text: str, language: str, expected: list[str]) -> None:
    analyzer = Analyzer()
    assert analyzer.language_of(text) == language
    assert analyzer.terms(text) == expected


def test_names_numbers_and_code_match_across_languages() -> None:
    analyzer = Analyzer()
    marathi = analyzer.terms("Foundry Local चा डिफॉल्ट पोर्ट 5273 आहे आणि phi-4-mini मॉडेल वापरा")
    english = analyzer.terms("Foundry Local listens on port 5273 with the phi-4-mini model")
    german = analyzer.terms("Foundry Local lauscht auf Port 5273 mit dem Modell phi-4-mini und den anderen")
    for term in ("foundri", "local", "5273", "phi", "4", "mini"):
        assert term in marathi and term in english, term
    assert {"5273", "phi", "mini"} <= set(german)


def test_english_analysis_is_unchanged() -> None:
    # SciFact-like text with a Greek letter and a dash: English, the same terms as before languages.
    analyzer = Analyzer()
    text = "β-cell apoptosis is increased in type 2 diabetes – the results were significant."
    assert analyzer.language_of(text) == "en"
    assert analyzer.terms(text) == Analyzer(language="english").terms(text)
    assert analyzer.query_terms("How do I run phi-4-mini on Ollama?") == ["run", "phi", "4", "mini", "ollama"]


def test_zero_width_joiners_do_not_split_or_change_words() -> None:
    analyzer = Analyzer()
    assert analyzer.terms("ऱ्‍या मॉडेल") == analyzer.terms("ऱ्या मॉडेल")
