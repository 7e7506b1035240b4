"""Which labelled history a date's history model learns from: a function of the date alone.

A history model (``transforms/mllib_classifier.py``) serves a whole week: every business date from
Monday to Sunday is scored by one model, trained on the ``history_days`` business dates before
that Monday. The window depends on the date and nothing else: not on which dates a run covers, nor
on what it has written so far, so closing a week in one ranged run or one date at a time trains
the same model on the same rows (the model is registered once per week and content,
``infra/history_models.py``). A Monday's window is the ``history_days`` before it, as a daily
model's was; later dates of the week do not learn from the days since Monday.

Spark-free.
"""

from dataclasses import dataclass
from datetime import date, timedelta

DAYS_PER_WEEK = 7


@dataclass(frozen=True)
class TrainingWindow:
    """The week a history model serves and the business dates it is trained on (inclusive).

    Attributes:
        week_start: the Monday of the week the model scores.
        first: the oldest business date of its labelled history.
        last: the newest (the Sunday before ``week_start``).
    """

    week_start: date
    first: date
    last: date

    def __str__(self) -> str:
        return f"{self.first}..{self.last}"

    def serves(self, day: date) -> bool:
        """Whether ``day`` is scored by this window's model (it falls in the window's week)."""
        return self.week_start <= day < self.week_start + timedelta(days=DAYS_PER_WEEK)


def training_window(day: date, history_days: int) -> TrainingWindow:
    """The window of the model that scores ``day``: the ``history_days`` before its Monday.

    Raises:
        ValueError: ``history_days`` is not positive.
    """
    if history_days < 1:
        raise ValueError(f"history_days must be positive, got {history_days}")
    week_start = day - timedelta(days=day.weekday())
    return TrainingWindow(
        week_start=week_start,
        first=week_start - timedelta(days=history_days),
        last=week_start - timedelta(days=1),
    )


def history_reach_days(history_days: int) -> int:
    """How many dates before a date its model's training window may reach (a Sunday: 6 more)."""
    return history_days + DAYS_PER_WEEK - 1
