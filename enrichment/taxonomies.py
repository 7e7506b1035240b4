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
