"""What a Spark write leaves on a local lakehouse: the table's files and Delta's log, no more."""

from datetime import date

from infra.lakehouse import LakehouseResource, TableRef
from transforms.frames import local_frame


def test_a_write_leaves_no_hadoop_checksum_sidecars_and_keeps_deltas_checksums(spark, tmp_path):
    lakehouse = LakehouseResource(root=str(tmp_path))
    table = TableRef("silver", "sidecars")
    days = [date(2026, 3, 30), date(2026, 3, 31)]
    rows = [{"business_date": d, "amount": n} for n, d in enumerate(days)]
    frame = local_frame(spark, rows, "business_date date, amount int")
    lakehouse.write_dates(frame, table, days)
    lakehouse.write_dates(frame, table, days)  # a second commit, replacing both dates

    folder = tmp_path / "silver" / "sidecars"
    names = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    # Hadoop's checksummed local file system wrote ".<file>.crc" beside each file it wrote.
    assert [n for n in names if n.rsplit("/", 1)[-1].startswith(".")] == []
    assert len([n for n in names if n.endswith(".parquet")]) == 4
    # Delta's own checksum of the table after each Spark commit is still written and read.
    assert (folder / "_delta_log" / "00000000000000000002.crc").is_file()
    assert sorted(r["amount"] for r in lakehouse.read(spark, table).collect()) == [0, 1]
