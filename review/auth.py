"""Reviewer identity: PBKDF2 password hashes, HTTP Basic credentials, bearer tokens, and
per-reviewer form tokens.

HTTP Basic sends the password with every request, in clear text unless TLS wraps it: the page
binds to loopback by default for that reason; a bearer token travels the same way. ``python -m
review.auth`` prints the hash of a password typed at the prompt, for ``REVIEW_USERS``; ``python
-m review.auth --token`` generates a token, prints it once for its holder and its hash for
``REVIEW_TOKENS``. A token is 256 random bits, so one SHA-256 is enough to keep it out of the
configuration (stretching guards guessable passwords, not random ones); it is compared as a
hash, in constant time.
"""

import base64
import binascii
import getpass
import hashlib
import hmac
import secrets
import sys

from infra.settings import Reviewer

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 600_000


def hash_password(password: str, salt: str | None = None, iterations: int = ITERATIONS) -> str:
    """``pbkdf2_sha256$<iterations>$<salt>$<hex digest>`` of ``password``."""
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"{ALGORITHM}${iterations}${salt}${digest.hex()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a ``hash_password`` hash (constant-time comparison)."""
    try:
        algorithm, iterations, salt, _ = encoded.split("$")
        expected = hash_password(password, salt, int(iterations))
    except ValueError:
        return False
    return algorithm == ALGORITHM and hmac.compare_digest(expected, encoded)


TOKEN_ALGORITHM = "sha256"


def new_token() -> str:
    """A bearer token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """``sha256$<hex digest>`` of ``token``: what ``REVIEW_TOKENS`` holds."""
    return f"{TOKEN_ALGORITHM}${hashlib.sha256(token.encode()).hexdigest()}"


class Authenticator:
    """Checks HTTP Basic credentials against the configured reviewers.

    A verified header is remembered (as a keyed hash, never the password) so that a page does
    not cost a PBKDF2 derivation per request.
    """

    def __init__(
        self,
        reviewers: tuple[Reviewer, ...],
        secret: bytes,
        token_reviewers: tuple[Reviewer, ...] = (),
    ) -> None:
        """``secret`` keys the remembered headers and the form tokens; ``token_reviewers``
        hold ``hash_token`` hashes where ``reviewers`` hold password hashes."""
        self._reviewers = {r.name: r for r in reviewers}
        self._tokens = token_reviewers
        self._secret = secret
        self._verified: dict[str, Reviewer] = {}

    def _bearer(self, token: str) -> Reviewer | None:
        presented = hash_token(token.strip())
        found = None
        # Every configured hash is compared, in constant time: no early exit tells which.
        for reviewer in self._tokens:
            if hmac.compare_digest(presented, reviewer.password_hash):
                found = reviewer
        return found

    def reviewer(self, authorization: str | None) -> Reviewer | None:
        """The reviewer an ``Authorization: Basic …`` or ``Authorization: Bearer …`` header
        proves, or None."""
        if authorization and authorization.startswith("Bearer "):
            return self._bearer(authorization[7:]) if authorization[7:].strip() else None
        if not authorization or not authorization.startswith("Basic "):
            return None
        remembered = hmac.new(self._secret, authorization.encode(), "sha256").hexdigest()
        if remembered in self._verified:
            return self._verified[remembered]
        try:
            decoded = base64.b64decode(authorization[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        name, sep, password = decoded.partition(":")
        reviewer = self._reviewers.get(name)
        if not sep or reviewer is None or not verify_password(password, reviewer.password_hash):
            return None
        if len(self._verified) > 1000:
            self._verified.clear()
        self._verified[remembered] = reviewer
        return reviewer

    def form_token(self, reviewer: Reviewer) -> str:
        """The token every form of ``reviewer`` carries: a cross-site form cannot know it."""
        return hmac.new(self._secret, f"form:{reviewer.name}".encode(), "sha256").hexdigest()

    def form_token_valid(self, reviewer: Reviewer, token: str) -> bool:
        """Whether a submitted form token is ``reviewer``'s."""
        return hmac.compare_digest(self.form_token(reviewer), token or "")


if __name__ == "__main__":
    if sys.argv[1:] == ["--token"]:
        token = new_token()
        print(f"token (give it to its holder; it is not stored): {token}")
        print(f"hash (for REVIEW_TOKENS=name:<hash>:role): {hash_token(token)}")
        raise SystemExit(0)
    typed = getpass.getpass("password: ")
    if typed != getpass.getpass("again: "):
        raise SystemExit("the passwords differ")
    print(hash_password(typed))
