"""A text classifier trained with Spark ML on labelled history, with a calibrated confidence.

Features are word unigrams and bigrams plus character n-grams of the text (merchant names are
abbreviated and misspelled: ``sainsburys s/mkts``, ``amazon mktplce eu-uk``), optionally one token
per categorical context column (``directorate=cyp&f``), weighted by TF-IDF; the model is a
multinomial logistic regression. Its confidence is the max class probability after temperature
scaling: one scalar ``T`` fitted on held-out rows by minimising the log loss, so that rows scored
0.7 are right about 70% of the time and a confidence threshold can route the doubtful ones to an
LLM. ``T`` only rescales the margins, so the predicted label never changes.

Labels seen fewer than ``min_label_count`` times can be folded into ``other``: the model then
answers ``other`` (and usually a low confidence) instead of guessing among classes it has barely
seen. Folding is off by default (``min_label_count=1``).

Where there is no labelled history, the embedded label-similarity classifier
(``enrichment.providers.embedded``) stays the default; choosing between the two is the caller's.
``benchmarks/classifier_quality.py`` compares them on public data.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import (
    IDF,
    CountVectorizerModel,
    NGram,
    RegexTokenizer,
    SQLTransformer,
    StopWordsRemover,
)
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

OTHER_LABEL = "other"
PREDICTED_LABEL = "predicted_label"
CONFIDENCE = "confidence"
NEEDS_LLM = "needs_llm"

# Internal columns, prefixed so they cannot collide with the caller's.
_TEXT = "_clf_text"
_LABEL = "_clf_label"
_WORDS = "_clf_words"
_CONTENT = "_clf_content_words"
_BIGRAMS = "_clf_bigrams"
_CHARS = "_clf_chars"
_CONTEXT = "_clf_context"
_TERMS = "_clf_terms"
_TF = "_clf_tf"
_FEATURES = "_clf_features"
_RAW = "_clf_raw"
_PROBABILITY = "_clf_probability"
_PREDICTION = "_clf_prediction"

# The share of labelled history held out for calibration, and the seed of its hash.
CALIBRATION_FRACTION = 0.15
HOLD_OUT_SEED = 7

_MIN_TEMPERATURE, _MAX_TEMPERATURE = 0.05, 20.0
_MAX_CALIBRATION_ROWS = 20_000
# Training rows are gathered in one partition, whatever the input's layout: Spark adds the
# partial sums of several partitions (IDF, L-BFGS gradients) in the order their tasks finish.
_TRAINING_PARTITIONS = 1


@dataclass(frozen=True)
class ClassifierParams:
    """Feature and model settings; the defaults were chosen on the benchmark data.

    Attributes:
        char_ngrams: lengths of the character n-grams (empty: none).
        word_bigrams: whether to add word bigrams.
        remove_stop_words: drop English stop words from the unigrams (bigrams keep them).
        min_df: a term must occur in this many training rows to be a feature.
        vocab_size: at most this many terms, the most frequent first.
        reg_param: L2 regularisation of the logistic regression.
        max_iter: L-BFGS iterations.
        min_label_count: labels with fewer training rows are folded into ``other``.
    """

    char_ngrams: tuple[int, ...] = (3,)
    word_bigrams: bool = True
    remove_stop_words: bool = False
    min_df: int = 2
    vocab_size: int = 20_000
    reg_param: float = 1e-3
    max_iter: int = 50
    min_label_count: int = 1


@dataclass(frozen=True)
class TrainedClassifier:
    """A fitted feature pipeline and model, its labels and its calibration.

    Attributes:
        pipeline: text → features → logistic regression (prediction is the label index).
        labels: label names by index.
        temperature: margins are divided by it before the softmax (1.0: uncalibrated).
        context_cols: categorical columns the model reads besides the text.
        training_rows: rows the model was fitted on.
        calibration_rows: held-out rows the temperature was fitted on (0: none).
        holdout_accuracy: share of those rows the model labels right (None: none held out).
        holdout_log_loss: their mean log loss after temperature scaling (None: none held out).
    """

    pipeline: PipelineModel
    labels: tuple[str, ...]
    temperature: float = 1.0
    context_cols: tuple[str, ...] = ()
    training_rows: int = 0
    calibration_rows: int = 0
    holdout_accuracy: float | None = None
    holdout_log_loss: float | None = None


def _blank(c: Column) -> Column:
    return c.isNull() | (F.trim(c) == "")


def _normalized_text(text: Column) -> Column:
    """Lower case, runs of whitespace collapsed, padded with a space for character n-grams."""
    body = F.regexp_replace(F.lower(F.trim(text)), r"\s+", " ")
    return F.concat(F.lit(" "), F.coalesce(body, F.lit("")), F.lit(" "))


def _context_tokens(context_cols: Sequence[str]) -> Column:
    """One ``column=value`` token per non-blank context value, value trimmed and lower-cased."""
    tokens = [
        F.when(~_blank(F.col(c)), F.concat(F.lit(f"{c}="), F.lower(F.trim(F.col(c)))))
        for c in context_cols
    ]
    return F.filter(F.array(*tokens), lambda t: t.isNotNull()) if tokens else F.array()


def _with_inputs(df: DataFrame, text_col: str, context_cols: Sequence[str]) -> DataFrame:
    return df.withColumns(
        {
            _TEXT: _normalized_text(F.col(text_col)),
            _CONTEXT: _context_tokens(context_cols).cast("array<string>"),
        }
    )


def _term_stages(params: ClassifierParams) -> list:
    """Tokenise words and characters and gather every term of a row in one array."""
    stages: list = [RegexTokenizer(inputCol=_TEXT, outputCol=_WORDS, pattern=r"[^\p{L}\p{N}]+")]
    unigrams = _WORDS
    if params.remove_stop_words:
        stages.append(StopWordsRemover(inputCol=_WORDS, outputCol=_CONTENT))
        unigrams = _CONTENT
    term_arrays = [unigrams, _CONTEXT]
    if params.word_bigrams:
        stages.append(NGram(n=2, inputCol=_WORDS, outputCol=_BIGRAMS))
        term_arrays.append(_BIGRAMS)
    if params.char_ngrams:
        stages.append(RegexTokenizer(inputCol=_TEXT, outputCol=_CHARS, pattern=".", gaps=False))
        for n in params.char_ngrams:
            stages.append(NGram(n=n, inputCol=_CHARS, outputCol=f"{_CHARS}_{n}"))
            term_arrays.append(f"{_CHARS}_{n}")
    stages.append(
        SQLTransformer(
            statement=f"SELECT *, concat({', '.join(term_arrays)}) AS {_TERMS} FROM __THIS__"
        )
    )
    return stages


def _vocabulary(terms: DataFrame, params: ClassifierParams) -> CountVectorizerModel:
    """The term counter of ``CountVectorizer`` (terms in ``min_df`` rows or more, the
    ``vocab_size`` most frequent), but with ties ordered by term: Spark's own ``top`` orders equal
    counts by the order its tasks happened to finish, which moves a term's feature index (and the
    model's sums) from one fit to the next."""
    per_row = terms.select(F.explode(F.col(_TERMS)).alias("term"), F.lit(1).alias("tf"))
    in_rows = terms.select(F.explode(F.array_distinct(F.col(_TERMS))).alias("term"))
    counts = (
        per_row.groupBy("term")
        .agg(F.count(F.lit(1)).alias("tf"))
        .join(in_rows.groupBy("term").agg(F.count(F.lit(1)).alias("df")), "term")
        .where(F.col("df") >= F.lit(params.min_df))
        .orderBy(F.col("tf").desc(), F.col("term"))
        .limit(params.vocab_size)
        .collect()
    )
    return CountVectorizerModel.from_vocabulary(
        [r["term"] for r in counts], inputCol=_TERMS, outputCol=_TF
    )


def _label_names(history: DataFrame, min_count: int) -> tuple[list[str], dict[str, str]]:
    """Labels by descending frequency (ties by name) and the rare ones folded into ``other``."""
    counts = history.groupBy(_LABEL).count().collect()
    rare = {r[_LABEL]: OTHER_LABEL for r in counts if r["count"] < min_count}
    folded: dict[str, int] = {}
    for r in counts:
        name = rare.get(r[_LABEL], r[_LABEL])
        folded[name] = folded.get(name, 0) + r["count"]
    return sorted(folded, key=lambda k: (-folded[k], k)), rare


def _indexed_labels(df: DataFrame, labels: Sequence[str], rare: dict[str, str]) -> DataFrame:
    """Replace ``_clf_label`` by its class index (null if unknown), with nominal metadata.

    The metadata gives the model every class, even one absent from its random training split.
    """
    folded = F.col(_LABEL)
    if rare:
        mapping = F.create_map(*[F.lit(x) for kv in rare.items() for x in kv])
        folded = F.coalesce(mapping[folded], folded)
    index = (F.array_position(F.array(*[F.lit(x) for x in labels]), folded) - 1).cast("double")
    metadata = {"ml_attr": {"type": "nominal", "name": _LABEL, "vals": list(labels)}}
    return df.withColumn(_LABEL, F.when(index >= 0, index)).withMetadata(_LABEL, metadata)


def labelled_rows(history: DataFrame, text_col: str, label_col: str) -> DataFrame:
    """Rows usable for training: text and label both present and not blank; label trimmed."""
    return history.where(~_blank(F.col(text_col)) & ~_blank(F.col(label_col))).withColumn(
        _LABEL, F.trim(F.col(label_col))
    )


def softmax_confidence(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Max class probability of ``softmax(logits / temperature)``, row by row."""
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    return 1.0 / np.exp(scaled).sum(axis=1)


def _mean_log_loss(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    scaled = logits / temperature
    top = scaled.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(scaled - top).sum(axis=1)) + top[:, 0]
    return float(np.mean(log_norm - scaled[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the mean log loss of ``softmax(logits / T)``.

    Golden-section search on ``log T`` within [0.05, 20] (the loss is convex in ``1/T``).

    Args:
        logits: margins, one row per example, one column per class.
        labels: the true class index of each row.
    """
    if len(labels) == 0:
        return 1.0
    lo, hi = math.log(_MIN_TEMPERATURE), math.log(_MAX_TEMPERATURE)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    loss_a = _mean_log_loss(logits, labels, math.exp(a))
    loss_b = _mean_log_loss(logits, labels, math.exp(b))
    while hi - lo > 1e-4:
        if loss_a < loss_b:
            hi, b, loss_b = b, a, loss_a
            a = hi - ratio * (hi - lo)
            loss_a = _mean_log_loss(logits, labels, math.exp(a))
        else:
            lo, a, loss_a = a, b, loss_b
            b = lo + ratio * (hi - lo)
            loss_b = _mean_log_loss(logits, labels, math.exp(b))
    return math.exp((lo + hi) / 2)


def _calibration_arrays(pipeline: PipelineModel, held_out: DataFrame) -> tuple[np.ndarray, ...]:
    """Margins and class indices of (at most 20,000) held-out rows with a known label."""
    rows = (
        pipeline.transform(held_out.where(F.col(_LABEL).isNotNull()))
        .select(vector_to_array(_RAW).alias("m"), F.col(_LABEL).cast("int").alias("y"))
        .limit(_MAX_CALIBRATION_ROWS)
        .collect()
    )
    logits = np.array([r["m"] for r in rows], dtype=float).reshape(len(rows), -1)
    return logits, np.array([r["y"] for r in rows], dtype=int)


def _canonical(df: DataFrame, columns: Sequence[str]) -> DataFrame:
    """``columns`` of ``df``, laid out as a function of their values alone.

    One partition, sorted: how the rows were stored (one Delta commit or several, which files, in
    which order) no longer decides where a row is, and no sum of the fit is split over tasks whose
    completion order would decide how it is added up, so the model is the same to the last bit.
    Identical rows are interchangeable. The price: the fit runs on one core (a history of a few
    hundred thousand rows, trained once a week, affords it).
    """
    cols = list(dict.fromkeys(columns))
    return df.select(*cols).repartition(_TRAINING_PARTITIONS, *cols).sortWithinPartitions(*cols)


def _held(fraction: float, seed: int) -> Column:
    """Whether a row with ``_clf_text`` and ``_clf_context`` is held out: a hash of them and
    ``seed``, not of the row's position (``randomSplit`` draws per partition, so the same rows
    stored differently split differently) nor of its label (a row relabelled, by a reviewer,
    stays on its side, so models trained on either label are compared on the same rows)."""
    bucket = F.pmod(F.xxhash64(F.col(_TEXT), F.col(_CONTEXT), F.lit(seed)), 10_000)
    return bucket < F.lit(round(fraction * 10_000))


def _hash_hold_out(df: DataFrame, fraction: float, seed: int) -> tuple[DataFrame, DataFrame | None]:
    """``df`` split into rows to fit on and about ``fraction`` held out (none if 0)."""
    if fraction <= 0:
        return df, None
    held = _held(fraction, seed)
    return df.where(~held), df.where(held)


def held_out_rows(
    df: DataFrame,
    text_col: str,
    context_cols: Sequence[str] = (),
    fraction: float = CALIBRATION_FRACTION,
    seed: int = HOLD_OUT_SEED,
) -> DataFrame:
    """The rows of ``df`` that ``train_text_classifier`` holds out of the fit (with the same
    ``fraction`` and ``seed``), whatever their label: the slice to compare models on."""
    inputs = _with_inputs(df, text_col, context_cols)
    return inputs.where(_held(fraction, seed)).drop(_TEXT, _CONTEXT)


def labelled_accuracy(
    model: TrainedClassifier, rows: DataFrame, text_col: str, label_col: str
) -> tuple[float | None, int]:
    """The share of ``rows`` with a text and a label that ``model`` labels right, and how many
    there are (None when none). A label the model never learnt counts as wrong."""
    usable = labelled_rows(rows, text_col, label_col)
    scored = predict_labels(model, usable, text_col).agg(
        F.count(F.lit(1)).alias("n"),
        F.sum((F.col(PREDICTED_LABEL) == F.col(_LABEL)).cast("int")).alias("right"),
    )
    row = scored.first()
    n = int(row["n"])
    return (float(row["right"]) / n if n else None), n


def _logistic_regression(params: ClassifierParams, weight_col: str | None) -> LogisticRegression:
    """Multinomial even for two classes (one margin per class), L2, unstandardised TF-IDF;
    each row's loss weighted by ``weight_col`` when given."""
    weights = {"weightCol": weight_col} if weight_col else {}
    return LogisticRegression(
        **weights,
        featuresCol=_FEATURES,
        labelCol=_LABEL,
        rawPredictionCol=_RAW,
        probabilityCol=_PROBABILITY,
        predictionCol=_PREDICTION,
        family="multinomial",
        regParam=params.reg_param,
        elasticNetParam=0.0,
        standardization=False,
        maxIter=params.max_iter,
    )


def train_text_classifier(
    history: DataFrame,
    text_col: str,
    label_col: str,
    context_cols: Sequence[str] = (),
    params: ClassifierParams | None = None,
    calibration: DataFrame | None = None,
    calibration_fraction: float = CALIBRATION_FRACTION,
    seed: int = HOLD_OUT_SEED,
    weight_col: str | None = None,
) -> TrainedClassifier:
    """Fit the classifier on labelled history, then its temperature on held-out rows.

    Rows with a null or blank text or label are left out, and so are held-out rows whose label
    the model does not know. The model is a function of the rows' values: the same rows stored in
    other files, partitions or order give the same model (and the same confidences). Under
    drift, hold out the latest period (``calibration``) rather than random rows: a random
    hold-out looks like the training data and under-states how over-confident the model will be
    on next month.

    Args:
        history: labelled rows.
        text_col: the free text (merchant name, description...).
        label_col: the label to learn.
        context_cols: categorical columns added as one token each.
        params: feature and model settings.
        calibration: held-out labelled rows for the temperature (e.g. the latest month);
            if None, ``calibration_fraction`` of ``history`` is held out.
        calibration_fraction: share held out when ``calibration`` is None (``held_out_rows``:
            by a hash of each row's text and context, so the split does not depend on how the
            rows are stored, nor on their label); 0 disables calibration (temperature 1).
        seed: seed of the hold-out's hash.
        weight_col: a positive weight per row (a reviewer's label above an employee's coding);
            every row weighs 1 when None. Weights shape the fit, not the calibration.

    Raises:
        ValueError: fewer than two distinct labels.
    """
    params = params or ClassifierParams()
    # Only the text, label and context are read, laid out by their values (``_canonical``): the
    # same rows give the same model however they were stored or partitioned.
    inputs = [text_col, _LABEL, *context_cols, *([weight_col] if weight_col else [])]
    usable = _canonical(labelled_rows(history, text_col, label_col), inputs)
    labels, rare = _label_names(usable, params.min_label_count)
    if len(labels) < 2:
        raise ValueError(f"need at least two labels to train, found {labels}")
    prepared = _with_inputs(_indexed_labels(usable, labels, rare), text_col, context_cols)
    if calibration is not None:
        held = _canonical(
            labelled_rows(calibration, text_col, label_col), [text_col, _LABEL, *context_cols]
        )
        fit_rows = prepared
        held_out = _with_inputs(_indexed_labels(held, labels, rare), text_col, context_cols)
    else:
        fit_rows, held_out = _hash_hold_out(prepared, calibration_fraction, seed)
    fit_rows = fit_rows.cache()
    terms = _term_stages(params)
    vocabulary = _vocabulary(Pipeline(stages=terms).fit(fit_rows).transform(fit_rows), params)
    if not vocabulary.vocabulary:
        fit_rows.unpersist()
        raise ValueError(f"no term occurs in {params.min_df} training rows: lower min_df")
    stages = [
        *terms,
        vocabulary,
        IDF(inputCol=_TF, outputCol=_FEATURES),
        _logistic_regression(params, weight_col),
    ]
    pipeline = Pipeline(stages=stages).fit(fit_rows)
    training_rows = fit_rows.count()
    fit_rows.unpersist()
    temperature, calibration_rows = 1.0, 0
    accuracy = log_loss = None
    if held_out is not None:
        logits, y = _calibration_arrays(pipeline, held_out)
        temperature, calibration_rows = fit_temperature(logits, y), len(y)
        if len(y):
            accuracy = float(np.mean(np.argmax(logits, axis=1) == y))
            log_loss = _mean_log_loss(logits, y, temperature)
    return TrainedClassifier(
        pipeline=pipeline,
        labels=tuple(labels),
        temperature=temperature,
        context_cols=tuple(context_cols),
        training_rows=training_rows,
        calibration_rows=calibration_rows,
        holdout_accuracy=accuracy,
        holdout_log_loss=log_loss,
    )


def _calibrated_confidence(temperature: float) -> Column:
    """Max of ``softmax(margins / T)``: 1 / Σ exp((m_i - max m) / T)."""
    margins = vector_to_array(_RAW)
    top = F.array_max(margins)
    total = F.aggregate(
        margins, F.lit(0.0), lambda acc, m: acc + F.exp((m - top) / F.lit(temperature))
    )
    return 1.0 / total


def predict_labels(model: TrainedClassifier, df: DataFrame, text_col: str) -> DataFrame:
    """Add ``predicted_label`` and ``confidence`` (calibrated max class probability).

    Rows are neither dropped nor reordered (existing ``predicted_label``/``confidence`` columns
    are replaced in place). A null or blank text gets a null label and a null confidence.

    Args:
        model: a trained classifier.
        df: rows to score; must hold ``text_col`` and the model's context columns.
        text_col: the text to classify.
    """
    has_text = ~_blank(F.col(text_col))
    names = F.array(*[F.lit(x) for x in model.labels])
    scored = model.pipeline.transform(_with_inputs(df, text_col, model.context_cols))
    outputs = {
        PREDICTED_LABEL: F.when(has_text, F.element_at(names, F.col(_PREDICTION).cast("int") + 1)),
        CONFIDENCE: F.when(has_text, _calibrated_confidence(model.temperature)).cast("double"),
    }
    new_columns = [c for c in outputs if c not in df.columns]
    return scored.withColumns(outputs).select(*df.columns, *new_columns)


def expected_calibration_error(
    df: DataFrame, label_col: str, pred_col: str, conf_col: str, bins: int = 10
) -> float:
    """ECE: Σ_b (n_b / N) · |accuracy_b - mean confidence_b| over equal-width confidence bins.

    Rows with a null prediction, confidence or true label are left out; a confidence of 1.0
    falls in the top bin. NaN when no row is left.

    Args:
        df: scored rows.
        label_col: the true label.
        pred_col: the predicted label.
        conf_col: the confidence of the prediction, in [0, 1].
        bins: number of equal-width bins.
    """
    conf = F.col(conf_col)
    scored = df.where(conf.isNotNull() & F.col(pred_col).isNotNull() & F.col(label_col).isNotNull())
    per_bin = scored.groupBy(F.least(F.floor(conf * bins), F.lit(bins - 1)).alias("bin")).agg(
        F.count(F.lit(1)).alias("n"),
        F.sum((F.col(pred_col) == F.col(label_col)).cast("double")).alias("correct"),
        F.sum(conf).alias("confidence"),
    )
    totals = per_bin.agg(
        F.sum(F.abs(F.col("correct") - F.col("confidence"))).alias("gap"), F.sum("n").alias("n")
    ).first()
    if not totals["n"]:
        return float("nan")
    return float(totals["gap"] / totals["n"])


def route_by_confidence(threshold: float) -> Callable[[DataFrame], DataFrame]:
    """Add ``needs_llm``: true where ``confidence`` is below ``threshold`` or null.

    Args:
        threshold: the lowest confidence the model's answer is kept at, in [0, 1].

    Raises:
        ValueError: threshold outside [0, 1].
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")

    def route(df: DataFrame) -> DataFrame:
        conf = F.col(CONFIDENCE)
        return df.withColumn(NEEDS_LLM, conf.isNull() | (conf < F.lit(threshold)))

    return route
