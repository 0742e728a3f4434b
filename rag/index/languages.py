"""Which language a text is in, and how that language is analysed (stopwords, Snowball stemmer).

Detection is cheap where it can be: the script decides most languages outright (Kannada, Tamil, Chinese,
Japanese, ...); Latin-script text is decided by its stopwords when one language clearly dominates (every
English chunk and question takes this path, so English pays no model); only what is left (short or mixed
Latin text, Devanagari shared by Hindi, Marathi and Nepali) goes to py3langid, whose model ships inside its
wheel (nothing is downloaded) and is loaded on first use (0.7 s).
"""

from __future__ import annotations

import copy
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import regex
from bm25s import stopwords as bm25s_stopwords

# Indic languages without a Snowball stemmer: each word is also indexed as its first letters (rag.index.analysis).
# Hindi and Nepali too: they share Devanagari with Marathi, and a short Marathi passage taken for Hindi
# (it happens: the three share most short words) must still meet a Marathi question's prefixes.
PREFIXED = frozenset({"mr", "kn", "te", "bn", "gu", "pa", "ml", "hi", "ne"})

# ISO 639-1 -> PyStemmer algorithm (None: no stemmer, whole words are kept).
STEMMERS: dict[str, str | None] = {
    "en": "english", "de": "german", "es": "spanish", "fr": "french", "it": "italian", "pt": "portuguese",
    "nl": "dutch", "sv": "swedish", "da": "danish", "no": "norwegian", "fi": "finnish", "ru": "russian",
    "tr": "turkish", "ro": "romanian", "hu": "hungarian", "pl": "polish", "cs": "czech", "ca": "catalan",
    "id": "indonesian", "el": "greek", "ar": "arabic", "hi": "hindi", "ne": "nepali", "ta": "tamil",
    "mr": None, "kn": None, "te": None, "bn": None, "gu": None, "pa": None, "ml": None, "ko": None,
    "zh": None, "ja": None, "he": None, "th": None, "fa": "persian",
}
LATIN = ("en", "de", "es", "fr", "it", "pt", "nl", "sv", "da", "no", "fi", "tr", "ro", "hu", "pl", "cs", "ca", "id")

# Function and question words for languages bm25s has no list for (written for this app; short on purpose:
# a missing stopword costs a little precision, a wrong one loses a word).
_OWN_STOPWORDS = {
    "hi": "का के की है हैं में से को और या पर यह वह इस उस एक कि तो भी ही नहीं था थे थी हो होता होती होते कर "
          "करना करें करने कैसे क्या कौन कब कहाँ कहां क्यों किस किसी जो जब तक लिए साथ द्वारा अपने बारे आप मैं हम "
          "अगर चाहिए होगा होगी होंगे सकता सकती सकते रहा रही रहे दिखता दिखे मिलेगा मिलेगी बताएं बताइए कितना कितने "
          "कौनसा कौनसी वाला वाली वाले मुझे हमें",
    "mr": "आणि किंवा आहे आहेत होते होता होती हे ही हा या ते ती तो त्या पण तर की कसे कसा कशी काय कोणते कोणता "
          "कोणती कोणत्या कधी कुठे का कोण मी आम्ही तुम्ही आपण एक नाही असे असतो असते करा करू करावे शकतो शकते "
          "मध्ये साठी वर व जर असेल असतील असल्यास दिसत दिसते दिसतो होत होतो झाले झाला झाली करावा करावी करायचे "
          "करायचा करायची करता करतो करते मिळेल मिळतील सांगा सांगाल म्हणजे कशासाठी कशाबद्दल किती कसं काही मला "
          "आम्हाला तुम्हाला हवे हवा हवी पाहिजे",
    "ne": "र वा को का की मा ले छ छन् हो थियो यो त्यो एक पनि कसरी के कुन कहाँ किन",
    "kn": "ಮತ್ತು ಅಥವಾ ಈ ಆ ಇದು ಅದು ಒಂದು ಇದೆ ಇವೆ ಆಗಿದೆ ಹೇಗೆ ಏನು ಯಾವ ಯಾವುದು ಯಾವುವು ಎಲ್ಲಿ ಯಾಕೆ ಏಕೆ ಯಾರು "
          "ನಾನು ನಾವು ನೀವು ಮೇಲೆ ಇಲ್ಲ ಎಂದು ಹಾಗೂ ಬಗ್ಗೆ ಮಾಡುವುದು ಹೇಳಿ ಇದ್ದರೆ ಆದರೆ ಆಗುತ್ತದೆ ಮಾಡಬೇಕು ಬೇಕು ಎಂದರೆ "
          "ಯಾವಾಗ ಎಷ್ಟು ನನಗೆ ನಮಗೆ ನಿಮಗೆ ಏನನ್ನು ಹೇಗೆಂದು ತಿಳಿಸಿ",
    "ta": "மற்றும் அல்லது இது அது ஒரு என்ன எப்படி எங்கே ஏன் யார் எந்த நான் நாம் நீங்கள் இல்லை உள்ளது என்று "
          "எப்போது எவ்வளவு வேண்டும் செய்ய",
}
_BM25S_LISTS = {
    "en": "STOPWORDS_EN", "de": "STOPWORDS_GERMAN", "es": "STOPWORDS_SPANISH", "fr": "STOPWORDS_FRENCH",
    "it": "STOPWORDS_ITALIAN", "pt": "STOPWORDS_PORTUGUESE", "nl": "STOPWORDS_DUTCH", "sv": "STOPWORDS_SWEDISH",
    "da": "STOPWORDS_DANISH", "no": "STOPWORDS_NORWEGIAN", "ru": "STOPWORDS_RUSSIAN", "tr": "STOPWORDS_TURKISH",
}

# Script (the first word of a character's Unicode name) -> language, where the script decides it.
_SCRIPTS = {
    "KANNADA": "kn", "TAMIL": "ta", "TELUGU": "te", "BENGALI": "bn", "GUJARATI": "gu", "GURMUKHI": "pa",
    "MALAYALAM": "ml", "HANGUL": "ko", "CJK": "zh", "HIRAGANA": "ja", "KATAKANA": "ja", "CYRILLIC": "ru",
    "GREEK": "el", "ARABIC": "ar", "HEBREW": "he", "THAI": "th", "DEVANAGARI": "devanagari",
}


@dataclass(frozen=True)
class Profile:
    """How one language is analysed."""

    code: str
    stemmer: str | None
    stopwords: frozenset[str]

    @property
    def latin(self) -> bool:
        return self.code in LATIN


@lru_cache(maxsize=None)
def profile(code: str) -> Profile:
    """The analysis profile of a language code; unknown codes keep whole words and no stopwords."""
    listed = _BM25S_LISTS.get(code)
    words: frozenset[str] = frozenset(getattr(bm25s_stopwords, listed)) if listed else frozenset(
        _OWN_STOPWORDS.get(code, "").split())
    return Profile(code, STEMMERS.get(code), words)


@lru_cache(maxsize=None)
def _detection_words(code: str) -> frozenset[str]:
    """Stopwords for telling languages apart: English's analysis list is Lucene's 33 words, far shorter
    than the others', so detection counts its longer list (bm25s' STOPWORDS_EN_PLUS)."""
    return frozenset(bm25s_stopwords.STOPWORDS_EN_PLUS) if code == "en" else profile(code).stopwords


_URLS = regex.compile(r"\b(?:https?|ftp)://\S+|\bwww\.\S+")
_DETECTION_WORDS = regex.compile(r"[\p{L}\p{N}\p{M}]+")


def detect_surely(text: str, words: list[str], guess: bool = True) -> tuple[str, bool]:
    """The language of `text` (its casefolded `words` given; ISO 639-1), and whether anything said so (False: English by default, e.g. "crème
    brûlée" or "ollama port", too short to tell).

    Addresses say nothing about the language around them ("docs.ragas.io" made a list of links Italian).
    `guess=False` never asks py3langid about Latin-script text (questions: an unsure one is analysed in
    every language of the corpus instead, and a search does not pay the model's 0.6 s load).
    """
    if "://" in text or "www." in text:
        text = _URLS.sub(" ", text)
        words = _DETECTION_WORDS.findall(text.casefold())
    if not words:
        return "en", False
    if not text.isascii():
        script = _dominant_script(text)
        if script == "devanagari":
            return _by_stopwords(words, ("hi", "mr", "ne")) or _identify(text, ("hi", "mr", "ne")) or "hi", True
        if script is not None:
            if script == "zh" and any(_script_of(c) in ("HIRAGANA", "KATAKANA") for c in text):
                return "ja", True
            return script, True
    return _latin(text, words, guess)


def _script_of(char: str) -> str:
    return unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]


_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_ASCII_LETTERS = re.compile(r"[A-Za-z]+")


def _dominant_script(text: str) -> str | None:
    """The language of the non-Latin script holding most letters, if it holds at least a third of them."""
    counts: Counter[str] = Counter()
    latin = sum(map(len, _ASCII_LETTERS.findall(text)))
    for char, n in Counter(_NON_ASCII.findall(text)).items():
        if not (char.isalpha() or unicodedata.category(char).startswith("M")):
            continue
        language = _SCRIPTS.get(_script_of(char))
        if language is None:
            latin += n
        else:
            counts[language] += n
    if not counts:
        return None
    language, letters = counts.most_common(1)[0]
    return language if letters * 3 >= letters + latin else None


def _latin(text: str, words: list[str], guess: bool = True) -> tuple[str, bool]:
    """Latin script: the language whose stopwords clearly dominate, else py3langid, else English."""
    english = _detection_words("en")
    if sum(map(english.__contains__, words)) * 5 >= len(words) >= 2:  # a fifth of the words: English, no doubt
        return "en", True
    clear = _by_stopwords(words, tuple(code for code in _BM25S_LISTS if code in LATIN), least=3)
    if clear is not None:
        return clear, True
    if len(words) < 8 or not guess:  # too short for a statistical guess to beat the default
        return "en", False
    found = _identify(text, LATIN) or "en"
    # Without some of its stopwords, a guess of another language is usually code or a list of names
    # (py3langid calls shell commands Norwegian): those stay English, as their words are.
    evidence = len(set(words) & _detection_words(found))
    if found != "en" and evidence >= 3 and evidence * 10 >= len(words):
        return found, True
    return "en", found == "en"


def _by_stopwords(words: list[str], among: tuple[str, ...], least: int = 2) -> str | None:
    """The language among `among` with at least `least` stopwords in `words` and twice any other's, if one.

    Latin-script text asks for three: a title of English science with "de" and "la" in a Latin name is
    not Spanish, and a question too short to have three is analysed in every language of the corpus.
    """
    distinct = set(words)  # "ob/ob" is one German stopword, not two
    hits = Counter({code: len(distinct & _detection_words(code)) for code in among})
    (best, first), (_, second) = hits.most_common(2)
    return best if first >= least and first >= 2 * second else None


_model: Any = None
_restricted: dict[tuple[str, ...], Any] = {}
_lock = threading.Lock()


def _identify(text: str, among: tuple[str, ...]) -> str | None:
    """py3langid's best guess among `among` (one restricted copy of the model per set of languages)."""
    global _model
    with _lock:
        identifier = _restricted.get(among)
        if identifier is None:
            if _model is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                _model = LanguageIdentifier.from_model_file(MODEL_FILE)
            identifier = _restricted[among] = copy.copy(_model)
            identifier.set_languages([code for code in among if code in _model.nb_classes])
    code, _ = identifier.classify(text)
    return str(code) if code in among else None


# --- refusals: an answer saying the sources cannot answer ------------------------------------------
_REFUSALS = re.compile(
    r"\b(?:not (?:mentioned |stated |found |covered |included |present |provided )?in the (?:provided )?(?:context|sources?|documents?|passages?)"
    r"|(?:context|sources?|documents?|passages?) (?:do(?:es)? not|don't|doesn't) (?:say|mention|contain|provide|cover|include|specify)"
    r"|insufficient (?:information|context|details?|data|evidence)|insufficient to answer"
    r"|(?:information|context|sources?|documents?|passages?|details?|evidence) (?:is|are|seems?|appears?) insufficient"
    r"|not enough information|no information (?:about|on)|cannot (?:answer|find|determine)"
    r"|can't (?:answer|find|determine)|unable to (?:answer|find|determine)|i (?:do not|don't) know)\b",
    re.IGNORECASE,
)
# The same in the languages the app is tested in (a draft answers in the question's language). Phrases, not
# single words: "नाही" ("not") alone is in half of all Marathi sentences. Lower-cased for the search below.
_REFUSAL_PHRASES = tuple(p.casefold() for p in (
    # German, Spanish, French
    "nicht erwähnt", "nicht enthalten", "keine informationen", "geben keine auskunft", "quellen sagen nicht",
    "kann ich nicht beantworten", "nicht beantworten", "no se menciona", "no mencionan", "no contienen",
    "no hay información", "no tengo información", "no puedo responder", "las fuentes no dicen",
    "ne mentionnent pas", "ne contiennent pas", "pas d'information", "aucune information", "je ne peux pas répondre",
    "les sources ne disent pas",
    # Hindi
    "उल्लेख नहीं", "जानकारी नहीं", "स्रोतों में नहीं", "स्रोत नहीं बताते", "उत्तर नहीं दे सकता", "उत्तर नहीं दे सकती",
    "पर्याप्त जानकारी नहीं",
    # Marathi
    "उल्लेख नाही", "माहिती नाही", "स्रोतांमध्ये नाही", "स्रोत सांगत नाहीत", "उत्तर देऊ शकत नाही",
    "पुरेशी माहिती नाही", "दिलेले नाही",
    # Kannada
    "ಉಲ್ಲೇಖಿಸಿಲ್ಲ", "ಮಾಹಿತಿ ಇಲ್ಲ", "ಮೂಲಗಳಲ್ಲಿ ಇಲ್ಲ", "ಉತ್ತರಿಸಲು ಸಾಧ್ಯವಿಲ್ಲ", "ಹೇಳುವುದಿಲ್ಲ",
    # Tamil
    "குறிப்பிடப்படவில்லை", "தகவல் இல்லை", "பதிலளிக்க முடியாது", "கூறவில்லை",
    # Chinese, Japanese
    "没有提到", "未提及", "没有相关信息", "无法回答", "来源中没有", "资料中没有", "没有说明",
    "記載されていません", "記載がありません", "情報がありません", "答えられません", "回答できません",
))
# An answer's sentences: a refusal is said in one of them.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])|\n+")
# What describes when something happens, or what someone says, rather than saying it: "it escalates when
# the draft says the sources are insufficient", "questions the documents do not cover are refused".
# ("questions the documents do not cover": a noun, then the refusal as its clause; not "but the ...").
_DESCRIBED = re.compile(r"\b(?:when|whenever|if|whether|unless|says?|saying|said|states?|stating|claims?|claiming)\b"
                        r"|\b(?!(?:but|and|so|however|unfortunately|sadly|yet|because|as|that)\b)[a-z]+\s+the\s+$", re.IGNORECASE)


def refuses(answer: str) -> bool:
    """True when the answer says the sources cannot answer the question (English and the languages of
    _REFUSAL_PHRASES), in a sentence that says it, not one that describes a refusal ("escalates when the draft
    says the sources are insufficient", "questions the documents do not cover are refused"). A first-contact
    walk saw correct, cited answers about the escalation policy escalated as refusals."""
    for sentence in _SENTENCE_BREAK.split(answer):
        if (match := _REFUSALS.search(sentence)) and not _DESCRIBED.search(sentence[:match.start()]):
            return True
        folded = sentence.casefold()
        if any(phrase in folded for phrase in _REFUSAL_PHRASES):
            return True
    return False
