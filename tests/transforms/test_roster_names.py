"""The names redacted from each date's text: one query for a run's dates, each date its own."""

from datetime import date

from pyspark.sql import SparkSession

from transforms.frames import local_frame
from transforms.hr_cases import roster_names, roster_names_by_date

D1, D2, D3 = date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)


def test_each_date_gets_its_own_rosters_names_and_a_date_without_one_gets_none(
    spark: SparkSession,
):
    roster = local_frame(
        spark,
        [
            ("E1", "Ada Byron", D1),
            ("E2", "Alan Turing", D1),
            ("E2", "Alan Turing", D2),
            ("E3", None, D2),
            ("E4", "Grace Hopper", D2),
            ("E5", "Edsger Dijkstra", D3),  # not asked for
        ],
        "employee_id string, name string, business_date date",
    )
    by_date = roster_names_by_date(roster, [D2, D1, date(2026, 11, 1)])
    assert by_date == {
        date(2026, 11, 1): [],
        D1: ["Ada Byron", "Alan Turing"],
        D2: ["Alan Turing", "Grace Hopper"],
    }
    # The same names as reading each date alone.
    for day in (D1, D2):
        assert by_date[day] == roster_names(roster.where(roster.business_date == day))
