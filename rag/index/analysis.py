"""The text analyzer shared by indexing and querying: Unicode word tokens, lowercase, stopwords, stemming,
in the language of each text.

On BEIR SciFact, tokenization moves nDCG@10 more than the choice of BM25 library does (FACTS.md): plain
whitespace splitting gives 0.560, regex word tokens 0.654, and stopwords plus Snowball stemming 0.68+.

Any language (issue 16): a word is letters *with their combining marks* (Python's \\w does not match the
vowel signs and viramas of Indic scripts, which split "मॉडेल्स" into one-letter pieces); Chinese and
Japanese, written without spaces, become overlapping character bigrams, as Lucene's CJK analyzer does.
Each text (a chunk, a question) gets a language (`rag.index.languages`) and that language's stopwords and
Snowball stemmer where PyStemmer has one; other scripts keep whole words. Latin-script words inside a
text in another script (names, code, "Phi", "ONNX") are analysed as English, so they match across
languages, as numbers do.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import regex
import Stemmer

from rag.index.languages import PREFIXED, Profile, detect_surely, profile

# ASCII text (most of it): \w runs. Splitting on everything else turns "phi-4-mini" into phi / 4 / mini.
_WORD = re.compile(r"[^\W_]+")
_MAX_CACHE = 1_000_000  # distinct surface words; bounds memory on adversarial input
# Beyond ASCII: runs of Han/kana (made into bigrams), or runs of letters, digits and combining marks (and the
# zero-width joiners some Indic spellings need, removed after).
_CJK_RUN = r"[\p{Han}\p{Hiragana}\p{Katakana}ー]+"
_UNICODE_WORD = regex.compile(_CJK_RUN + r"|(?:(?![\p{Han}\p{Hiragana}\p{Katakana}])[\p{L}\p{N}\p{M}\u200c\u200d])+")
_CJK = regex.compile(_CJK_RUN)
_NEEDS_UNICODE = regex.compile(r"[\p{M}\p{Han}\p{Hiragana}\p{Katakana}\u200c\u200d]")
_JOINERS = str.maketrans("", "", "\u200c\u200d")

# Words that phrase a question or a request rather than name its subject: "How do I run phi-4-mini on
# Ollama?" is about phi-4-mini and Ollama. Dropped from queries only (documents keep every word), and
# only while something else is left. Without this, "can", "i", "do" and "how" outweighed "vllm" for
# "Can I use vLLM with this chat?" (BENCHMARKS.md, the first-contact question set).
QUESTION_WORDS = frozenset(
    "how what when where which who whom whose why whether "
    "do does did doing done can could should would shall may might must "
    "i me my mine myself we us our ours you your yours "
    "am been being please tell explain know want wanted need needs get got make makes let "
    "use using here thing things way anything something someone somebody so also just really actually like okay ok "
    "now again kind sort".split()
)


class Analyzer:
    """Turns text into index terms. One instance serves both documents and queries, in every language.

    `language` fixes the language of every text (no detection), as "english" did before languages were
    detected; None (the default) detects it per text.
    """

    def __init__(self, stopwords: Iterable[str] | None = None, language: str | None = None) -> None:
        self.language = language
        self._fixed: Profile | None = None
        if language is not None:
            base = profile(_ISO.get(language, language))
            self._fixed = Profile(base.code, base.stemmer, frozenset(stopwords) if stopwords is not None else base.stopwords)
        en = profile("en")
        self._english = en if stopwords is None or language is not None else Profile("en", en.stemmer, frozenset(stopwords))
        # Per language: surface word -> term ("" for a stopword). Natural text reuses a small vocabulary, so
        # caching turns per-word stemming and stopword checks into C-speed dict lookups: indexing 10k chunks
        # went from 1.6 s to about 0.5 s of analysis (BENCHMARKS.md).
        self._caches: dict[Profile, dict[str, str]] = {}
        self._stemmers: dict[str, Stemmer.Stemmer] = {}
        # Languages of the documents analysed (and of those a store kept): a question too short to tell its
        # language ("crème brûlée") is also analysed in each Latin-script language the corpus holds.
        # Replaced, never mutated: indexing threads add while questions read it.
        self.seen: frozenset[str] = frozenset()

    def language_of(self, text: str) -> str:
        """The language code the analysis of `text` uses (ISO 639-1, e.g. "en", "mr", "zh")."""
        return self._profile_for(text)[0].code

    def terms(self, text: str) -> list[str]:
        """Index terms of `text`, in order, with repeats (term frequency matters to BM25)."""
        words = _words(text)
        chosen = self._profile_for(text, words)[0]
        if chosen.code not in self.seen:
            self.seen = self.seen | {chosen.code}
        return self._terms(words, chosen)

    def query_terms(self, text: str) -> list[str]:
        """Distinct terms of a query, in first-seen order: a repeated word does not count twice.

        Question words ("how", "can", "i", ...) are left out when the query has other terms.
        """
        return list(dict.fromkeys(t for group in self.query_groups(text) for t in group))

    def query_groups(self, text: str) -> list[tuple[str, ...]]:
        """The query's words as groups of terms, one group per distinct word: a word of a language without
        a stemmer gives its whole form and its prefix, any other word one term. Coverage counts a word as
        found when any of its terms is (rag.index.search.support_signals)."""
        words = _words(text)
        chosen, sure = self._profile_for(text, words, guess=False)
        others = [] if sure or not chosen.latin else [
            profile(code) for code in sorted(self.seen) if code != chosen.code and profile(code).latin]
        subject = [w for w in words if w not in QUESTION_WORDS]
        groups = self._groups(subject, chosen, others) or self._groups(words, chosen, others)
        seen: set[str] = set()
        out: list[tuple[str, ...]] = []
        for group in groups:
            if group[0] not in seen:
                seen.add(group[0])
                out.append(group)
        return out

    def _groups(self, words: list[str], chosen: Profile, others: list[Profile]) -> list[tuple[str, ...]]:
        groups = []
        for w in dict.fromkeys(words):
            terms = self._terms([w], chosen)
            if terms:
                # Its analysis in the corpus's other languages, unless it is a stopword there.
                terms += [t for other in others if (t := self._term(w, other)) and t not in terms]
                groups.append(tuple(dict.fromkeys(terms)))
        return groups

    def _profile_for(self, text: str, words: list[str] | None = None, guess: bool = True) -> tuple[Profile, bool]:
        """The profile to analyse `text` with, and whether its language was detected (not defaulted)."""
        if self._fixed is not None:
            return self._fixed, True
        code, sure = detect_surely(text, words if words is not None else _words(text), guess)
        return (self._english if code == "en" else profile(code)), sure

    def _terms(self, words: list[str], chosen: Profile) -> list[str]:
        if not chosen.latin:  # every script but Latin (Chinese and Japanese included)
            # Latin-script words in a text of another script (names, code) are analysed as English.
            english = self._english
            out: list[str] = []
            for w in words:
                term = self._term(w, english if w.isascii() else chosen)
                if term:
                    out.append(term)
                    if chosen.code in PREFIXED and not w.isascii():
                        prefix = _prefix(term)
                        if prefix != term:
                            out.append(prefix)
            return out
        cache = self._cache(chosen)
        missing = set(words).difference(cache)
        if missing:
            self._fill(chosen, missing)
        return [term for term in map(cache.__getitem__, words) if term]

    def _cache(self, chosen: Profile) -> dict[str, str]:
        cache = self._caches.get(chosen)
        if cache is None:
            cache = self._caches[chosen] = {}
        elif len(cache) > _MAX_CACHE:
            cache.clear()
        return cache

    def _fill(self, chosen: Profile, missing: set[str]) -> None:
        cache = self._cache(chosen)
        fresh = sorted(missing)
        stemmer = self._stemmer(chosen)
        stems = stemmer.stemWords(fresh) if stemmer is not None else fresh
        for word, stem in zip(fresh, stems):
            cache[word] = "" if word in chosen.stopwords or not word.strip("_") else stem

    def _term(self, word: str, chosen: Profile) -> str:
        cache = self._cache(chosen)
        term = cache.get(word)
        if term is None:
            self._fill(chosen, {word})
            term = cache[word]
        return term

    def _stemmer(self, chosen: Profile) -> Stemmer.Stemmer | None:
        if chosen.stemmer is None:
            return None
        stemmer = self._stemmers.get(chosen.stemmer)
        if stemmer is None:
            stemmer = self._stemmers[chosen.stemmer] = Stemmer.Stemmer(chosen.stemmer)
        return stemmer


_ISO = {"english": "en"}


PREFIX_LETTERS = 3


def _prefix(word: str) -> str:
    """The first PREFIX_LETTERS letters of `word` with their combining marks, less the last one's marks.

    Marathi and Kannada have no Snowball stemmer and attach case endings to the word ("मॉडेल्सचा", "of
    the models"): a question's "मॉडेलची" shares no whole word with the page's "मॉडेल्सचा", but both begin
    "मॉडेल". Each such word is indexed whole *and* as this prefix (truncation stemming, which does well in
    Indian-language IR), so an exact match scores on both and an inflected one still on the prefix.
    """
    letters = 0
    end = len(word)
    for i, char in enumerate(word):
        if not unicodedata.category(char).startswith("M"):
            if letters == PREFIX_LETTERS:
                end = i
                break
            letters += 1
    cut = word[:end]
    while cut and unicodedata.category(cut[-1]).startswith("M"):
        cut = cut[:-1]
    return cut or word


def _words(text: str) -> list[str]:
    """The words of `text`, casefolded: ASCII by the fast `re` path; anything else NFC-normalised, with
    combining marks kept in their words and runs of Chinese/Japanese characters as overlapping bigrams."""
    folded = text.casefold()
    if folded.isascii():
        return _WORD.findall(folded)
    folded = unicodedata.normalize("NFC", folded)
    if not _NEEDS_UNICODE.search(folded):  # accents, Greek, Cyrillic...: \w already keeps these words whole
        return _WORD.findall(folded)
    words: list[str] = []
    for word in _UNICODE_WORD.findall(folded):
        if _CJK.fullmatch(word):
            words.extend(word[i:i + 2] for i in range(len(word) - 1)) if len(word) > 1 else words.append(word)
        else:
            words.append(word.translate(_JOINERS))
    return words
