"""The review page: the open queue with filters, one value's record, accept or override, and
assignment of an open value to a reviewer.

Server-rendered Starlette pages. Reads and writes go through ``infra/review.py`` (delta-rs, no
Spark); the only writes are ``record_decision`` and ``assign_item``, the ledgers' one code path.
Every request needs a configured reviewer (HTTP Basic, or a bearer token); every form carries
the reviewer's form token.
"""

import html
import json
import secrets
from collections.abc import Callable
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from infra.lakehouse import LakehouseResource
from infra.review import (
    REVIEWED_TABLES,
    UNASSIGNED,
    DecisionError,
    assign_item,
    assignees,
    open_queue,
    queue_item,
    record_decision,
    review_record,
    reviewed_table,
)
from infra.settings import Reviewer, ReviewSettings
from review.auth import Authenticator
from transforms.review import REASONS

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
# No caching of pages with records on them, no framing (clickjacking of the decision form).
HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
# The queue's assignee filter for the items nobody is assigned to.
NOBODY = "-"
# The most a form body may hold: a comment, a label and the item's coordinates.
MAX_FORM_BYTES = 16_384


def _page(name: str, status_code: int = 200, **context: object) -> HTMLResponse:
    return HTMLResponse(
        TEMPLATES.get_template(name).render(**context), status_code=status_code, headers=HEADERS
    )


def _date(value: str | None, what: str = "date") -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{what} must be YYYY-MM-DD, not {value!r}") from None


def create_app(lakehouse: LakehouseResource, settings: ReviewSettings) -> Starlette:
    """The review page over ``lakehouse``, for ``settings.reviewers``."""
    # A fresh secret per process: restarting the page invalidates open forms, nothing else.
    auth = Authenticator(settings.reviewers, secrets.token_bytes(32), settings.token_reviewers)
    # Everyone an item may be assigned to: the configured reviewers, by either sign-in.
    names = sorted({r.name for r in (*settings.reviewers, *settings.token_reviewers)})

    def reviewer_of(request: Request) -> Reviewer:
        reviewer = auth.reviewer(request.headers.get("authorization"))
        if reviewer is None:
            raise HTTPException(
                401,
                "a configured reviewer's name and password (or bearer token) are needed",
                headers={
                    "WWW-Authenticate": 'Basic realm="review", charset="UTF-8", '
                    'Bearer realm="review"'
                },
            )
        return reviewer

    async def queue(request: Request) -> Response:
        reviewer = reviewer_of(request)
        q = request.query_params
        table, reason = q.get("table") or None, q.get("reason") or None
        if table and table not in REVIEWED_TABLES:
            raise HTTPException(400, f"unknown table {table!r}")
        if reason and reason not in REASONS:
            raise HTTPException(400, f"unknown reason {reason!r}")
        try:
            max_confidence = float(q["max_confidence"]) if q.get("max_confidence") else None
        except ValueError:
            raise HTTPException(400, "max_confidence must be a number") from None
        assignee = q.get("assignee") or None
        if assignee == NOBODY:
            assignee = UNASSIGNED
        elif assignee is not None and assignee not in names:
            raise HTTPException(400, f"unknown reviewer {assignee!r}")
        items = await run_in_threadpool(
            open_queue, lakehouse, table, _date(q.get("date")), reason, max_confidence, assignee
        )
        for item in items:
            item["href"] = "/item?" + urlencode({k: str(item[c]) for k, c in _ITEM_PARAMS.items()})
        return _page(
            "queue.html",
            reviewer=reviewer,
            items=items,
            tables=sorted(REVIEWED_TABLES),
            reasons=REASONS,
            reviewers=names,
            nobody=NOBODY,
            filters={
                k: q.get(k, "") for k in ("table", "date", "reason", "max_confidence", "assignee")
            },
            decided=q.get("decided"),
        )

    def _item_page(
        reviewer: Reviewer, params: dict, error: str | None = None, status_code: int = 200
    ) -> Response:
        table = params.get("table", "")
        if table not in REVIEWED_TABLES:
            raise HTTPException(404, f"unknown table {table!r}")
        spec = reviewed_table(table)
        day = _date(params.get("date"))
        item = queue_item(lakehouse, table, params.get("key", ""), day, params.get("field", ""))
        if item is None:
            raise HTTPException(404, "this value is not in the review queue")
        key = _key_values(spec.key_cols, item["key"])
        grain = (item["table_name"], item["key"], item["business_date"], item["field"])
        item["assignee"] = assignees(lakehouse).get(grain, item.get("assignee"))
        record = review_record(lakehouse, item, key, reviewer.role)
        taxonomy = spec.taxonomy(item["field"])
        return _page(
            "item.html",
            status_code=status_code,
            reviewer=reviewer,
            item=item,
            key=key,
            record=record,
            labels=taxonomy.labels if taxonomy is not None else None,
            kind=spec.field(item["field"]).kind,
            token=auth.form_token(reviewer),
            reviewers=names,
            assigned=params.get("assigned"),
            error=error,
        )

    async def item_page(request: Request) -> Response:
        reviewer = reviewer_of(request)
        return await run_in_threadpool(_item_page, reviewer, dict(request.query_params))

    async def form_of(request: Request, reviewer: Reviewer) -> dict:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "form too large")
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if not auth.form_token_valid(reviewer, form.get("token", "")):
            raise HTTPException(403, "the form token is missing or not yours: reload the page")
        return form

    async def submit(
        request: Request,
        write: Callable[[dict, Reviewer], object],
        done: Callable[[dict], str],
    ) -> Response:
        """Write the form's change as its reviewer, then go to ``done(form)``; a change the
        ledger refuses shows the item again with the reason."""
        reviewer = reviewer_of(request)
        form = await form_of(request, reviewer)
        try:
            await run_in_threadpool(lambda: write(form, reviewer))
        except DecisionError as refused:
            return await run_in_threadpool(_item_page, reviewer, form, str(refused), 400)
        return RedirectResponse(done(form), status_code=303)

    async def assign(request: Request) -> Response:
        def write(form: dict, reviewer: Reviewer) -> None:
            assign_item(
                lakehouse,
                **_item_of(form),
                assignee=form.get("assignee") or None,
                assigned_by=reviewer.name,
                assigner_role=reviewer.role,
                reviewers=names,
            )

        def back_to_item(form: dict) -> str:
            back = {k: form.get(k, "") for k in _ITEM_PARAMS}
            return "/item?" + urlencode({**back, "assigned": 1})

        return await submit(request, write, back_to_item)

    async def decide(request: Request) -> Response:
        def write(form: dict, reviewer: Reviewer) -> None:
            record_decision(
                lakehouse,
                **_item_of(form),
                decision=form.get("decision", ""),
                new_value=form.get("new_value") or None,
                comment=form.get("comment", ""),
                decided_by=reviewer.name,
                reviewer_role=reviewer.role,
            )

        return await submit(request, write, lambda form: "/?decided=1")

    async def error_page(request: Request, exc: HTTPException) -> Response:
        return HTMLResponse(
            f"<h1>{exc.status_code}</h1><p>{html.escape(str(exc.detail))}</p>",
            status_code=exc.status_code,
            headers={**HEADERS, **(exc.headers or {})},
        )

    return Starlette(
        routes=[
            Route("/", queue),
            Route("/item", item_page),
            Route("/decide", decide, methods=["POST"]),
            Route("/assign", assign, methods=["POST"]),
        ],
        exception_handlers={HTTPException: error_page},
    )


# Query parameters of an item's page and the queue columns they come from.
_ITEM_PARAMS = {"table": "table_name", "key": "key", "date": "business_date", "field": "field"}


def _item_of(form: dict) -> dict:
    """The value a form is about, in the arguments of ``assign_item`` and ``record_decision``."""
    return {
        "table": form.get("table", ""),
        "key": form.get("key", ""),
        "business_date": _date(form.get("date")),
        "field": form.get("field", ""),
    }


def _key_values(key_cols: tuple[str, ...], key: str) -> dict:
    values = json.loads(key)
    return {c: values.get(c) for c in key_cols}
