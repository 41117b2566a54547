"""HTTP Basic credentials for --api-auth: parsed once, checked in constant time on every /sdapi/v1 route."""
from __future__ import annotations

import secrets
from typing import Callable

from fastapi import Depends, HTTPException
from fastapi.security import HTTPBasic, HTTPBasicCredentials


def parse_credentials(text: str | None) -> dict[str, str]:
    """`user:pass[,user2:pass2]` → {user: pass}; a malformed entry stops the app at start-up."""
    pairs: dict[str, str] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        user, sep, password = item.partition(":")
        if not sep or not user:
            raise ValueError(f"--api-auth: expected user:pass, got {item!r}")
        pairs[user] = password
    return pairs


def basic_auth_dependency(credentials: dict[str, str]) -> Callable:
    """A FastAPI dependency that answers 401 (with a Basic challenge) unless a known user/password is sent."""
    # auto_error=False: a missing header must give our 401 JSON, not HTTPBasic's bare 401.
    scheme = HTTPBasic(auto_error=False)

    def check(given: HTTPBasicCredentials | None = Depends(scheme)) -> str:
        if given is not None:
            expected = credentials.get(given.username)
            # compare_digest on both paths so an unknown user takes as long as a wrong password
            matches = secrets.compare_digest((expected or "").encode(), given.password.encode())
            if expected is not None and matches:
                return given.username
        raise HTTPException(status_code=401, detail="Incorrect username or password",
                            headers={"WWW-Authenticate": "Basic"})

    return check
