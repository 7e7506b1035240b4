"""``make review``: the review page on ``REVIEW_HOST``:``REVIEW_PORT`` (127.0.0.1:8765)."""

import logging

import uvicorn

from infra.lakehouse import LakehouseResource
from infra.settings import review_settings
from review.app import create_app


def main() -> None:
    """Serve the review page over ``LAKEHOUSE_ROOT`` for the reviewers of ``REVIEW_USERS`` and
    ``REVIEW_TOKENS``."""
    settings = review_settings()
    if not settings.reviewers and not settings.token_reviewers:
        raise SystemExit(
            "no reviewers: set REVIEW_USERS=name:hash:role,... (hash: python -m review.auth) "
            "or REVIEW_TOKENS=name:hash:role,... (python -m review.auth --token)"
        )
    if settings.host not in ("127.0.0.1", "::1", "localhost"):
        # HTTP Basic sends passwords (and a bearer its token) in clear text: beyond loopback,
        # only behind TLS.
        logging.getLogger(__name__).warning(
            "review page on %s: put it behind a TLS proxy", settings.host
        )
    uvicorn.run(
        create_app(LakehouseResource(), settings),
        host=settings.host,
        port=settings.port,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
