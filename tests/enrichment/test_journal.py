"""The answer journal (``enrichment/journal.py``): each request's answers are on disk before the
next request leaves, and only answers (never a failure) are journaled. Spark-free, against the
local fake server."""

import json

from enrichment.journal import journal_files, read_answers
from tests.enrichment.fake_openai import Fault
from tests.enrichment.test_openai_provider import TASK, make_provider, make_records


def test_each_request_journals_its_answers_before_the_next_is_sent(fake_openai, tmp_path):
    folder = tmp_path / "journal"
    records, _ = make_records(6)
    # The first request's answer is not JSON at all: its records fail it, and go again.
    fake_openai.inject(Fault.malformed())
    seen_before_each_request: list[int] = []
    provider = make_provider(
        fake_openai,
        [],
        max_records_per_request=2,
        max_attempts_per_record=2,
        journal_dir=str(folder),
        journal_run="run-1",
    )
    original = provider._send

    def send(*args, **kwargs):
        seen_before_each_request.append(len(read_answers(journal_files(str(folder)))))
        return original(*args, **kwargs)

    provider._send = send
    outcomes = {o.id: o for o in provider.run(TASK, records)}

    answers = read_answers(journal_files(str(folder), "run-1"))
    assert sorted(a["input_hash"] for a in answers) == sorted(outcomes)
    assert all(a["enrichment_status"] == "ok" for a in answers)
    assert {a["input_hash"]: a["label"] for a in answers} == {
        rid: o.label for rid, o in outcomes.items()
    }
    assert {a["prompt_version"] for a in answers} == {TASK.prompt_version}
    # The failed first request journaled nothing; the second's two answers were on disk before
    # the third request left.
    assert seen_before_each_request[:3] == [0, 0, 2]
    assert seen_before_each_request == sorted(seen_before_each_request)
    assert journal_files(str(folder), "run-2") == []
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no partial file
    assert json.loads(journal_files(str(folder))[0].read_text().splitlines()[0])["model"]


def test_the_paying_run_is_read_from_the_file_name():
    """A Dagster run id has dashes of its own; the file's suffix is one uuid hex."""
    from pathlib import Path

    from enrichment.journal import journal_run

    run = "5b2c7e1e-0f7d-4b8e-9a43-2d3f4c5b6a79"
    assert journal_run(Path(f"/j/{run}-0123456789abcdef0123456789abcdef.jsonl")) == run
    assert journal_run(Path("/j/run-1-0123456789abcdef0123456789abcdef.jsonl")) == "run-1"
