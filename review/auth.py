"""Reviewer identity: PBKDF2 password hashes, HTTP Basic credentials, per-reviewer form tokens.

HTTP Basic sends the password with every request, in clear text unless TLS wraps it: the page
binds to loopback by default for that reason. ``python -m review.auth`` prints the hash of a
password typed at the prompt, for ``REVIEW_USERS``.
"""

import base64
import binascii
import getpass
import hashlib
import hmac
import secrets

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


class Authenticator:
    """Checks HTTP Basic credentials against the configured reviewers.

    A verified header is remembered (as a keyed hash, never the password) so that a page does
    not cost a PBKDF2 derivation per request.
    """

    def __init__(self, reviewers: tuple[Reviewer, ...], secret: bytes) -> None:
        """``secret`` keys the remembered headers and the form tokens."""
        self._reviewers = {r.name: r for r in reviewers}
        self._secret = secret
        self._verified: dict[str, Reviewer] = {}

    def reviewer(self, authorization: str | None) -> Reviewer | None:
        """The reviewer an ``Authorization: Basic …`` header proves, or None."""
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
    typed = getpass.getpass("password: ")
    if typed != getpass.getpass("again: "):
        raise SystemExit("the passwords differ")
    print(hash_password(typed))
