"""The `support` signal: the estimated probability that the corpus answers a question, from retrieval alone.

No single lexical signal separates answerable questions from the rest on every collection (issue 14: on
SciFact the raw top score separates everyday questions at 0.965 AUROC, on a collection of short queries at
0.56). So `support` combines query-performance predictors that do not depend on the corpus's score scale,
through a logistic model fitted offline by `rag calibrate` (rag/policy/calibration.py) and shipped as
`rag/data/support_model.json`. Everything here is pure and cheap: a few numpy operations on scores the
search already computed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from rag.errors import ConfigError
from rag.types import SupportSignals

# How many of the best scores the distribution predictors (NQC, skew) look at.
SIGNAL_DEPTH = 100
WIG_DEPTH = 5
CLIP = 3.0  # standard deviations

# The predictors, in the order the model's weights are stored.
# Question length and typicality are measured and reported but not predictors. Length describes how a
# collection phrases its questions (SciFact's are long claims: AUROC 0.97 against everyday questions, 0.50
# near miss by construction), and weighting it made every short question look unsupported. Typicality
# (average idf) separates everyday questions on SciFact at 0.97 and lifted support's off-topic AUROC to
# 0.977, but on the 76-chunk bundled corpus, where every word is rare, it took "How is the cost
# calculated?" for off topic (support 0.02): its scale does not transfer between corpus sizes.
PREDICTORS = ("normalized_top", "nqc", "wig", "skew", "coverage", "weighted_coverage", "known_share")
# A model fitted on the corpus it serves (rag.policy.corpus_calibration) may also weigh typicality: its
# scale is the corpus's own, so the reason it is left out of the shipped model does not apply.
# The raw top score likewise: its scale is this corpus's (on SciFact train it separates everyday questions
# at 0.987 AUROC, better than any scale-free predictor).
CORPUS_PREDICTORS = (*PREDICTORS, "typicality", "top_score")


def predictors(
    scores: Sequence[float],
    max_score: float,
    coverage: float,
    weighted_coverage: float,
    known_share: float,
    query_terms: int,
    typicality: float = 0.0,
) -> dict[str, float]:
    """The query-performance predictors, each scale-free so one model serves any collection.

    `scores`: the best scores, best first (up to SIGNAL_DEPTH); `max_score`: the highest BM25 score the
    question could reach (every term at saturation in a document of average length, each field weighted),
    so a term the corpus lacks lowers every normalised score.
    - normalized_top: top score / max_score.
    - nqc: normalised query commitment, the spread of the top scores, here relative to max_score.
    - wig: weighted information gain with the corpus scoring zero: mean of the top WIG_DEPTH scores over
      max_score, divided by sqrt(query terms) as in the original.
    - skew: skewness of the top scores (one clear winner vs a flat tail).
    - coverage / weighted_coverage: the share (plain / idf-weighted) of query terms in the top passage.
    - known_share: the idf-weighted share of query terms that occur anywhere in the corpus.
    - typicality: 1 - (mean idf of the question's words) / (idf of a word no document holds): how common
      the question's vocabulary is in this corpus (average idf, a pre-retrieval predictor). Questions
      about what a collection is about use its everyday words; everyday questions use words it rarely has.
    """
    top = np.asarray(scores[:SIGNAL_DEPTH], dtype=np.float64)
    scale = max_score if max_score > 0 else 1.0
    if len(top):
        normalized = top / scale
        nqc = float(normalized.std())
        wig = float(normalized[:WIG_DEPTH].mean()) / math.sqrt(max(query_terms, 1))
        spread = float(top.std())
        skew = float(np.mean(((top - top.mean()) / spread) ** 3)) if len(top) >= 3 and spread > 0 else 0.0
        normalized_top = float(normalized[0])
    else:
        normalized_top = nqc = wig = skew = 0.0
    return {
        "top_score": float(top[0]) if len(top) else 0.0,
        "normalized_top": normalized_top,
        "nqc": nqc,
        "wig": wig,
        "skew": skew,
        "coverage": coverage,
        "weighted_coverage": weighted_coverage,
        "known_share": known_share,
        "typicality": typicality,
    }


def predictor_values(signals: SupportSignals) -> dict[str, float]:
    """The predictors a SupportSignals carries, by name."""
    return {
        "top_score": signals.top_score,
        "normalized_top": signals.normalized_top,
        "nqc": signals.nqc,
        "wig": signals.wig,
        "skew": signals.skew,
        "coverage": signals.coverage,
        "weighted_coverage": signals.weighted_coverage,
        "known_share": signals.known_share,
        "typicality": signals.typicality,
    }


@dataclass(frozen=True)
class SupportModel:
    """A logistic model over standardised predictors: support = sigmoid(bias + Σ w·(x − mean)/scale)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    fitted_on: str = ""  # where the coefficients came from (data set, split, sizes), for the record
    # A second model, answerable vs everyday questions only (near misses left out): is the question about
    # this corpus at all? Fitted with a corpus calibration; None for the shipped model.
    topic: SupportModel | None = None

    def on_topic(self, values: Mapping[str, float]) -> float | None:
        """The estimated probability that the question is about this corpus (None: no topic model)."""
        return self.topic.predict(values) if self.topic is not None else None

    def predict(self, values: Mapping[str, float]) -> float:
        """The estimated probability that the corpus answers the question, in [0, 1]."""
        # Standardised values are clipped: a collection unlike the one fitted on (a tiny corpus, one-word
        # questions) must not push one predictor to dozens of standard deviations and decide alone.
        z = self.bias + sum(
            w * min(max((values[name] - m) / s, -CLIP), CLIP)
            for name, m, s, w in zip(self.features, self.mean, self.scale, self.weights)
        )
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "support model") -> SupportModel:
        try:
            raw = json.loads(text)
            topic = raw.get("topic")
            model = cls(
                features=tuple(str(f) for f in raw["features"]),
                mean=tuple(float(v) for v in raw["mean"]),
                scale=tuple(float(v) for v in raw["scale"]),
                weights=tuple(float(v) for v in raw["weights"]),
                bias=float(raw["bias"]),
                fitted_on=str(raw.get("fitted_on", "")),
                topic=cls.from_json(json.dumps(topic), where) if isinstance(topic, dict) else None,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{where} is not a support model written by `rag calibrate` ({exc})") from exc
        unknown = set(model.features) - set(CORPUS_PREDICTORS)
        sizes = {len(model.features), len(model.mean), len(model.scale), len(model.weights)}
        if unknown or len(sizes) != 1 or any(s <= 0 for s in model.scale):
            raise ConfigError(f"{where}: unknown predictors {sorted(unknown)} or mismatched coefficient lists")
        return model

    @classmethod
    def load(cls, path: Path) -> SupportModel:
        """A model written by `rag calibrate --out`."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the support model {path}: {exc.strerror or exc}") from exc
        return cls.from_json(text, str(path))


def calibration_label(model: SupportModel | None) -> str:
    """Which calibration gave a support value, for the retrieve step's details."""
    if model is None:
        model = shipped_model()
    if model.fitted_on.startswith("this corpus"):
        return f"calibrated on this corpus: {model.fitted_on.removeprefix('this corpus: ')}"
    return f"shipped prior, fitted on {model.fitted_on.split(':')[0] or 'another collection'}"


@lru_cache(maxsize=1)
def shipped_model() -> SupportModel:
    """The coefficients fitted on SciFact's train queries (`rag calibrate`), shipped with the app."""
    text = resources.files("rag").joinpath("data/support_model.json").read_text(encoding="utf-8")
    return SupportModel.from_json(text, "rag/data/support_model.json")
