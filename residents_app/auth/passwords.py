"""The password policy for staff accounts: at least 10 characters, none of the common passwords listed in
common_passwords.txt beside this file (compared case-insensitively), not the username itself."""

from __future__ import annotations

from functools import cache
from pathlib import Path

MIN_LENGTH = 10
MAX_LENGTH = 200
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().casefold() for line in lines if line.strip() and not line.startswith("#"))


def password_problem(password: str, username: str = "") -> str | None:
    """Why `password` is refused (a message for the user, in Chinese), or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"密码至少 {MIN_LENGTH} 位"
    if len(password) > MAX_LENGTH:
        return f"密码最多 {MAX_LENGTH} 位"
    folded = password.strip().casefold()
    if folded in common_passwords():
        return "这个密码太常见，很容易被猜中，请换一个"
    if username and folded == username.strip().casefold():
        return "密码不能与用户名相同"
    return None
