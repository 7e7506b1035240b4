"""The close sample generator: files follow the contracts and the answer key is exact.

Pure Python (no Spark): a small re-implementation of the rules of docs/RECONCILIATIONS.md runs over
the landed files and must find exactly the exceptions the answer key lists.
"""

import csv
import hashlib
import json
import time
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sample import close as sample_close
from sample import expenses as sample_data
from sample.expenses import CATEGORY_LIMITS_USD, amount_usd
from transforms.contracts import CONTRACTS, VALID_CURRENCIES
from transforms.reference_data import (
    BANK_ACCOUNTS,
    BLOCKED_MERCHANT_TERMS,
    GL_AP_CONTROL_ACCOUNT,
    GL_CASH_ACCOUNTS,
    WEEKDAY_ONLY_CATEGORIES,
)

START, END = date(2026, 11, 12), date(2026, 12, 1)  # weekends, the 15th, a month end
SMALL = {"seed": 3, "gl_lines_per_day": 120, "employees": 60, "expense_rows": 60}
DAYS = [START + timedelta(days=i) for i in range((END - START).days + 1)]
LOOKBACK, WINDOW = 45, 3


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("close")
    sample_close.generate_close(path, START, END, **SMALL)
    return path


# --- reading the landing zone --------------------------------------------------------------------


def _folder(root: Path, source: str, day: date) -> Path:
    return root / "landing" / source / f"business_date={day.isoformat()}"


def _read(root: Path, source: str, day: date) -> list[dict] | None:
    """The rows of one source and date as strings (None when nothing landed)."""
    folder = _folder(root, source, day)
    if not folder.exists():
        return None
    fmt = CONTRACTS[source].file_format
    [path] = list(folder.iterdir())
    if fmt == "csv":
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    return pq.read_table(path).to_pylist()


def _key(root: Path, day: date) -> dict:
    return json.loads((root / "answer_keys" / "close" / f"{day.isoformat()}.json").read_text())


def _rid(source: str, row: dict) -> str:
    return f"{source}:{'|'.join(str(row[c]) for c in CONTRACTS[source].key)}"


def _document_path(root: Path, day: date, name: str) -> Path:
    return _folder(root, "invoice_documents", day) / name


def _document_rid(day: date, name: str) -> str:
    return f"invoice_documents:{day.isoformat()}|{name}"


def _contract_rid(day: date, name: str) -> str:
    return f"contract_documents:{day.isoformat()}|{name}"


def _cents(value) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


# --- a reference implementation of the rules, on the landed files --------------------------------


class Landed:
    """All landed rows of the range, by source and date, minus what silver quarantines."""

    def __init__(self, root: Path, days: list[date] = DAYS):
        self.days = days
        self.rows = {s: {d: _read(root, s, d) or [] for d in days} for s in CONTRACTS}
        self.keys = {d: _key(root, d) for d in days}
        self.rates = {
            d: {r["currency"]: r["rate_to_usd"] for r in self.rows["fx_rates"][d]} for d in days
        }
        self.landed_on = {
            _rid(source, r): d
            for source, by_day in self.rows.items()
            for d, rows in by_day.items()
            for r in rows
        }
        # What each invoice document states (the e2e close shows the extraction reads it) and
        # the SHA-256 of its bytes.
        self.documents = {
            d: {
                name: (
                    entry,
                    hashlib.sha256(_document_path(root, d, name).read_bytes()).hexdigest(),
                )
                for name, entry in self.keys[d]["invoice_documents"].items()
            }
            for d in days
        }
        self.landed_on.update(
            {_document_rid(d, name): d for d in days for name in self.documents[d]}
        )
        # What each contract states (the e2e close shows the extraction reads it).
        self.contracts = {d: self.keys[d]["contract_documents"] for d in days}
        for d in days:
            for name in self.contracts[d]:
                assert (_folder(root, "contract_documents", d) / name).is_file()
                self.landed_on[_contract_rid(d, name)] = d
        expense_keys = root / "answer_keys" / "expense_lines"
        self.valid_claims = {
            d: set(json.loads((expense_keys / f"{d}.json").read_text())["valid_keys"]) for d in days
        }

    def gl(self, day: date) -> list[dict]:
        bad = self.keys[day]["quarantined"].get("gl_journal_lines", {})
        return [
            r
            for r in self.rows["gl_journal_lines"][day]
            if _rid("gl_journal_lines", r).split(":")[1] not in bad
        ]


def _window(landed: "Landed", as_of: date) -> list[date]:
    return [d for d in landed.days if as_of - timedelta(days=LOOKBACK) <= d <= as_of]


def bank_gl(landed: Landed, as_of: date) -> tuple[set, set]:
    """(open exceptions, matched record ids) of bank ↔ GL cash as of ``as_of``."""
    bank, gl = [], []
    for d in _window(landed, as_of):
        for r in landed.rows["bank_statement_lines"][d]:
            account = BANK_ACCOUNTS[r["bank_account"]]
            bank.append(
                (
                    _rid("bank_statement_lines", r),
                    account.legal_entity,
                    r["currency"],
                    r["reference"],
                    _cents(r["amount"]),
                    r["value_date"],
                )
            )
        for r in landed.gl(d):
            if r["account"] in GL_CASH_ACCOUNTS:
                signed = _cents(r["debit"]) - _cents(r["credit"])
                gl.append(
                    (
                        _rid("gl_journal_lines", r),
                        r["legal_entity"],
                        r["currency"],
                        r["reference"] or None,
                        signed,
                        date.fromisoformat(r["posting_date"]),
                    )
                )
    groups: dict = defaultdict(lambda: ([], []))
    for side, lines in ((0, bank), (1, gl)):
        for line in lines:
            if line[3]:
                groups[line[1:4]][side].append(line)
    exceptions, matched, consumed = set(), set(), set()
    for b, g in groups.values():
        if b and g:
            records = tuple(sorted(x[0] for x in b + g))
            consumed.update(records)
            if sum(x[4] for x in b) == sum(x[4] for x in g):
                matched.update(records)
            else:
                exceptions.add(("bank_gl", "AMOUNT_MISMATCH", records))
    rest_b = [x for x in bank if x[0] not in consumed]
    rest_g = [x for x in gl if x[0] not in consumed]

    def candidates(x, others):
        return sorted(
            (abs((x[5] - y[5]).days), y[0])
            for y in others
            if y[1:3] == x[1:3] and abs(y[4] - x[4]) <= 1 and abs((x[5] - y[5]).days) <= WINDOW
        )

    for x in rest_b:
        best = candidates(x, rest_g)
        if best:
            y = next(g for g in rest_g if g[0] == best[0][1])
            if candidates(y, rest_b)[0][1] == x[0]:
                matched.update((x[0], y[0]))
    for x in rest_b:
        if x[0] not in matched:
            exceptions.add(("bank_gl", "BANK_NOT_IN_GL", (x[0],)))
    for x in rest_g:
        if x[0] not in matched:
            exceptions.add(("bank_gl", "GL_NOT_IN_BANK", (x[0],)))
    return exceptions, matched


def ap_gl(landed: Landed, as_of: date) -> tuple[set, set]:
    docs, gl_groups = {}, defaultdict(list)
    for d in _window(landed, as_of):
        for r in landed.rows["ap_invoices"][d]:
            docs[r["invoice_id"]] = (
                _rid("ap_invoices", r),
                r["legal_entity"],
                -_cents(r["amount"]),
            )
        for r in landed.rows["ap_payments"][d]:
            docs[r["payment_id"]] = (_rid("ap_payments", r), r["legal_entity"], _cents(r["amount"]))
        for r in landed.gl(d):
            if r["account"] == GL_AP_CONTROL_ACCOUNT:
                record = _rid("gl_journal_lines", r)
                group = (r["legal_entity"], r["reference"] or record)
                gl_groups[group].append((record, _cents(r["debit"]) - _cents(r["credit"])))
    exceptions, matched = set(), set()
    for doc_id, (record, entity, effect) in docs.items():
        lines = gl_groups.pop((entity, doc_id), None)
        if lines is None:
            exceptions.add(("ap_gl", "AP_NOT_IN_GL", (record,)))
            continue
        records = tuple(sorted([record, *(x[0] for x in lines)]))
        if sum(x[1] for x in lines) == effect:
            matched.update(records)
        else:
            exceptions.add(("ap_gl", "AMOUNT_MISMATCH", records))
    for lines in gl_groups.values():
        exceptions.add(("ap_gl", "GL_NOT_IN_AP", tuple(sorted(x[0] for x in lines))))
    return exceptions, matched


def document_ap(landed: Landed, as_of: date) -> tuple[set, set]:
    """(open exceptions, matched record ids) of invoice documents ↔ AP as of ``as_of``."""

    def key(text: str | None) -> str:
        return "".join(ch for ch in text or "" if ch.isalnum()).lower()

    window = _window(landed, as_of)
    ap = {r["invoice_id"]: (r, d) for d in window for r in landed.rows["ap_invoices"][d]}

    def own_group(entry: dict) -> tuple:
        number, vendor = key(entry["invoice_number"]), key(entry["vendor_name"])
        for invoice_id, (row, _) in sorted(ap.items()):
            other = key(row["vendor_name"])
            if key(invoice_id) == number and (vendor in other or other in vendor):
                return ("ap", invoice_id)
        return ("number", vendor, number)

    groups, group_of_bytes = defaultdict(list), {}
    for d in window:  # earliest first: by date, then file name
        for name, (entry, sha) in sorted(landed.documents[d].items()):
            group = group_of_bytes.setdefault(sha, own_group(entry))
            groups[group].append((_document_rid(d, name), entry))
    exceptions, matched, paired = set(), set(), set()
    for group, members in groups.items():
        if len(members) > 1:
            records = tuple(sorted(r for r, _ in members))
            exceptions.add(("document_ap", "DUPLICATE_DOCUMENT", records))
        record, entry = members[0]
        if group[0] != "ap":
            exceptions.add(("document_ap", "DOC_NOT_IN_AP", (record,)))
            continue
        row, _ = ap[group[1]]
        paired.add(group[1])
        pair = tuple(sorted([record, _rid("ap_invoices", row)]))
        same_amount = (entry["currency"], _cents(entry["total"])) == (
            row["currency"],
            _cents(row["amount"]),
        )
        if not same_amount:
            exceptions.add(("document_ap", "DOC_AMOUNT_MISMATCH", pair))
        if entry["invoice_date"] != row["invoice_date"]:
            exceptions.add(("document_ap", "DOC_DATE_MISMATCH", pair))
        if same_amount and entry["invoice_date"] == row["invoice_date"]:
            matched.update(pair)
    delivered = {d for d in window if landed.documents[d]}
    for invoice_id, (row, d) in ap.items():
        if row["po_number"] and d in delivered and invoice_id not in paired:
            exceptions.add(("document_ap", "AP_WITHOUT_DOC", (_rid("ap_invoices", row),)))
    return exceptions, matched


def contract_ap(landed: Landed, as_of: date) -> tuple[set, set]:
    """(open exceptions, no matches) of AP invoices ↔ contract payment terms as of ``as_of``."""

    def key(text: str | None) -> str:
        return "".join(ch for ch in text or "" if ch.isalnum()).lower()

    window = _window(landed, as_of)
    contracts = [
        (d, name, entry)
        for d in landed.days
        if d <= as_of
        for name, entry in landed.contracts[d].items()
    ]
    paid: dict[str, str] = {}
    for d in window:
        for r in landed.rows["ap_payments"][d]:
            paid[r["invoice_id"]] = max(paid.get(r["invoice_id"], ""), r["payment_date"])
    exceptions = set()
    for d in window:
        for row in landed.rows["ap_invoices"][d]:
            vendor = key(row["vendor_name"])
            governing = [
                (landed_on, name, entry)
                for landed_on, name, entry in contracts
                if vendor
                and (vendor in key(entry["vendor_name"]) or key(entry["vendor_name"]) in vendor)
                and entry["effective_date"] <= row["invoice_date"]
            ]
            if not governing:
                continue
            landed_on, name, entry = max(governing, key=lambda c: (c[0], c[1]))
            issued = date.fromisoformat(row["invoice_date"])
            latest = max(row["due_date"], paid.get(row["invoice_id"], ""))
            if date.fromisoformat(latest) > issued + timedelta(days=entry["payment_days"]):
                records = tuple(sorted([_rid("ap_invoices", row), _contract_rid(landed_on, name)]))
                exceptions.add(("contract_ap", "AP_TERMS_OUTSIDE_CONTRACT", records))
    return exceptions, set()


def payroll_hris(landed: Landed, day: date) -> set:
    payments = landed.rows["payroll_register"][day]
    if not payments:
        return set()
    roster = {r["employee_id"]: r for r in landed.rows["hris_roster"][day]}
    found = set()
    by_period = defaultdict(list)
    for p in payments:
        record = _rid("payroll_register", p)
        by_period[(p["employee_id"], p["pay_period_start"])].append(record)
        person = roster.get(p["employee_id"])
        if person is None:
            found.add(("payroll_hris", "PAID_UNKNOWN_EMPLOYEE", (record,)))
            continue
        if person["status"] == "terminated" and person["termination_date"] < p["pay_period_start"]:
            found.add(("payroll_hris", "PAID_NOT_ACTIVE", (record,)))
        salary = Decimal(person["annual_salary"])
        if abs(Decimal(p["gross"]) * 24 - salary) > Decimal("0.25") * salary:
            found.add(("payroll_hris", "PAY_VARIANCE", (record,)))
    for records in by_period.values():
        if len(records) > 1:
            found.add(("payroll_hris", "DUPLICATE_PAYMENT", tuple(sorted(records))))
    period_end = payments[0]["pay_period_end"]
    paid = {p["employee_id"] for p in payments}
    for employee_id, person in roster.items():
        if (
            person["status"] == "active"
            and person["hire_date"] <= period_end
            and employee_id not in paid
        ):
            found.add(("payroll_hris", "ACTIVE_NOT_PAID", (f"hris_roster:{employee_id}",)))
    return found


def expense_policy(landed: Landed, day: date) -> set:
    def silver(d: date) -> list[dict]:
        valid = landed.valid_claims[d]
        seen, rows = set(), []
        for r in landed.rows["expense_lines"][d]:
            k = f"{r['report_id']}|{r['line_id']}"
            if k in valid and k not in seen:
                seen.add(k)
                rows.append(
                    {**r, "_d": d, "_usd": amount_usd(r["amount"], landed.rates[d][r["currency"]])}
                )
        return rows

    today = silver(day)
    found = set()
    earlier = [r for d in landed.days if day - timedelta(days=30) <= d < day for r in silver(d)]
    order = sorted(earlier + today, key=lambda r: (r["_d"], r["report_id"], int(r["line_id"])))
    first_seen: dict = {}
    for r in order:
        dup = (r["employee_id"], r["merchant"], r["transaction_date"], r["amount"], r["currency"])
        if dup in first_seen and r["_d"] == day:
            found.add(
                (
                    "expense_policy",
                    "DUPLICATE_CLAIM",
                    tuple(sorted([first_seen[dup], _rid("expense_lines", r)])),
                )
            )
        first_seen.setdefault(dup, _rid("expense_lines", r))
    splits = defaultdict(list)
    for r in today:
        record = _rid("expense_lines", r)
        limit = CATEGORY_LIMITS_USD.get(r["claimed_category"])
        splits[
            (r["employee_id"], r["merchant"], r["transaction_date"], r["claimed_category"])
        ].append(r)
        if limit is not None and r["_usd"] > limit:
            found.add(("expense_policy", "OVER_LIMIT", (record,)))
        weekend = date.fromisoformat(r["transaction_date"]).weekday() >= 5
        if weekend and r["claimed_category"] in WEEKDAY_ONLY_CATEGORIES:
            found.add(("expense_policy", "WEEKEND_EXPENSE", (record,)))
        if any(t in r["merchant"].lower() for t in BLOCKED_MERCHANT_TERMS):
            found.add(("expense_policy", "BLOCKED_MERCHANT", (record,)))
    for (_, _, _, category), rows in splits.items():
        limit = CATEGORY_LIMITS_USD.get(category)
        if (
            len(rows) > 1
            and limit
            and all(r["_usd"] <= limit for r in rows)
            and sum(r["_usd"] for r in rows) > limit
        ):
            found.add(
                (
                    "expense_policy",
                    "SPLIT_TRANSACTION",
                    tuple(sorted(_rid("expense_lines", r) for r in rows)),
                )
            )
    return found


@pytest.fixture(scope="module")
def landed(root) -> Landed:
    return Landed(root)


def _as_set(items: list[dict], closed: bool = False) -> set:
    return {
        (
            i["recon"],
            i["exception_type"],
            tuple(i["records"]),
            *([i["resolution"]] if closed else []),
        )
        for i in items
    }


# --- tests ----------------------------------------------------------------------------------------


def check_answer_keys(landed: Landed) -> set[tuple[str, str]]:
    """Assert every date's key equals the rules applied to the landed files; the types seen."""
    previous: set = set()
    for day in landed.days:
        key = landed.keys[day]
        found, matched = set(), set()
        for recon in (bank_gl, ap_gl, document_ap, contract_ap):
            exceptions, matches = recon(landed, day)
            found |= exceptions
            matched |= matches
        carried_open = set(found)
        found |= payroll_hris(landed, day) | expense_policy(landed, day)
        assert _as_set(key["open"]) == found, day
        closed = set()
        for recon, kind, records in previous - carried_open:
            if all(r in matched for r in records):
                resolution = "matched"
            elif any(landed.landed_on[r] < day - timedelta(days=LOOKBACK) for r in records):
                resolution = "aged_out"
            else:
                resolution = "superseded"
            closed.add((recon, kind, records, resolution))
        assert _as_set(key["closed"], closed=True) == closed, day
        previous = carried_open
    return {(i["recon"], i["exception_type"]) for d in landed.days for i in landed.keys[d]["open"]}


def test_answer_key_equals_the_rules_applied_to_the_landed_files(landed):
    assert len(check_answer_keys(landed)) == 22  # every seeded exception type shows up


def test_answer_key_is_exact_when_records_leave_the_lookback_window(tmp_path):
    start, end = date(2026, 9, 1), date(2026, 10, 25)  # 55 days: pairs split by the window edge
    sample_close.generate_close(
        tmp_path,
        start,
        end,
        seed=5,
        gl_lines_per_day=40,
        employees=40,
        expense_rows=10,
        # No invoice PDFs: drawing them is most of the generator's time (28.7 of 29.2 s for these
        # 55 days), and the window edges under test here are the ledgers'.
        with_documents=False,
    )
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    landed = Landed(tmp_path, days)
    check_answer_keys(landed)
    resolutions = {c["resolution"] for d in days for c in landed.keys[d]["closed"]}
    assert resolutions == {"matched", "aged_out"}


def test_timing_anomalies_open_then_close_as_matched(landed):
    closed = [(d, i) for d in DAYS for i in landed.keys[d]["closed"]]
    assert {i["exception_type"] for _, i in closed} >= {"GL_NOT_IN_BANK", "AP_NOT_IN_GL"}
    for day, item in closed:
        assert item["resolution"] == "matched"
        before = _as_set(landed.keys[day - timedelta(days=1)]["open"])
        assert (item["recon"], item["exception_type"], tuple(item["records"])) in before
        assert (item["recon"], item["exception_type"], tuple(item["records"])) not in _as_set(
            landed.keys[day]["open"]
        )


def test_every_record_in_the_key_exists_in_the_landed_files(landed):
    existing = set()
    for source, by_day in landed.rows.items():
        for rows in by_day.values():
            existing.update(_rid(source, r) for r in rows)
    existing.update(_document_rid(d, name) for d in DAYS for name in landed.documents[d])
    existing.update(_contract_rid(d, name) for d in DAYS for name in landed.contracts[d])
    for day in DAYS:
        key = landed.keys[day]
        for item in key["open"] + key["closed"]:
            assert item["records"] == sorted(item["records"])
            for record in item["records"]:
                assert record in existing, record
        for source, quarantined in key["quarantined"].items():
            keys = {_rid(source, r).split(":", 1)[1] for r in landed.rows[source][day]}
            for record_key in quarantined:  # ``#dup``: the second copy of a resent key
                assert record_key.split("#")[0] in keys, (source, record_key)


def test_files_have_exactly_the_contract_columns_and_daily_sources_always_land(root):
    for day in DAYS:
        for source, contract in CONTRACTS.items():
            folder = _folder(root, source, day)
            if not contract.lands_daily and not folder.exists():
                continue
            [path] = list(folder.iterdir())
            assert (
                path.suffix
                == {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}[contract.file_format]
            )
            if contract.file_format == "csv":
                header = path.read_text().splitlines()[0].split(",")
                assert header == contract.column_names, (source, day)
            elif contract.file_format == "parquet":
                assert pq.read_schema(path).names == contract.column_names
            else:
                rows = [json.loads(line) for line in path.read_text().splitlines()]
                assert rows and all(list(r) == contract.column_names for r in rows), (source, day)
    saturday = date(2026, 11, 14)
    assert not _folder(root, "hr_cases", saturday).exists()
    assert not _folder(root, "payroll_register", saturday).exists()
    assert _folder(root, "payroll_register", date(2026, 11, 15)).exists()
    assert _folder(root, "payroll_register", date(2026, 11, 30)).exists()
    assert _read(root, "gl_journal_lines", saturday) == []
    assert (
        pq.read_table(
            _folder(root, "bank_statement_lines", saturday) / "bank_statement_lines.parquet"
        ).num_rows
        == 0
    )


def test_bank_parquet_is_typed(root):
    table = pq.read_table(
        _folder(root, "bank_statement_lines", START) / "bank_statement_lines.parquet"
    )
    assert table.schema.field("value_date").type == pa.date32()
    assert table.schema.field("amount").type == pa.decimal128(18, 2)
    others = [f for f in table.schema if f.name not in ("value_date", "amount")]
    assert all(f.type == pa.string() for f in others)
    assert table.num_rows > 0


def test_journals_balance_except_the_quarantined_ones(landed):
    unbalanced = 0
    for day in DAYS:
        bad = landed.keys[day]["quarantined"].get("gl_journal_lines", {})
        assert set(bad.values()) <= {"UNBALANCED_JOURNAL"}
        totals = defaultdict(int)
        lines = defaultdict(list)
        for r in landed.rows["gl_journal_lines"][day]:
            totals[r["journal_id"]] += _cents(r["debit"]) - _cents(r["credit"])
            lines[r["journal_id"]].append(f"{r['journal_id']}|{r['line_number']}")
            assert r["posting_date"] == day.isoformat()
        for journal, total in totals.items():
            if total:
                unbalanced += 1
                assert sorted(lines[journal]) == sorted(
                    k for k in bad if k.startswith(journal + "|")
                )
                assert all(
                    r["account"] not in ("1010", "2100")
                    for r in landed.rows["gl_journal_lines"][day]
                    if r["journal_id"] == journal
                )
            else:
                assert not any(k.startswith(journal + "|") for k in bad)
    assert unbalanced >= 2


def test_month_end_spike_and_weekday_only_finance(landed):
    weekday = [
        len(landed.rows["gl_journal_lines"][d])
        for d in DAYS
        if d.weekday() < 5 and d != date(2026, 11, 30)
    ]
    assert len(landed.rows["gl_journal_lines"][date(2026, 11, 30)]) > 2.5 * max(weekday)
    for d in DAYS:
        if d.weekday() >= 5:
            for source in (
                "gl_journal_lines",
                "bank_statement_lines",
                "ap_invoices",
                "ap_payments",
            ):
                assert landed.rows[source][d] == []


def test_payroll_is_consistent_and_ids_unique(landed):
    ids = set()
    pay_dates = [d for d in DAYS if landed.rows["payroll_register"][d]]
    assert pay_dates == [date(2026, 11, 15), date(2026, 11, 30)]
    for day in pay_dates:
        for p in landed.rows["payroll_register"][day]:
            gross, taxes, deductions = (Decimal(p[c]) for c in ("gross", "taxes", "deductions"))
            assert Decimal(p["net"]) == gross - taxes - deductions
            assert taxes == (gross * Decimal("0.22")).quantize(Decimal("0.01"), ROUND_HALF_UP)
            assert p["payment_id"] not in ids
            ids.add(p["payment_id"])


def test_fx_rates_every_currency_every_day_but_one_missing_sek(landed):
    missing = [d for d in DAYS if set(landed.rates[d]) != set(VALID_CURRENCIES)]
    assert len(missing) == 1
    assert set(VALID_CURRENCIES) - set(landed.rates[missing[0]]) == {"SEK"}
    assert landed.keys[missing[0]]["quarantined"]["expense_lines"]
    assert "MISSING_FX_RATE" in landed.keys[missing[0]]["quarantined"]["expense_lines"].values()
    for d in DAYS:
        assert landed.rates[d]["USD"] == 1.0
        assert all(isinstance(v, float) for v in landed.rates[d].values())


def test_roster_changes_only_through_events(landed):
    history = defaultdict(list)
    for d in DAYS:
        for r in landed.rows["hris_roster"][d]:
            history[r["employee_id"]].append(r)
    changed = defaultdict(set)
    for rows in history.values():
        for a, b in pairwise(rows):
            for column in a:
                if a[column] != b[column]:
                    changed[column].add(a["employee_id"])
    assert set(changed) == {"status", "termination_date", "department", "cost_centre"}
    assert len({len(rows) for rows in history.values()}) > 1  # hires appear during the range
    assert len(history) <= SMALL["employees"]


def test_hr_cases_have_a_true_label(landed):
    for d in DAYS:
        cases = landed.rows["hr_cases"][d]
        truth = landed.keys[d]["hr_cases"]
        assert {c["case_id"] for c in cases} == set(truth)
        assert all(t["case_type"] in sample_close.HR_CASE_TYPES for t in truth.values())
        assert all(t["urgency"] in ("low", "medium", "high") for t in truth.values())
        roster = {r["employee_id"]: r for r in landed.rows["hris_roster"][d]}
        for c in cases:
            assert roster[c["employee_id"]]["name"] in c["description"]


def test_generation_is_deterministic(tmp_path):
    for name in ("a", "b"):
        sample_close.generate_close(
            tmp_path / name, date(2026, 11, 13), date(2026, 11, 16), **SMALL
        )
    files_a = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    files_b = sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    assert files_a == files_b
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_plain_expense_generator_keeps_its_key_and_obeys_the_policy(tmp_path):
    day = date(2026, 11, 16)
    key = sample_data.generate_day(tmp_path, day, rows=300, seed=5)
    assert key.rows_written == 300 and len(key.quarantined) >= len(sample_data.BAD_ROW_KINDS)
    seen = set()
    path = tmp_path / "landing" / "expense_lines" / f"business_date={day}" / "expense_lines.csv"
    with path.open(newline="") as handle:
        # one row per valid key: silver keeps one copy of a resent line
        rows = list(
            {
                f"{r['report_id']}|{r['line_id']}": r
                for r in csv.DictReader(handle)
                if f"{r['report_id']}|{r['line_id']}" in key.valid_keys
            }.values()
        )
    for r in rows:
        worst = sample_data.max_rate_to_usd(r["currency"])
        assert amount_usd(r["amount"], worst) < CATEGORY_LIMITS_USD[r["claimed_category"]]
        assert (
            amount_usd(r["amount"], worst)
            < CATEGORY_LIMITS_USD[key.categories[f"{r['report_id']}|{r['line_id']}"]]
        )
        if r["claimed_category"] in WEEKDAY_ONLY_CATEGORIES:
            assert date.fromisoformat(r["transaction_date"]).weekday() < 5
        assert (r["employee_id"], r["merchant"], r["transaction_date"]) not in seen
        seen.add((r["employee_id"], r["merchant"], r["transaction_date"]))


def test_answer_key_lifecycle_ages_out_after_the_lookback():
    opened = date(2026, 1, 5)
    never = sample_close._exception("bank_gl", "BANK_NOT_IN_GL", ["b:1"], opened)
    timing = sample_close._exception(
        "bank_gl", "GL_NOT_IN_BANK", ["g:1"], opened, opened + timedelta(days=2)
    )
    policy = sample_close._exception("expense_policy", "OVER_LIMIT", ["e:1"], opened)

    def states(day: date) -> tuple[int, list]:
        key = sample_close._answer_key(day, [never, timing, policy], {}, {}, {})
        return len(key.open), [c["resolution"] for c in key.closed]

    assert states(opened) == (3, [])
    assert states(opened + timedelta(days=1)) == (2, [])
    assert states(opened + timedelta(days=2)) == (1, ["matched"])
    assert states(opened + timedelta(days=45)) == (1, [])
    assert states(opened + timedelta(days=46)) == (0, ["aged_out"])


def test_default_ten_days_is_fast(tmp_path):
    began = time.perf_counter()
    keys = sample_close.generate_close(tmp_path, date(2026, 11, 20), date(2026, 11, 29))
    assert len(keys) == 10
    assert time.perf_counter() - began < 20  # a few seconds on an idle machine
    assert sum(1 for k in keys if k.open) >= 8


def test_gl_day_writes_the_volume_asked_with_matching_sources(tmp_path):
    day = date(2026, 11, 21)  # a Saturday: the benchmark day may be any date
    key = sample_close.generate_gl_day(tmp_path, day, 20_000)
    gl = _read(tmp_path, "gl_journal_lines", day)
    assert abs(len(gl) - 20_000) <= 6 and key.counts["gl_journal_lines"] == len(gl)
    assert key.counts["bank_statement_lines"] > 300 and key.counts["ap_payments"] > 50
    assert _read(tmp_path, "fx_rates", day)
