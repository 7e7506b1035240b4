"""The embedded offline default: no network, no key, real (if modest) answers.

Classification is TF-IDF cosine similarity between the record and each label's description and
examples, turned into a confidence by a softmax; the summary is extractive (the record's most
informative sentence, cut to the word bound). Both are labelled as what they are: ``source`` is
``model`` and ``model`` names this embedded method, never an LLM. An extract task is answered by
the spec's rule extractor (``enrichment/extraction.py``): ``source`` is ``rule`` and ``model``
names the rules (``embedded/invoice-rules-v1``).
"""

import math
import re
import time
from collections import Counter

from enrichment.extraction import mean_confidence, rule_model_id, rule_record
from enrichment.models import (
    SOURCE_MODEL,
    SOURCE_RULE,
    STATUS_FAILED,
    STATUS_OK,
    RecordIn,
    RecordOut,
    TaskSpec,
    Taxonomy,
)
from enrichment.providers.base import EMBEDDED_MODEL_ID, EXTRACTIVE_SUMMARY_ID

__all__ = ["EMBEDDED_MODEL_ID", "EXTRACTIVE_SUMMARY_ID", "EmbeddedProvider"]

# Softmax temperature over cosine similarities; 0.08 spreads confidence between a clear match
# (~0.9) and a guess among labels with no shared words (~1/len(labels)).
_TEMPERATURE = 0.08
# In a multi-label taxonomy, further labels with at least this softmax share are added.
MULTI_LABEL_MIN_SHARE = 0.25
_WORD = re.compile(r"[a-z][a-z0-9]+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "of",
        "on",
        "or",
        "our",
        "the",
        "their",
        "this",
        "to",
        "was",
        "were",
        "with",
        "without",
        "we",
        "you",
        "your",
        "during",
        "after",
        "before",
        "per",
        "its",
    ]
)
_FIELD_PREFIX = re.compile(r"^\s*[A-Za-z_ ]{1,30}:\s*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def tokens(text: str) -> list[str]:
    """Lower-cased, stemmed content words."""
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


class LabelSimilarityClassifier:
    """TF-IDF cosine similarity of a text to each label's description and examples."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.labels = taxonomy.names
        docs = [
            Counter(tokens(" ".join([lab.name.replace("_", " "), lab.description, *lab.examples])))
            for lab in taxonomy.labels
        ]
        n_docs = len(docs)
        df = Counter(term for doc in docs for term in doc)
        self.idf = {t: math.log((1 + n_docs) / (1 + d)) + 1.0 for t, d in df.items()}
        self.vectors = [self._weigh(doc) for doc in docs]

    def _weigh(self, counts: Counter) -> dict[str, float]:
        vec = {t: c * self.idf.get(t, 0.0) for t, c in counts.items() if t in self.idf}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {t: v / norm for t, v in vec.items()}

    def scores(self, text: str) -> list[tuple[str, float]]:
        """Every label with its softmax share, strongest first (``other`` first on no overlap)."""
        vec = self._weigh(Counter(tokens(text)))
        sims = [sum(w * lv.get(t, 0.0) for t, w in vec.items()) for lv in self.vectors]
        top = max(sims)
        weights = [math.exp((s - top) / _TEMPERATURE) for s in sims]
        total = sum(weights)
        ranked = sorted(
            ((self.labels[i], weights[i] / total) for i in range(len(sims))),
            key=lambda pair: -pair[1],
        )
        if top == 0.0 and "other" in self.labels:
            ranked.sort(key=lambda pair: pair[0] != "other")
        return ranked

    def predict(self, text: str) -> tuple[str, float]:
        """The most similar label and a softmax confidence over all labels."""
        return self.scores(text)[0]

    def shared_terms(self, text: str, label: str, limit: int = 5) -> list[str]:
        """The record's words that weigh most in ``label``'s description and examples."""
        vector = self.vectors[self.labels.index(label)]
        words = dict.fromkeys(tokens(text))
        return sorted((w for w in words if w in vector), key=lambda w: -vector[w])[:limit]


def extractive_summary(text: str, max_words: int) -> str:
    """The first sentence with real content (field labels stripped), cut to ``max_words``."""
    sentences: list[str] = []
    for line in text.splitlines():
        body = _FIELD_PREFIX.sub("", line).strip()
        sentences.extend(s.strip() for s in _SENTENCE.split(body) if s.strip())
    informative = [s for s in sentences if len(tokens(s)) >= 3] or sentences or [text.strip()]
    best = max(informative, key=lambda s: len(tokens(s)))
    words = best.split()
    if len(words) <= max_words:
        return best
    return " ".join(words[:max_words]).rstrip(",;:") + "…"


class EmbeddedProvider:
    """Offline provider for any task: similarity classifier and extractive summary."""

    model_id = EMBEDDED_MODEL_ID

    def __init__(self) -> None:
        self._classifiers: dict[str, LabelSimilarityClassifier] = {}

    def run(self, task: TaskSpec, records: list[RecordIn]) -> list[RecordOut]:
        """Answer every record locally; an unexpected error fails that record only."""
        classifier = None
        if task.taxonomy is not None:
            classifier = self._classifiers.setdefault(
                task.taxonomy.name, LabelSimilarityClassifier(task.taxonomy)
            )
        results = []
        for record in records:
            started = time.perf_counter()
            out = RecordOut(
                id=record.id, status=STATUS_OK, source=SOURCE_MODEL, model=self.model_id
            )
            if task.extraction is not None:
                out.source, out.model = SOURCE_RULE, rule_model_id(task.extraction)
            try:
                if task.extraction is not None:
                    found = rule_record(task.extraction, record.text)
                    out.extraction = found.model_dump_json()
                    out.confidence = mean_confidence(found, task.extraction)
                if classifier is not None:
                    ranked = classifier.scores(record.text)
                    out.label, confidence = ranked[0]
                    out.confidence = round(confidence, 4)
                    out.labels = [out.label]
                    if task.taxonomy is not None and task.taxonomy.multi_label:
                        out.labels += [
                            name for name, share in ranked[1:] if share >= MULTI_LABEL_MIN_SHARE
                        ]
                    if task.rationale:
                        terms = classifier.shared_terms(record.text, out.label)
                        out.rationale = (
                            f"shares {', '.join(repr(t) for t in terms)} with the description "
                            f"of {out.label}"
                            if terms
                            else f"no word in common with any label; {out.label} by default"
                        )
                if task.summary_max_words is not None:
                    out.summary = extractive_summary(record.text, task.summary_max_words)
                out.attempts = 1
            except Exception as exc:  # one bad record must not fail the batch
                out.status, out.error = STATUS_FAILED, f"{type(exc).__name__}: {exc}"[:500]
            out.latency_ms = (time.perf_counter() - started) * 1000
            results.append(out)
        return results
