"""Two real public exports onboarded by declaration only: each lands as one of our contracts.

Nothing here is code: the mappings are read by ``transforms.mapping.read_mapped`` and the rows go
through the ordinary bronze and silver paths, which quarantine what does not fit, with a reason.
"""

from transforms.contracts import EXPENSE_LINES, HRIS_ROSTER
from transforms.mapping import SourceMapping

# Birmingham writes one directorate several ways between monthly files ("CYP&F", "CYP&F ",
# "CYP&F  ", "CYO&F", "Adults & Comms"...): trimmed, spaces collapsed, known variants canonical.
_DIRECTORATE_KEY = "upper(regexp_replace(trim(directorate), ' +', ' '))"
_BIRMINGHAM_DIRECTORATE = f"""
CASE {_DIRECTORATE_KEY}
  WHEN 'CYP&F' THEN 'CYP&F'
  WHEN 'CYO&F' THEN 'CYP&F'
  WHEN 'CYP&F SCHOOLS' THEN 'CYP&F Schools'
  WHEN 'ADULT & COMMUNITIES' THEN 'Adults & Communities'
  WHEN 'ADULTS & COMMUNITIES' THEN 'Adults & Communities'
  WHEN 'ADULTS & COMMS' THEN 'Adults & Communities'
  WHEN 'ADULTS' THEN 'Adults & Communities'
  WHEN 'LOCAL SERVICES' THEN 'Local Services'
  WHEN 'DEVELOPMENT' THEN 'Development'
  ELSE nullif(regexp_replace(trim(directorate), ' +', ' '), '')
END"""

# Dates are written "2016-12-30 00:00:00" in every month of the published extract; the other
# formats the council has used (ISO date, UK day-first, Excel's 01-Jan-15) are accepted too. A
# value none of them parses passes through unchanged, so silver rejects it as INVALID_DATE.
_BIRMINGHAM_DATE = """
coalesce(
  date_format(coalesce(
    try_to_date(trim(trans_date), 'yyyy-MM-dd HH:mm:ss'),
    try_to_date(trim(trans_date), 'yyyy-MM-dd'),
    try_to_date(trim(trans_date), 'dd/MM/yyyy'),
    try_to_date(trim(trans_date), 'dd-MMM-yy'),
    try_to_date(trim(trans_date), 'dd-MMM-yyyy')
  ), 'yyyy-MM-dd'),
  trans_date
)"""

BIRMINGHAM_PCARD = SourceMapping(
    name="birmingham_pcard",
    contract=EXPENSE_LINES,
    file_format="csv",
    columns={
        "employee_id": "card_number",
        "merchant": "merchant_name",
        # Signed as published: refunds stay negative and silver rejects them (AMOUNT_OUT_OF_RANGE).
        "amount": "original_gross_amt",
        "claimed_category": "trans_cac_desc_1",
    },
    expressions={
        # One report per published monthly file, named after it.
        "report_id": "regexp_replace(trim(source_file), '[.]xls$', '')",
        # Lines numbered within the monthly file in content order, so every run numbers alike.
        "line_id": (
            "row_number() OVER (PARTITION BY source_file ORDER BY trans_date, card_number,"
            " merchant_name, original_gross_amt, trans_vat_desc, trans_cac_code_1,"
            " trans_cac_desc_1, trans_cac_code_2, trans_cac_desc_2, trans_cac_code_3, directorate)"
        ),
        "transaction_date": _BIRMINGHAM_DATE,
        "currency": "'GBP'",
        # A neutral, personal-data-free context line: directorate and VAT code, never the label.
        "justification": (
            "nullif(concat_ws('; ',"
            f" concat('directorate ', {_BIRMINGHAM_DIRECTORATE}),"
            " concat('VAT code ', nullif(trim(trans_vat_desc), ''))), '')"
        ),
    },
    description=(
        "Birmingham City Council purchase-card transactions (Apr 2014 - Dec 2016, UK OGL v3): "
        "one masked card is one employee, the council's expense account is the claimed category."
    ),
)

_DOLLARS = "try_cast(regexp_replace(trim({}), '[$,]', '') AS decimal(18,2))"

CHICAGO_ROSTER = SourceMapping(
    name="chicago_roster",
    contract=HRIS_ROSTER,
    file_format="csv",
    columns={
        "name": "Name",
        "title": "Job Titles",
        "department": "Department",
    },
    expressions={
        "legal_entity": "'CHI01'",
        "status": "'active'",
        "currency": "'USD'",
        # Salaried staff: "Annual Salary" ("$101442.00"). Hourly staff: Hourly Rate x Typical
        # Hours x 52 weeks. Text neither parses passes through, for silver to reject.
        "annual_salary": (
            "coalesce(CAST(CAST(coalesce("
            + _DOLLARS.format("`Annual Salary`")
            + ", "
            + _DOLLARS.format("`Hourly Rate`")
            + " * try_cast(trim(`Typical Hours`) AS decimal(9,2)) * 52"
            + ") AS decimal(18,2)) AS string),"
            " nullif(trim(`Annual Salary`), ''), nullif(trim(`Hourly Rate`), ''))"
        ),
    },
    # Names repeat (~290 times) and there is no employee number: the key is a hash of the whole
    # row plus its occurrence number among identical rows.
    surrogate_key=(
        "Name",
        "Job Titles",
        "Department",
        "Full or Part-Time",
        "Salary or Hourly",
        "Typical Hours",
        "Annual Salary",
        "Hourly Rate",
    ),
    description=(
        "City of Chicago current employees and salaries (2018 snapshot): every row is active; "
        "email, cost centre, location, dates and manager are not published."
    ),
)

MAPPINGS: dict[str, SourceMapping] = {m.name: m for m in (BIRMINGHAM_PCARD, CHICAGO_ROSTER)}
