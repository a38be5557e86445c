"""Reconciling the account's ledger with the bank statement. Pure Python; amounts in integer fen.

Each bank line is matched to at most one ledger entry and the other way round:
1. same amount and same day, the ledger's reference found in the bank memo first, then in order;
2. then same amount within `days` days (nearest day first, then the earlier entry).
What remains is listed: ledger entries the bank does not show (missing from the statement) and bank lines
the ledger does not know (unknown), each with its amount. The result depends only on the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Line:
    key: int | str
    booked_on: date
    amount_fen: int
    counterparty: str = ""
    memo: str = ""
    reference: str = ""


@dataclass
class Reconciliation:
    matched: list[tuple[Line, Line]] = field(default_factory=list)  # (ledger, bank)
    missing_from_bank: list[Line] = field(default_factory=list)  # in the ledger, not on the statement
    unknown_in_ledger: list[Line] = field(default_factory=list)  # on the statement, not in the ledger

    @property
    def balanced(self) -> bool:
        return not self.missing_from_bank and not self.unknown_in_ledger

    @property
    def missing_fen(self) -> int:
        return sum(ln.amount_fen for ln in self.missing_from_bank)

    @property
    def unknown_fen(self) -> int:
        return sum(ln.amount_fen for ln in self.unknown_in_ledger)


def reconcile(ledger: list[Line], bank: list[Line], *, days: int = 3) -> Reconciliation:
    order = {id(e): i for i, e in enumerate(ledger)}
    free = list(ledger)
    result = Reconciliation()
    left_bank = []
    for b in bank:  # pass 1: same day and amount, reference in the memo preferred
        same = [e for e in free if e.amount_fen == b.amount_fen and e.booked_on == b.booked_on]
        same.sort(key=lambda e: (not (e.reference and e.reference in b.memo), order[id(e)]))
        if same:
            free = [e for e in free if e is not same[0]]
            result.matched.append((same[0], b))
        else:
            left_bank.append(b)
    for b in left_bank:  # pass 2: same amount within `days`
        near = [e for e in free if e.amount_fen == b.amount_fen and abs((e.booked_on - b.booked_on).days) <= days]
        near.sort(key=lambda e: (abs((e.booked_on - b.booked_on).days), order[id(e)]))
        if near:
            free = [e for e in free if e is not near[0]]
            result.matched.append((near[0], b))
        else:
            result.unknown_in_ledger.append(b)
    result.missing_from_bank = free
    return result
