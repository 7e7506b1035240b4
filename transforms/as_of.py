"""The as-of date as a column: how a run's dates are computed in one plan.

The reconciliations and the HRIS history are set-based: each input row is copied once per as-of
date whose window holds it (``as_of_dates``), every key, window and join includes ``AS_OF``, and
the outputs' ``business_date`` is that column. The close of ``D`` inside a 30-date run is
therefore the same rows as the close of ``D`` alone, and the plan does not grow with the dates.
"""

from collections.abc import Iterable
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from transforms.frames import local_frame

AS_OF = "as_of"


def dates_frame(spark: SparkSession, days: Iterable[date]) -> DataFrame:
    """The distinct ``days`` as a one-column DataFrame (``AS_OF date``)."""
    return local_frame(spark, [(d,) for d in sorted(set(days))], f"{AS_OF} date")


def as_of_dates(
    df: DataFrame, days: Iterable[date], lookback_days: int | None, column: str = "business_date"
) -> DataFrame:
    """``df``'s rows once per date of ``days`` whose window holds them, that date in ``AS_OF``.

    The window of ``D`` is ``[D - lookback_days, D]`` on ``column`` (every date up to ``D`` when
    ``lookback_days`` is None): per as-of date, exactly the rows a one-date filter on that window
    keeps. Each row is exploded over the run's dates it is seen on (no join, so no broadcast job);
    the sequence never reaches outside the run's first and last dates, however old the row.
    """
    wanted = sorted(set(days))
    on = F.col(column)
    start = F.greatest(on, F.lit(wanted[0]))
    stop = F.lit(wanted[-1])
    if lookback_days is not None:
        stop = F.least(F.date_add(on, lookback_days), stop)
    seen_on = F.sequence(start, stop)
    if len(wanted) != (wanted[-1] - wanted[0]).days + 1:  # not a contiguous range
        in_run = [F.lit(d) for d in wanted]
        seen_on = F.filter(seen_on, lambda d: d.isin(in_run))
    return df.where(on.isNotNull() & (start <= stop)).withColumn(AS_OF, F.explode(seen_on))
