"""Support calibrated on the user's own corpus, with no labels (issue 24).

The shipped support model was fitted on SciFact; its probabilities do not transfer (on a new medical
collection the 3% refusal threshold refused ~5% of real questions). So the app calibrates on the corpus it
serves, in the background after indexing:
- answerable: pseudo-questions drawn from the corpus itself, the short questions people type about a
  passage (a heading, or a handful of a sentence's telling words, with or without "What about ...?");
- near miss: the same pseudo-questions with their source document masked out (exact statistics: the
  index is kept as raw postings, rag.index.segments, as `rag calibrate` does for train queries);
- off topic: the shipped everyday questions that span many domains (the calibration half; the other half
  is kept for measuring), except those the corpus itself covers word for word (a cooking corpus answers
  "How do I bake sourdough bread?").
The same logistic model is then fitted on these, with the classes balanced, so that `support` means the
same on this corpus as on any other: the estimated chance that the documents answer the question, where
answerable and unanswerable questions are equally likely. The thresholds then read as the same
probabilities everywhere.

Corpora smaller than MIN_DOCUMENTS documents or MIN_CHUNKS chunks keep the shipped prior: too few documents
to draw varied questions from and to mask one out of.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from rag.documents.corpus import DocumentKey
from rag.index.analysis import Analyzer
from rag.index.support import CORPUS_PREDICTORS, SupportModel, predictor_values
from rag.metrics import auroc
from rag.policy.calibration import Example, MaskedCorpus, everyday_questions, fit
from rag.private import private_dir, write_private
from rag.types import Chunk

log = logging.getLogger(__name__)

MIN_DOCUMENTS = 10
MIN_CHUNKS = 40
QUESTIONS = 300  # pseudo-questions drawn: enough for stable weights, ~5 s on 10k chunks
REFIT_CHANGE = 0.2  # recalibrate once the corpus has grown or shrunk by this share of its chunks
TOPIC_L2 = 0.1  # the on-topic fit separates two far-apart groups: a lighter penalty keeps its probabilities sharp
SMALL_CORPUS_L2 = 20.0
PARAPHRASE = 1.0  # up to this many words from elsewhere per word of the passage
COVERED = 1.0  # an everyday question whose every word is in one passage may be on topic here: not a negative
_TEMPLATES = ("{}", "{}?", "What about {}?", "What is {}?", "How does {} work?", "Tell me about {}",
              "Which {}?", "Why {}?", "{} - what does it say?")
_WORD = re.compile(r"\w[\w'\-]*\w|\w", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?。！？।])\s+|\n+")


@dataclass(frozen=True)
class CorpusCalibration:
    """The support model fitted on one corpus, and what the fit found."""

    model: SupportModel
    documents: int
    chunks: int
    questions: int
    near_misses: int
    off_topic: int
    auroc_near_miss: float
    auroc_off_topic: float
    # The share of each group below each threshold (refused as off topic, draft skipped, escalated).
    below: dict[str, dict[str, float]]
    seconds: float
    created: float

    def to_json(self) -> str:
        data = asdict(self)
        data["model"] = json.loads(self.model.to_json())
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> CorpusCalibration:
        raw = json.loads(text)
        model = SupportModel.from_json(json.dumps(raw.pop("model")), "the corpus calibration")
        return cls(model=model, **raw)

    def stale(self, chunks: int) -> bool:
        """True once the corpus has changed enough that the calibration should be redone."""
        return abs(chunks - self.chunks) > REFIT_CHANGE * max(self.chunks, 1)

    def summary(self) -> str:
        """One line for the log, `rag calibrate` and the retrieve step."""
        return (f"calibrated on this corpus ({self.documents} documents, {self.chunks} chunks): "
                f"{self.questions} pseudo-questions, {self.near_misses} near misses, {self.off_topic} off-topic; "
                f"AUROC near miss {self.auroc_near_miss:.3f}, off topic {self.auroc_off_topic:.3f}")


def too_small(documents: int, chunks: int) -> bool:
    """Whether a corpus is too small to calibrate on (then the shipped prior stays)."""
    return documents < MIN_DOCUMENTS or chunks < MIN_CHUNKS


def pseudo_questions(documents: Mapping[str, Sequence[Chunk]], analyzer: Analyzer, count: int = QUESTIONS,
                     seed: int = 7) -> list[tuple[str, str]]:
    """(question, source) pairs drawn from the corpus: documents in turn, a random chunk of each, a heading
    or a sentence's telling words as people type them. Deterministic for a given corpus and seed."""
    rng = random.Random(seed)
    sources = sorted(s for s, chunks in documents.items() if chunks)
    rng.shuffle(sources)
    df: Counter[str] = Counter()  # analysed terms: how telling a word is
    for chunks in documents.values():
        for chunk in chunks:
            df.update(set(analyzer.terms(chunk.text)))
    # People do not ask with the passage's own words only: they paraphrase, and use words the documents
    # do not have at all. So each question gets up to PARAPHRASE times its words again from the rest of
    # the corpus (terms drawn by document frequency), inserted in their analysed form: analysed a second
    # time, some of them no longer match the corpus, like the words of a real question its documents lack.
    # Without them the pseudo-questions were easier than real ones (coverage near 1) and the fit refused one
    # SciFact train question in ten; written out as the corpus's own spellings instead, 2.3%; as they are,
    # 0.4% (BENCHMARKS.md).
    vocabulary = [t for t, _ in df.most_common(5000)]
    weights = [df[t] ** 0.5 for t in vocabulary]
    out: list[tuple[str, str]] = []
    attempts = 0
    while sources and len(out) < count and attempts < count * 4:
        source = sources[attempts % len(sources)]
        attempts += 1
        chunk = rng.choice(list(documents[source]))
        words = _telling_words(chunk, analyzer, df, rng)
        if len(words) < 2:
            continue
        extra = round(len(words) * rng.uniform(0.0, PARAPHRASE))
        for word in rng.choices(vocabulary, weights, k=extra) if vocabulary else []:
            words.insert(rng.randint(0, len(words)), word)
        out.append((rng.choice(_TEMPLATES).format(" ".join(words)), source))
    return out


def _telling_words(chunk: Chunk, analyzer: Analyzer, df: Mapping[str, int], rng: random.Random) -> list[str]:
    """2 to 6 words a person might ask with, in the text's order: the last heading, or the words of one
    sentence weighted towards the rarer (more telling) ones."""
    heading = (chunk.heading or "").split(" › ")[-1].strip()
    if heading and rng.random() < 0.3:
        words = [w for w in _WORD.findall(heading) if analyzer.terms(w)]
        if len(words) >= 2:
            return words[:6]
    sentences = [s for s in _SENTENCE.split(chunk.text) if len(_WORD.findall(s)) >= 4]
    if not sentences:
        return []
    sentence = rng.choice(sentences)
    candidates = []
    for position, word in enumerate(_WORD.findall(sentence)):
        terms = analyzer.terms(word)
        if terms and not word.isdigit():
            candidates.append((position, word, 1.0 / max(df.get(terms[0], 1), 1)))
    if len(candidates) < 2:
        return []
    want = min(len(candidates), rng.randint(2, 6))
    chosen: list[tuple[int, str, float]] = []
    pool = list(candidates)
    for _ in range(want):  # weighted sampling without replacement: rare words more often, not only them
        total = sum(w ** 0.5 for _, _, w in pool)
        pick, acc = rng.random() * total, 0.0
        for i, item in enumerate(pool):
            acc += item[2] ** 0.5
            if acc >= pick:
                chosen.append(pool.pop(i))
                break
    return [word for _, word, _ in sorted(chosen)]


def calibrate_corpus(
    documents: Mapping[DocumentKey, tuple[Chunk, ...]],
    analyzer: Analyzer,
    k1: float,
    b: float,
    title_weight: float,
    thresholds: Mapping[str, float],
    terms: Mapping[DocumentKey, Sequence[Sequence[str]]] | None = None,
    count: int = QUESTIONS,
) -> CorpusCalibration | None:
    """Fit the support model on this corpus (see the module docstring); None when it is too small.

    `terms`: analysed terms per document if the index has them (saves analysing the corpus again);
    `thresholds`: the policy's, by name, to report the share of each group below each."""
    started = time.perf_counter()
    chunks: list[Chunk] = []
    chunk_terms: list[Sequence[str]] = []
    by_source: dict[str, list[int]] = {}
    for key, doc_chunks in documents.items():
        cached = terms.get(key) if terms is not None else None
        for n, chunk in enumerate(doc_chunks):
            by_source.setdefault(key[0], []).append(len(chunks))
            chunks.append(chunk)
            chunk_terms.append(cached[n] if cached is not None and len(cached) == len(doc_chunks) else ())
    if too_small(len(by_source), len(chunks)):
        return None
    missing = [i for i, t in enumerate(chunk_terms) if not t]
    if missing:
        from rag.index.search import index_text

        for i in missing:
            chunk_terms[i] = analyzer.terms(index_text(chunks[i]))
    corpus = MaskedCorpus(chunks, chunk_terms, analyzer, k1, b, title_weight)
    questions = pseudo_questions({s: [chunks[i] for i in numbers] for s, numbers in by_source.items()}, analyzer, count)
    examples: list[Example] = []
    for question, source in questions:
        found = corpus.search(question)
        examples.append(Example("answerable", question, found.signals,
                                bool(found.passages) and found.passages[0].chunk.source == source))
        examples.append(Example("near_miss", question, corpus.search(question, by_source[source]).signals))
    for question in everyday_questions("train"):
        signals = corpus.search(question).signals
        if signals.coverage < COVERED:
            examples.append(Example("off_topic", question, signals))
    counts = Counter(e.group for e in examples)
    described = (f"this corpus: {counts['answerable']} pseudo-questions, {counts['near_miss']} near misses, "
                 f"{counts['off_topic']} everyday questions")
    # Two questions, two fits on the same examples: do the documents answer it (all three groups), and is
    # it about them at all (answerable vs everyday only: the off-topic threshold reads this one).
    # The fewer the documents, the fewer distinct questions behind the fit: a heavier penalty keeps a small
    # corpus's on-topic model from taking its few documents' words for the only on-topic ones.
    topic = fit([e for e in examples if e.group != "near_miss"], described + " (on topic)",
                l2=TOPIC_L2 + SMALL_CORPUS_L2 / len(by_source), features=CORPUS_PREDICTORS)
    model = replace(fit(examples, described, features=CORPUS_PREDICTORS), topic=topic)
    scored = [replace(e, signals=replace(e.signals, support=model.predict(predictor_values(e.signals)),
                                         on_topic=model.on_topic(predictor_values(e.signals))))
              for e in examples]

    def values(group: str, name: str) -> list[float]:
        return [e.signals.topical if name == "off_topic_support" else e.signals.support for e in scored
                if e.group == group]

    below = {name: {group: (sum(v < threshold for v in values(group, name)) / len(values(group, name))
                            if values(group, name) else 0.0)
                    for group in ("answerable", "near_miss", "off_topic")}
             for name, threshold in thresholds.items()}

    def support(group: str) -> list[float]:
        return values(group, "min_support")

    return CorpusCalibration(
        model=model, documents=len(by_source), chunks=len(chunks), questions=counts["answerable"],
        near_misses=counts["near_miss"], off_topic=counts["off_topic"],
        auroc_near_miss=round(auroc(support("answerable"), support("near_miss")), 4),
        auroc_off_topic=round(auroc(values("answerable", "off_topic_support"), values("off_topic", "off_topic_support")), 4),
        below=below, seconds=round(time.perf_counter() - started, 3), created=time.time())


class CalibrationStore:
    """The corpus calibration kept beside the index store (owner-only), so a restart does not redo it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> CorpusCalibration | None:
        try:
            return CorpusCalibration.from_json(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - any defect (an older format too) means: calibrate again
            log.warning("corpus calibration %s ignored (%s): calibrating again", self.path, exc)
            return None

    def save(self, calibration: CorpusCalibration) -> None:
        try:
            private_dir(self.path.parent)
            write_private(self.path, calibration.to_json().encode())
        except OSError as exc:
            log.warning("corpus calibration not saved (%s): the next start calibrates again", exc.strerror or exc)
