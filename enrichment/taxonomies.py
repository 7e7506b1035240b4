"""The label sets the pipeline classifies into, each label described for model and analyst."""

from enrichment.models import Label, Taxonomy

SPEND_CATEGORY = Taxonomy(
    name="spend_category",
    labels=(
        Label(
            "travel_air",
            "Air travel: airline tickets, airfare, flights, baggage and seat fees.",
            ("airline flight ticket", "return airfare", "economy ticket plane"),
        ),
        Label(
            "lodging",
            "Hotels and other accommodation while travelling: room nights, resort fees.",
            ("hotel nights", "accommodation inn stay", "lodging room"),
        ),
        Label(
            "ground_transport",
            "Taxis, ride hailing, car rental, trains, buses, parking and tolls.",
            ("taxi from airport", "car rental", "train ticket rail", "ride uber"),
        ),
        Label(
            "meals",
            "Meals and drinks: team or client lunches and dinners, coffee, restaurants.",
            ("client lunch restaurant", "team dinner", "coffee cafe"),
        ),
        Label(
            "software",
            "Software subscriptions, licences, cloud services and SaaS seats.",
            ("licence seats subscription", "cloud compute web services", "saas"),
        ),
        Label(
            "office_supplies",
            "Stationery, printer supplies, small office equipment.",
            ("printer paper toner", "notebooks pens stationery", "office supplies"),
        ),
        Label(
            "training",
            "Courses, certifications, seminars, conference and CPE registrations.",
            ("online course certification", "seminar registration cpe", "training"),
        ),
        Label(
            "telecom",
            "Mobile phone plans, roaming, data and internet charges.",
            ("mobile data roaming", "phone plan wireless", "internet"),
        ),
        Label(
            "other",
            "Anything that fits none of the other categories.",
            (),
        ),
    ),
)

HR_CASE_TYPE = Taxonomy(
    name="hr_case_type",
    labels=(
        Label(
            "payroll_query",
            "Questions or errors about pay: payslips, net pay, overtime, deductions, tax codes.",
            ("payslip looks wrong", "overtime missing from pay", "net pay deduction query"),
        ),
        Label(
            "leave_request",
            "Requests to book or plan leave: annual leave, parental leave, sick leave, sabbatical.",
            ("book annual leave holiday", "parental leave baby", "time off request"),
        ),
        Label(
            "benefits",
            "Benefit plans: health and dental cover, pension contributions, enrolment, dependants.",
            ("dental plan enrolment", "pension contribution change", "add partner to health plan"),
        ),
        Label(
            "harassment_complaint",
            "Reports of harassment, bullying, discrimination or inappropriate conduct by others.",
            ("inappropriate comments colleague", "feel unsafe conduct", "bullying report"),
        ),
        Label(
            "relocation",
            "Moving to another office, city or country: transfers and relocation support.",
            ("relocation support move", "transfer to another office city", "moving family"),
        ),
        Label(
            "performance",
            "Performance reviews, ratings, improvement plans and disputes about them.",
            ("disagree with review rating", "performance improvement plan", "appraisal"),
        ),
        Label(
            "resignation",
            "An employee resigning or giving notice: last day, notice period, leaving for an "
            "offer.",
            ("formal resignation notice", "last day leaving", "accepted another offer resigning"),
        ),
        Label("other", "Anything that fits none of the other case types.", ()),
    ),
)

HR_CASE_URGENCY = Taxonomy(
    name="hr_case_urgency",
    labels=(
        Label(
            "high",
            "Needs action within a day: safety, harassment or discrimination, legal exposure, "
            "an employee leaving, pay that is wrong now.",
            ("feel unsafe", "harassment complaint confidential", "resigning last day", "unpaid"),
        ),
        Label(
            "medium",
            "Needs action within the week: pay questions, disputed reviews, transfers, planning "
            "leave that affects staffing.",
            ("payslip query overtime", "disagree with review", "relocation transfer"),
        ),
        Label(
            "low",
            "Routine, no deadline pressure: enrolment questions, booking ordinary leave, "
            "information requests.",
            ("how do I enrol dental plan", "book annual leave", "pension contribution question"),
        ),
    ),
)

EXCEPTION_REASON = Taxonomy(
    name="exception_reason",
    labels=(
        Label(
            "timing_difference",
            "Both sides will agree once the other posts or clears: in transit, posted late, "
            "value date after the cut-off.",
            ("not yet cleared in transit", "posted late after cut-off", "timing"),
        ),
        Label(
            "missing_entry",
            "One side has a record the other never received: a payment or invoice not posted, "
            "a bank movement with no ledger entry.",
            ("has no GL posting", "no bank line", "not posted in the ledger", "not in AP"),
        ),
        Label(
            "duplicate_entry",
            "The same transaction recorded or paid twice.",
            ("duplicate posting", "paid twice", "duplicate claim", "duplicate payment"),
        ),
        Label(
            "amount_or_fx_error",
            "Both sides exist but the amounts differ: keying error, wrong FX rate, partial "
            "payment, pay different from the contract.",
            ("amount mismatch", "differs by", "pay variance", "wrong exchange rate"),
        ),
        Label(
            "unknown_party",
            "A payment to someone the master data does not know or no longer employs.",
            ("employee not on the roster", "unknown employee", "not active", "terminated"),
        ),
        Label(
            "policy_breach",
            "An expense that breaks policy: over the limit, split to stay under it, on a weekend, "
            "at a blocked merchant.",
            ("over the limit", "split transaction", "weekend expense", "blocked merchant"),
        ),
        Label("other", "Anything the other reasons do not explain.", ()),
    ),
)
