"""Integers from outside, bounded to what the databases hold.

Python's int has no bound; the databases' have: SQLite refuses past 64 bits, and every id column is an
INTEGER, 32-bit on PostgreSQL (SQLAlchemy binds ids with an ::INTEGER cast there). An id of 10**22, or of
2**40 on PostgreSQL, in a path reached the database and came back as a 500. The URL converter below
replaces Flask's `int` (create_app registers it) and matches only ids an id column can hold, so any other
path matches no route (404); query strings go through `query_int` or a bounded schema field (422).
"""

from __future__ import annotations

from flask import request
from marshmallow import validate
from werkzeug.routing import IntegerConverter, ValidationError

from residents_app.errors import ValidationFailed

ID_MAX = 2**31 - 1  # an INTEGER column on PostgreSQL (and far above any id either database hands out)
ID_MIN = -(2**31)
# A page number past which every listing is empty; keeps the offset (page x per_page <= 500) inside 64 bits.
MAX_PAGE = 1_000_000
OUT_OF_RANGE = "数字超出范围"
ID_RANGE = validate.Range(min=ID_MIN, max=ID_MAX, error=OUT_OF_RANGE)


def _at_most(limit: int) -> str:
    """A regex for the decimal numbers 0..limit (ASCII digits, any leading zeros)."""
    digits = str(limit)
    alternatives = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    for i, d in enumerate(digits):
        low = 1 if i == 0 and len(digits) > 1 else 0
        if int(d) > low:
            rest = len(digits) - i - 1
            alternatives.append(f"{digits[:i]}[{low}-{int(d) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    alternatives.append(digits)
    return "0*(?:" + "|".join(alternatives) + ")"


class IdConverter(IntegerConverter):
    """`<int:...>` bounded to 0..ID_MAX (unsigned, as Flask's own: no negative ids).

    The bound is in the regex, not only in to_python: werkzeug answers 405 instead of 404 when a path's
    shape matches a rule of another method and the converter refuses the value afterwards.
    """

    regex = _at_most(ID_MAX)

    def to_python(self, value: str) -> int:
        if self.fixed_digits and len(value) != self.fixed_digits:
            raise ValidationError()
        number = int(value.lstrip("-").lstrip("0") or "0")  # the regex bounds the digits but not the zeros
        number = -number if value.startswith("-") else number
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            raise ValidationError()
        return number


def query_int(name: str, default: int | None = None, *, max_value: int = ID_MAX,
              label: str | None = None) -> int | None:
    """An integer query parameter: missing or not a number -> `default` (as `args.get(type=int)`); a number
    an id column cannot hold (or past `max_value`) -> 422 naming the parameter."""
    raw = request.args.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        if raw.strip().lstrip("+-").isdigit():  # only too long for int(): far out of range
            value = max_value + 1
        else:
            return default
    if not ID_MIN <= value <= max_value:
        message = f"{label or name}{OUT_OF_RANGE}"
        raise ValidationFailed(message, errors={name: message})
    return value
