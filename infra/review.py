"""The review loop's storage: the reviewed tables, the open queue, the decisions ledger and
the assignments ledger.

``ops.review_decisions`` is the one place a person's decision is stored: append-only, one row per
decision, written only by ``record_decision`` (delta-rs ``write_deltalake`` append, on a local
lakehouse or an object store alike: the review page never starts Spark, and a Delta commit is a
put-if-absent of the next log file, so the pipeline's Spark commits and these interleave safely).
``ops.review_assignments`` (who an item is assigned to) is kept the same way, written only by
``assign_item``; both appends go through ``_append``.
The page's reads are delta-rs: milliseconds, no Spark job, no lock on the Spark metastore. The
pipeline reads decisions through ``LakehouseResource.read_rows`` (``decisions_on``) and registers
the ledger in the catalog when it finds decisions.
"""

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError
from pyspark.sql import Column, DataFrame, SparkSession

from documents.engine import DOCUMENT_REDACTION
from enrichment.models import TaskSpec, Taxonomy
from enrichment.prompts import (
    CONTRACT_EXTRACT_TASK,
    EXCEPTION_NOTE_TASK,
    EXPENSE_LINE_TASK,
    HR_CASE_TASK,
    HR_CASE_URGENCY_TASK,
    INVOICE_EXTRACT_TASK,
)
from expectations import contract_terms as contract_suite
from expectations import invoice_documents as invoice_suite
from infra.lakehouse import LakehouseResource, TableRef
from infra.settings import audit_window_properties
from infra.spark import SessionSource
from transforms.contract_documents import FREE_TEXT_FIELDS as CONTRACT_FREE_TEXT
from transforms.document_review import (
    document_text,
    documents_read,
    field_prefix,
    field_provenance,
    with_checks_after_review,
    with_payment_days_after_review,
)
from transforms.expenses import expense_text, with_category_differs_from_claim
from transforms.frames import local_frame
from transforms.hr_cases import hr_case_text
from transforms.recon.notes import exception_text
from transforms.review import (
    ACCEPTED,
    ASSIGNMENT_SCHEMA,
    DECISION_SCHEMA,
    KIND_TEXT,
    OPEN,
    OVERRIDDEN,
    ReviewField,
    apply_decisions,
    apply_field_decisions,
    free_value,
    review_candidates,
    unmatched_decisions,
)
from transforms.training_window import TrainingWindow

REVIEW_QUEUE = TableRef("gold", "review_queue")
REVIEW_DECISIONS = TableRef("ops", "review_decisions")
REVIEW_ASSIGNMENTS = TableRef("ops", "review_assignments")
DECISIONS = (ACCEPTED, OVERRIDDEN)

_ARROW_TYPES = {
    "string": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "double": pa.float64(),
}


def _arrow_schema(ddl: str) -> pa.Schema:
    return pa.schema(
        [
            (name, _ARROW_TYPES[kind])
            for name, kind in (c.strip().split(" ") for c in ddl.split(","))
        ]
    )


DECISION_ARROW_SCHEMA = _arrow_schema(DECISION_SCHEMA)
ASSIGNMENT_ARROW_SCHEMA = _arrow_schema(ASSIGNMENT_SCHEMA)
# One decision at a time from this process: validation reads what the append must not race.
_WRITE_LOCK = threading.Lock()


class DecisionError(ValueError):
    """A decision the ledger refuses, with a message for the reviewer."""


@dataclass(frozen=True)
class ReviewedTable:
    """An enriched gold table whose values a person may decide.

    ``text`` is the enrichment's own Spark text builder (what the model read of a row), over
    the rows of ``text_table`` (the table's model output when None; silver when gold keeps no
    free text), written by the step ``text_step`` as the asset ``text_asset`` (the queue's
    inputs). The queue keeps that text redacted as it was sent. ``unredacted_roles`` may also
    read ``unredacted_columns`` of ``unredacted_table``: the source record, never in gold.
    ``shown_columns`` of the gold row are shown beside it.
    """

    name: str
    key_cols: tuple[str, ...]
    fields: tuple[ReviewField, ...]
    taxonomies: tuple[tuple[str, Taxonomy], ...]
    text: Callable[[], Column]
    shown_columns: tuple[str, ...]
    text_table: TableRef | None = None
    text_asset: str | None = None
    text_step: str | None = None
    unredacted_table: TableRef | None = None
    unredacted_columns: tuple[str, ...] = ()
    unredacted_roles: tuple[str, ...] = ()
    # Columns derived from a reviewed field, recomputed after a person's value is applied.
    after_decisions: Callable[[DataFrame], DataFrame] | None = None
    # The records the text is built from, of the table's grain, from its model output and the
    # rows of ``text_table`` (None: those rows are the records).
    text_records: Callable[[DataFrame, DataFrame], DataFrame] | None = None
    # A column of the model output naming an earlier date whose ``text_table`` rows a record
    # reuses (a repeated document is read from its first landing).
    text_from_date: str | None = None
    # The personal data the enrichment redacts before sending (``Redactor`` kinds; None: all).
    redaction_kinds: tuple[str, ...] | None = None
    # The table's model output with the fields' provenance columns, when they are not columns
    # of the table (each field's in an array of structs ``fields``: ``per_field_provenance``).
    review_view: Callable[[DataFrame], DataFrame] | None = None
    per_field_provenance: bool = False

    def candidates(self, thresholds: Mapping[str, float]) -> Callable[[DataFrame], DataFrame]:
        """The values of the table's model output that queue (``review_candidates``)."""

        def transform(rows: DataFrame) -> DataFrame:
            if self.review_view is not None:
                rows = rows.transform(self.review_view)
            return rows.transform(
                review_candidates(self.name, self.key_cols, self.fields, thresholds)
            )

        return transform

    def text_days(self, output: DataFrame, days: list[date]) -> list[date]:
        """The dates of ``text_table`` the records of ``output`` (of ``days``) are built from."""
        if self.text_from_date is None:
            return days
        earlier = [r[0] for r in output.select(self.text_from_date).distinct().collect() if r[0]]
        return sorted({*days, *earlier})

    def records(self, output: DataFrame, rows: DataFrame) -> DataFrame:
        """The records the text is built from: ``text_table``'s ``rows`` for ``output``."""
        return rows if self.text_records is None else self.text_records(output, rows)

    @property
    def gold(self) -> TableRef:
        """The published table."""
        return TableRef("gold", self.name)

    def overlay(self, decisions: DataFrame) -> Callable[[DataFrame], DataFrame]:
        """The decisions in force on top of this table's model output, field by field, then
        the columns derived from a reviewed field recomputed (``after_decisions``)."""

        def transform(rows: DataFrame) -> DataFrame:
            if self.per_field_provenance:
                rows = rows.transform(
                    apply_field_decisions(decisions, self.name, self.key_cols, self.fields)
                )
            for field in () if self.per_field_provenance else self.fields:
                rows = rows.transform(apply_decisions(decisions, self.name, self.key_cols, field))
            if self.after_decisions is not None:
                rows = rows.transform(self.after_decisions)
            return rows

        return transform

    def unmatched(self, decisions: DataFrame, rows: DataFrame) -> DataFrame:
        """Decisions in force on ``rows``' dates whose key is not among ``rows``."""
        return rows.transform(unmatched_decisions(decisions, self.name, self.key_cols, self.fields))

    def field(self, name: str) -> ReviewField:
        """The reviewed field ``name``; ``DecisionError`` when the table has none."""
        for field in self.fields:
            if field.name == name:
                return field
        raise DecisionError(f"{self.name} has no reviewed field {name!r}")

    def taxonomy(self, field: str) -> Taxonomy | None:
        """The labels a person may choose for ``field``; None for a free value (``kind``)."""
        return dict(self.taxonomies).get(self.field(field).name)

    def override_value(self, field: str, value: str | None) -> str:
        """A person's value for ``field`` as the ledger keeps it: a label of its taxonomy, or
        a free value of its kind (``free_value``); ``DecisionError`` saying what is wrong."""
        spec = self.field(field)
        if spec.kind is not None:
            try:
                return free_value(spec.kind, value)
            except ValueError as wrong:
                raise DecisionError(f"{field}: {wrong}") from None
        labels = self.taxonomy(field).names
        if value not in labels:
            raise DecisionError(
                f"{value!r} is not a {field} label; choose one of: {', '.join(labels)}"
            )
        return value


def document_fields_table(
    name: str,
    task: TaskSpec,
    *,
    pages: str,
    required: Sequence[str],
    shown: Sequence[str],
    after_decisions: Callable[[DataFrame], DataFrame],
    text_fields: Sequence[str] = (),
) -> ReviewedTable:
    """A gold document table (key ``file_name``) whose extracted header fields (``task``'s
    extraction spec) are each reviewed on its own: a free value of the field's kind (``text``
    for ``text_fields``), decided with the field's own confidence and source (its element of
    ``fields``, ``field_provenance``). A field the document does not state queues only when it
    is ``required`` (the feed's suite's required fields). The record text is the document's
    pages in silver ``pages`` as the extractor read them (a repeat: its first landing's),
    redacted as the extractor redacts. ``after_decisions`` recomputes what derives from a field.
    """
    spec = task.extraction
    names = tuple(spec.field_names)
    return ReviewedTable(
        name=name,
        key_cols=("file_name",),
        fields=tuple(
            ReviewField(
                f.name,
                f"{field_prefix(f.name)}confidence",
                task.name,
                prefix=field_prefix(f.name),
                kind=KIND_TEXT if f.name in text_fields else f.kind,
                only_when=f"{field_prefix(f.name)}reviewable",
            )
            for f in spec.fields
        ),
        taxonomies=(),
        text=document_text,
        text_table=TableRef("silver", pages),
        text_asset=f"silver_{pages}",
        text_step=f"silver_{pages}",
        text_records=documents_read,
        text_from_date="duplicate_of_date",
        redaction_kinds=DOCUMENT_REDACTION,
        shown_columns=(*names, *shown),
        review_view=field_provenance(names, required),
        per_field_provenance=True,
        after_decisions=after_decisions,
    )


REVIEWED_TABLES = {
    table.name: table
    for table in (
        ReviewedTable(
            name="expense_lines",
            key_cols=("report_id", "line_id"),
            fields=(ReviewField("spend_category", "confidence", EXPENSE_LINE_TASK.name),),
            taxonomies=(("spend_category", EXPENSE_LINE_TASK.taxonomy),),
            text=expense_text,
            shown_columns=("amount", "currency", "claimed_category", "justification_summary"),
            after_decisions=with_category_differs_from_claim,
        ),
        ReviewedTable(
            name="hr_cases",
            key_cols=("case_id",),
            fields=(
                ReviewField("case_type", "case_type_confidence", HR_CASE_TASK.name),
                ReviewField(
                    "urgency", "urgency_confidence", HR_CASE_URGENCY_TASK.name, prefix="urgency_"
                ),
            ),
            taxonomies=(
                ("case_type", HR_CASE_TASK.taxonomy),
                ("urgency", HR_CASE_URGENCY_TASK.taxonomy),
            ),
            text=hr_case_text,
            # Gold keeps no free text of a case: the subject and description stay in silver.
            text_table=TableRef("silver", "hr_cases"),
            text_asset="silver_hr_cases",
            text_step="silver_hr_cases",
            shown_columns=("channel", "opened_at"),
            unredacted_table=TableRef("silver", "hr_cases"),
            unredacted_columns=("subject", "description"),
            unredacted_roles=("hr",),
        ),
        ReviewedTable(
            name="recon_exception_notes",
            key_cols=("exception_id",),
            fields=(ReviewField("probable_reason", "reason_confidence", EXCEPTION_NOTE_TASK.name),),
            taxonomies=(("probable_reason", EXCEPTION_NOTE_TASK.taxonomy),),
            text=exception_text,
            # The notes keep the exception's type, recon and entity, not its detail and amount.
            text_table=TableRef("gold", "recon_exceptions"),
            text_asset="gold_recon_exceptions",
            text_step="gold_reconciliation",
            shown_columns=("exception_type", "recon", "legal_entity", "analyst_note"),
        ),
        document_fields_table(
            "invoice_documents",
            INVOICE_EXTRACT_TASK,
            pages="invoice_document_pages",
            required=invoice_suite.REQUIRED_FIELDS,
            shown=("net_plus_tax_is_total", "lines_sum_to_net", "check_messages"),
            after_decisions=with_checks_after_review,
        ),
        document_fields_table(
            "contract_terms",
            CONTRACT_EXTRACT_TASK,
            pages="contract_document_pages",
            required=contract_suite.REQUIRED_FIELDS,
            # payment_days is not reviewed on its own: it is read from payment_terms, again
            # after a person's payment terms; the parties are not reviewed (a list, not a value).
            shown=("payment_days", "parties"),
            after_decisions=with_payment_days_after_review,
            # The terms as written are text gold publishes: a person's may hold no personal
            # data (the suite's no_personal_data_in_terms, which a decision does not pass).
            text_fields=CONTRACT_FREE_TEXT,
        ),
    )
}


def reviewed_table(name: str) -> ReviewedTable:
    """The reviewed table ``name``; ``DecisionError`` when it is not one."""
    if name not in REVIEWED_TABLES:
        raise DecisionError(f"{name!r} is not a reviewed table ({sorted(REVIEWED_TABLES)})")
    return REVIEWED_TABLES[name]


def _rows(lakehouse: LakehouseResource, table: TableRef, filters: list | None) -> list[dict]:
    try:
        delta = DeltaTable(lakehouse.path(table))
    except TableNotFoundError:
        return []  # not written yet: nothing queued, nothing decided
    return delta.to_pyarrow_table(filters=filters or None).to_pylist()


def read_decisions(lakehouse: LakehouseResource, table: str | None = None) -> list[dict]:
    """Every decision in ``ops.review_decisions`` (of one table), oldest first."""
    rows = _rows(lakehouse, REVIEW_DECISIONS, [("table_name", "=", table)] if table else None)
    return sorted(rows, key=lambda r: (r["decided_at"], r["decision_id"]))


def decisions_on(
    spark: SparkSession | SessionSource,
    lakehouse: LakehouseResource,
    days: Iterable[date] | None,
    table: str | None = None,
) -> list[dict]:
    """The pipeline's read of the ledger: every decision on ``days`` (None: all) of ``table``
    (None: every table).

    Through ``LakehouseResource.read_rows`` (delta-rs on a local lakehouse, Spark on an object
    store). Given a session, it registers the ledger in the catalog as ``ops.review_decisions``
    once it exists; given a ``SessionSource`` (a step's plan, which must not start Spark for a
    skip), the step registers it when it computes (``register_ledgers``).
    """
    rows = lakehouse.read_rows(
        spark,
        REVIEW_DECISIONS,
        DECISION_ARROW_SCHEMA.names,
        equals={"table_name": table} if table else None,
        within=None if days is None else {"business_date": sorted(set(days))},
    )
    if rows and isinstance(spark, SparkSession):
        lakehouse.register(spark, REVIEW_DECISIONS)
    return rows


def assignments_on(
    spark: SparkSession | SessionSource, lakehouse: LakehouseResource, days: Iterable[date]
) -> list[dict]:
    """The pipeline's read of the assignments ledger: every assignment on ``days``, like
    ``decisions_on``."""
    rows = lakehouse.read_rows(
        spark,
        REVIEW_ASSIGNMENTS,
        ASSIGNMENT_ARROW_SCHEMA.names,
        within={"business_date": sorted(set(days))},
    )
    if rows and isinstance(spark, SparkSession):
        lakehouse.register(spark, REVIEW_ASSIGNMENTS)
    return rows


def register_ledgers(
    spark: SparkSession,
    lakehouse: LakehouseResource,
    decisions: Sequence[dict] = (),
    assignments: Sequence[dict] = (),
) -> None:
    """Register the decisions (and assignments) ledger in the catalog where rows were read from
    it: what ``decisions_on`` does when given a session, for a step that read them with a
    ``SessionSource`` and then computed."""
    if decisions:
        lakehouse.register(spark, REVIEW_DECISIONS)
    if assignments:
        lakehouse.register(spark, REVIEW_ASSIGNMENTS)


def assignments_frame(spark: SparkSession, rows: list[dict]) -> DataFrame:
    """Assignments read by ``assignments_on`` as a Spark frame of ``ASSIGNMENT_SCHEMA``."""
    return local_frame(spark, rows, ASSIGNMENT_SCHEMA)


def decisions_frame(spark: SparkSession, rows: list[dict]) -> DataFrame:
    """Decisions read by ``decisions_on`` as a Spark frame of ``DECISION_SCHEMA``."""
    return local_frame(spark, rows, DECISION_SCHEMA)


def decision_fingerprints(
    rows: list[dict], days: Iterable[date], id_column: str = "decision_id"
) -> dict[date, str]:
    """Per date, a hash of the decisions made on it: an input of every step that applies them
    (``id_column`` ``assignment_id``: the same of assignments).

    A new decision changes its date's fingerprint, so a date otherwise unchanged is computed
    again instead of skipped (``infra/versions.py``).
    """
    ids: dict[date, list[str]] = {day: [] for day in days}
    for row in rows:
        ids.setdefault(row["business_date"], []).append(row[id_column])
    return {
        day: hashlib.sha256(",".join(sorted(found)).encode()).hexdigest() if found else "none"
        for day, found in ids.items()
    }


def learned_decision_fingerprints(
    rows: list[dict], windows: Mapping[date, TrainingWindow], field: str, weight: float
) -> dict[date, str]:
    """Per date, a hash of the decisions on ``field`` its history model learns from (those on
    the dates of its training window, ``windows[date]``) and of their weight: an input of the
    step that trains and applies the model, so a new decision in a window, or a new weight,
    computes the window's week again instead of skipping it."""
    out = {}
    for day, window in windows.items():
        found = sorted(
            r["decision_id"]
            for r in rows
            if r["field"] == field and window.first <= r["business_date"] <= window.last
        )
        out[day] = (
            hashlib.sha256(f"{weight!r}:{','.join(found)}".encode()).hexdigest()
            if found
            else "none"
        )
    return out


def _grain(row: dict) -> tuple:
    return (row["table_name"], row["key"], row["business_date"], row["field"])


def read_assignments(lakehouse: LakehouseResource) -> list[dict]:
    """Every assignment in ``ops.review_assignments``, oldest first."""
    rows = _rows(lakehouse, REVIEW_ASSIGNMENTS, None)
    return sorted(rows, key=lambda r: (r["assigned_at"], r["assignment_id"]))


def assignees(lakehouse: LakehouseResource) -> dict[tuple, str | None]:
    """The assignment in force per queue grain: the reviewer (None: unassigned again)."""
    return {_grain(a): a["assignee"] for a in read_assignments(lakehouse)}


# ``open_queue``'s assignee filter for the items nobody is assigned to.
UNASSIGNED = ""


def open_queue(
    lakehouse: LakehouseResource,
    table: str | None = None,
    business_date: date | None = None,
    reason: str | None = None,
    max_confidence: float | None = None,
    assignee: str | None = None,
) -> list[dict]:
    """The open items of ``gold.review_queue``, oldest date first, optionally filtered.

    An item decided since the queue was published (a decision in ``ops.review_decisions``) is
    no longer open, and an item's ``assignee`` is the assignment in force in
    ``ops.review_assignments``: the page shows the ledgers' state, not the last publish's.
    ``max_confidence`` keeps items at or below it (an item without a confidence is kept);
    ``assignee`` keeps the items assigned to that reviewer (``UNASSIGNED``: to nobody).
    """
    filters = [("status", "=", OPEN)]
    if table:
        filters.append(("table_name", "=", table))
    if business_date:
        filters.append(("business_date", "=", business_date))
    if reason:
        filters.append(("reason", "=", reason))
    decided = {_grain(d) for d in read_decisions(lakehouse, table)}
    assigned = assignees(lakehouse)
    items = []
    for row in _rows(lakehouse, REVIEW_QUEUE, filters):
        if _grain(row) in decided:
            continue
        if not (
            max_confidence is None
            or row["confidence"] is None
            or row["confidence"] <= max_confidence
        ):
            continue
        row["assignee"] = assigned.get(_grain(row), row.get("assignee"))
        if assignee is not None and (row["assignee"] or UNASSIGNED) != assignee:
            continue
        items.append(row)
    return sorted(items, key=lambda r: (r["business_date"], r["table_name"], r["key"], r["field"]))


def queue_item(
    lakehouse: LakehouseResource, table: str, key: str, business_date: date, field: str
) -> dict | None:
    """The published queue row of one value, whatever its status; None when not queued."""
    rows = _rows(
        lakehouse,
        REVIEW_QUEUE,
        [
            ("table_name", "=", table),
            ("key", "=", key),
            ("business_date", "=", business_date),
            ("field", "=", field),
        ],
    )
    return rows[0] if rows else None


def _key_matches(row: dict, key: dict) -> bool:
    return all(str(row.get(c)) == v for c, v in key.items())


def _record_row(
    lakehouse: LakehouseResource, table: TableRef, key: dict, business_date: date
) -> dict | None:
    rows = [
        r
        for r in _rows(lakehouse, table, [("business_date", "=", business_date)])
        if _key_matches(r, key)
    ]
    return rows[0] if rows else None


@dataclass(frozen=True)
class ReviewRecord:
    """A queued value's record as the reviewer may see it: the text the model read (redacted),
    columns of the gold row, and, for a role allowed to, the source record unredacted."""

    text: str | None
    columns: dict
    unredacted: dict | None = None


def review_record(lakehouse: LakehouseResource, item: dict, key: dict, role: str) -> ReviewRecord:
    """The record behind a queued ``item`` (a ``gold.review_queue`` row) for ``role``.

    The text is the queue's ``record_text``: redacted as it was sent to the model, for every
    role. The queue is gold and holds no unredacted text, so a role in the table's
    ``unredacted_roles`` reads the source columns (``unredacted_columns``) from where they are
    kept (silver) instead; nobody else ever gets them.
    """
    spec = reviewed_table(item["table_name"])
    day = item["business_date"]
    gold = _record_row(lakehouse, spec.gold, key, day) or {}
    unredacted = None
    if role in spec.unredacted_roles and spec.unredacted_table is not None:
        source = _record_row(lakehouse, spec.unredacted_table, key, day)
        if source is not None:
            unredacted = {c: source.get(c) for c in spec.unredacted_columns}
    return ReviewRecord(
        item.get("record_text"),
        {c: gold.get(c) for c in spec.shown_columns if c in gold},
        unredacted,
    )


def record_decision(
    lakehouse: LakehouseResource,
    *,
    table: str,
    key: str,
    business_date: date,
    field: str,
    decision: str,
    new_value: str | None,
    comment: str,
    decided_by: str,
    reviewer_role: str,
) -> dict:
    """Validate a decision and append it to ``ops.review_decisions``; return the row written.

    An accepted decision takes the proposed value; an override needs a label of the field's
    taxonomy (or a free value of its kind, ``free_value``) and a comment. The value must be in
    the published queue.

    Raises:
        DecisionError: what is wrong with the decision, for the reviewer.
    """
    spec = reviewed_table(table)
    spec.field(field)
    if decision not in DECISIONS:
        raise DecisionError(f"a decision is one of {DECISIONS}, not {decision!r}")
    if not decided_by:
        raise DecisionError("a decision needs the reviewer's identity")
    item = queue_item(lakehouse, table, key, business_date, field)
    if item is None:
        raise DecisionError(f"{table} {key} {field} on {business_date} is not in the review queue")
    comment = (comment or "").strip()
    if decision == ACCEPTED:
        if item["proposed_value"] is None:
            raise DecisionError("there is no proposed value to accept: override with a label")
        new_value = item["proposed_value"]
    else:
        new_value = spec.override_value(field, new_value)
        if not comment:
            raise DecisionError("an override needs a comment: why the proposed value is wrong")
    row = {
        "decision_id": uuid.uuid4().hex,
        "table_name": table,
        "key": key,
        "business_date": business_date,
        "field": field,
        "decision": decision,
        "old_value": item["proposed_value"],
        "new_value": new_value,
        "comment": comment or None,
        "decided_by": decided_by,
        "reviewer_role": reviewer_role,
        "decided_at": datetime.now(UTC),
        "model": item["model"],
        "prompt_version": item["prompt_version"],
        "confidence": item["confidence"],
    }
    with _WRITE_LOCK:
        _append(lakehouse, REVIEW_DECISIONS, row, DECISION_ARROW_SCHEMA)
    return row


def _append(lakehouse: LakehouseResource, table: TableRef, row: dict, schema: pa.Schema) -> None:
    """The review ledgers' one write: one row, one delta-rs append commit."""
    write_deltalake(
        lakehouse.path(table),
        pa.Table.from_pylist([row], schema=schema),
        mode="append",
        # Created here on the first row: the audit window of every lakehouse table.
        configuration=audit_window_properties(),
    )


def assign_item(
    lakehouse: LakehouseResource,
    *,
    table: str,
    key: str,
    business_date: date,
    field: str,
    assignee: str | None,
    assigned_by: str,
    assigner_role: str,
    reviewers: Iterable[str],
) -> dict:
    """Assign a queued, undecided value to one of ``reviewers`` (None or empty: unassign it);
    append it to ``ops.review_assignments`` and return the row written.

    Raises:
        DecisionError: what is wrong with the assignment, for the reviewer.
    """
    reviewed_table(table).field(field)
    if not assigned_by:
        raise DecisionError("an assignment needs the assigner's identity")
    assignee = (assignee or "").strip() or None
    if assignee is not None and assignee not in set(reviewers):
        raise DecisionError(f"{assignee!r} is not a configured reviewer")
    with _WRITE_LOCK:
        item = queue_item(lakehouse, table, key, business_date, field)
        if item is None:
            raise DecisionError(
                f"{table} {key} {field} on {business_date} is not in the review queue"
            )
        grain = (table, key, business_date, field)
        if item["status"] != OPEN or grain in {_grain(d) for d in read_decisions(lakehouse, table)}:
            raise DecisionError("this value is decided: there is nothing left to assign")
        row = {
            "assignment_id": uuid.uuid4().hex,
            "table_name": table,
            "key": key,
            "business_date": business_date,
            "field": field,
            "assignee": assignee,
            "assigned_by": assigned_by,
            "assigner_role": assigner_role,
            "assigned_at": datetime.now(UTC),
        }
        _append(lakehouse, REVIEW_ASSIGNMENTS, row, ASSIGNMENT_ARROW_SCHEMA)
    return row
