"""The open rounds' votes of the district data set (bench_district.py), as the services would have written them.

Each estate's committee has two members (A enters, B confirms: rounds/ballots.py refuses a confirmation by the
one who entered). Every voter ends with exactly one counted ballot (current_ballot points to it, the counters
count it), reached in one of these ways, each with the ballot rows, files and audit entries (kind, actor,
subject, data) that rounds/ballots.py and rounds/castpath.py write for it:

- online: one `ballot.cast` (actor unit:U/owner:O, channel online, a receipt);
- a vote change (online, twice): the first ballot superseded, two `ballot.cast` entries, current_ballot's
  previous_choice the first choice;
- paper: the scan (round_file), `ballot.paper_entered` by A (data: the scan's SHA-256), then B confirms:
  `ballot.cast` by B (channel paper, cast_at the entry's time, a receipt);
- proxy: the mandate's evidence (round_file), `proxy.mandate_recorded` by A, `ballot.proxy_entered` by A, then
  `ballot.cast` by B (channel proxy, cast by the owner through the proxy);
- a conflict: the owner voted online, then a paper form for the unit is entered (A) and confirmed (B):
  `ballot.paper_conflict` by B, `ballot.conflict_resolved` by A with a reason; kept paper: `ballot.cast` by A
  (the online ballot superseded), kept online: the paper ballot rejected.

The number of vote changes is what is left to reach the issue's audit entries (245,249 per 300,000 units);
they are spread evenly over the online voters. Within an estate the entries follow each other a minute apart:
online casts, then the changes, then the committee's batch (mandates, entries, confirmations, resolutions).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from residents_app.audit.chain import canonical_json, chain_entry, new_receipt

EVENTS_SHARE = (245_249, 300_000)  # the audit entries per unit of the district
PAPER, PROXY, CONFLICT = 100, 20, 5  # per mille of the voters: paper forms, proxies, paper-online conflicts
CHOICES = ("agree", "disagree", "abstain")


def final_choice(uid: int) -> str:
    r = (uid * 31) % 20
    return "agree" if r < 15 else "disagree" if r < 19 else "abstain"


def way_of(uid: int) -> str:
    k = (uid * 40503) % 1000
    return "paper" if k < PAPER else "proxy" if k < PAPER + PROXY else \
        "conflict" if k < PAPER + PROXY + CONFLICT else "online"


def base_events(n_voters_by_way: dict[str, int], n_estates: int) -> int:
    """Audit entries of the open rounds without any vote change (round.opened, then per voter by its way)."""
    w = n_voters_by_way
    conflicts_kept = w.get("conflict_kept", 0)
    return (n_estates + w.get("online", 0) + 2 * w.get("paper", 0) + 3 * w.get("proxy", 0)
            + 4 * w.get("conflict", 0) + conflicts_kept)


@dataclass
class Votes:
    ballots: list = field(default_factory=list)   # ballot rows (BALLOT_COLUMNS)
    current: list = field(default_factory=list)   # current_ballot rows (CURRENT_COLUMNS)
    files: list = field(default_factory=list)     # round_file rows (FILE_COLUMNS)
    mandates: list = field(default_factory=list)  # proxy_mandate rows (MANDATE_COLUMNS)
    events: list = field(default_factory=list)    # audit_event rows (EVENT_COLUMNS)
    counts: dict = field(default_factory=dict)    # what was made, by kind


BALLOT_COLUMNS = ("id", "round_id", "unit_id", "choice", "items", "comment", "channel", "status", "cast_by_owner_id",
                  "entered_by_id", "confirmed_by_id", "confirmed_at", "scan_file_id", "mandate_id", "proxy_name",
                  "resolution_reason", "cast_at", "receipt_code")
CURRENT_COLUMNS = ("round_id", "unit_id", "ballot_id", "choice", "channel", "cast_at", "previous_choice")
FILE_COLUMNS = ("id", "round_id", "purpose", "mime", "size_bytes", "sha256", "data", "uploaded_by_id", "uploaded_at")
MANDATE_COLUMNS = ("id", "round_id", "unit_id", "owner_id", "proxy_name", "proxy_phone", "evidence_file_id",
                   "recorded_by_id", "recorded_at")
EVENT_COLUMNS = ("id", "chain", "seq", "kind", "at", "actor", "subject_type", "subject_id", "data", "prev_hash",
                 "hash")


class _Chain:
    """One estate's chain from its head: entries a `step` apart from `t`, hashed as the services hash them."""

    def __init__(self, out: Votes, chain: int, seq: int, prev: str, t: datetime, step: timedelta, next_id):
        self.out, self.chain, self.seq, self.prev, self.t, self.step, self.next_id = \
            out, chain, seq, prev, t, step, next_id

    def tick(self) -> datetime:
        self.t += self.step
        return self.t

    def add(self, kind: str, at: datetime, actor: str, subject_type: str, subject_id, data: dict) -> None:
        # `data` holds only str, int and lists of them: its JSON-decoded form is itself (audit.record round-trips).
        self.seq += 1
        ev = chain_entry(chain=self.chain, seq=self.seq, kind=kind, at=at, actor=actor, subject_type=subject_type,
                         subject_id=str(subject_id), data=data, prev_hash=self.prev)
        self.prev = ev["hash"]
        self.out.events.append((self.next_id("event"), self.chain, self.seq, kind, ev["at"], actor, subject_type,
                                str(subject_id), canonical_json(data), ev["prev_hash"], ev["hash"]))
        self.out.counts[kind] = self.out.counts.get(kind, 0) + 1


def build_votes(*, estates: list[int], voters_of: dict[int, list[tuple]], owners: dict[int, list[tuple[int, str]]],
                round_of: dict[int, int], committee: dict[int, tuple[tuple[int, str], tuple[int, str]]],
                heads: dict[int, tuple[int, str]], opened: datetime, roll_units: int, target_events: int,
                first_ids: dict[str, int]) -> Votes:
    """The rows of every open round's votes. voters_of: estate -> its voting units (uid, estate, building, number,
    area); committee: estate -> ((id, username) of A, of B); heads: chain -> (seq, hash) before the round opens;
    first_ids: table -> the highest id already used ("ballot", "file", "mandate", "event")."""
    ids = dict(first_ids)

    def next_id(kind: str) -> int:
        ids[kind] += 1
        return ids[kind]

    ways: dict[str, int] = {}
    for voters in voters_of.values():
        for u in voters:
            w = way_of(u[0])
            ways[w] = ways.get(w, 0) + 1
            if w == "conflict" and u[0] % 2 == 0:
                ways["conflict_kept"] = ways.get("conflict_kept", 0) + 1
    changes = max(0, target_events - base_events(ways, len(estates)))
    online_total = max(1, ways.get("online", 0))
    per_estate = max((len(v) for v in voters_of.values()), default=0)
    step = timedelta(seconds=max(1, min(60, 80_000 // max(1, per_estate * 13 // 10 + 10))))
    out = Votes()
    out.counts.update({"voters": sum(ways.get(w, 0) for w in ("online", "paper", "proxy", "conflict")),
                       "changes": 0, "paper": ways.get("paper", 0), "proxy": ways.get("proxy", 0),
                       "conflicts": ways.get("conflict", 0), "conflicts_kept_paper": ways.get("conflict_kept", 0)})

    seen = {"online": 0}

    def one_estate(e: int) -> None:
        rid = round_of[e]
        (a_id, a_name), (b_id, b_name) = committee[e]
        actor_a, actor_b = f"user:{a_id}:{a_name}", f"user:{b_id}:{b_name}"
        ch = _Chain(out, e, *heads[e], opened - step, step, next_id)
        ch.add("round.opened", ch.tick(), "system:scheduler", "round", rid,
               {"title": "是否同意改造", "roll_units": roll_units})
        counted: dict[int, tuple] = {}  # unit -> its counted ballot row (a list, finished at the end)
        replaced: dict[int, str] = {}  # unit -> previous_choice of its current_ballot
        changers, committee_work = [], []

        def online(uid: int, choice: str) -> list:
            owner = owners[uid][0][0]
            at, receipt, bid = ch.tick(), new_receipt(), next_id("ballot")
            row = [bid, rid, uid, choice, "[]", "", "online", "counted", owner, None, None, None, None, None, "", "",
                   at, receipt]
            out.ballots.append(row)
            ch.add("ballot.cast", at, f"unit:{uid}/owner:{owner}", "ballot", bid,
                   {"round_id": rid, "unit_id": uid, "choice": choice, "channel": "online", "items": [],
                    "cast_at": at.isoformat(), "receipt": receipt})
            return row

        def supersede(row: list) -> None:
            """`row` becomes the unit's counted ballot: the upsert keeps the choice it replaced."""
            earlier = counted.get(row[2])
            if earlier is not None:
                earlier[7] = "superseded"
                replaced[row[2]] = earlier[3]
            counted[row[2]] = row

        def count(row: list, at: datetime, actor: str) -> None:
            """rounds.ballots._count: the paper or proxy ballot counts (receipt, the earlier one superseded)."""
            row[7], row[17] = "counted", new_receipt()
            ch.add("ballot.cast", at, actor, "ballot", row[0],
                   {"round_id": rid, "unit_id": row[2], "choice": row[3], "channel": row[6], "items": [],
                    "cast_at": row[16].isoformat(), "receipt": row[17]})
            supersede(row)

        for u in voters_of.get(e, []):
            uid, w, choice = u[0], way_of(u[0]), final_choice(u[0])
            if w == "online":
                seen["online"] += 1
                n = seen["online"]
                if (n * changes) // online_total > ((n - 1) * changes) // online_total:
                    first = "disagree" if choice == "agree" else "agree"
                    counted[uid] = online(uid, first)
                    changers.append((uid, choice))
                else:
                    counted[uid] = online(uid, choice)
            elif w == "conflict":
                counted[uid] = online(uid, "disagree" if choice == "agree" else "agree")
                committee_work.append((uid, "conflict", choice))
            else:
                committee_work.append((uid, w, choice))
        for uid, choice in changers:  # the owners who vote again, hours later
            supersede(online(uid, choice))
            out.counts["changes"] += 1

        # The committee's batch: mandates and forms entered by A, then confirmed by B, then the conflicts.
        pending = []
        for uid, w, choice in committee_work:
            at = ch.tick()
            scan = f"{'委托书' if w == 'proxy' else '纸质表决票'} 小区{e} 表决{rid} 房屋{uid}".encode()
            sha = hashlib.sha256(scan).hexdigest()
            fid = next_id("file")
            out.files.append((fid, rid, "mandate" if w == "proxy" else "paper_scan", "image/jpeg", len(scan), sha,
                              scan, a_id, at))
            bid = next_id("ballot")
            if w == "proxy":
                owner = owners[uid][0][0]
                mid = next_id("mandate")
                proxy_name = f"代理人{uid}"
                out.mandates.append((mid, rid, uid, owner, proxy_name, "", fid, a_id, at))
                ch.add("proxy.mandate_recorded", at, actor_a, "mandate", mid,
                       {"unit_id": uid, "owner_id": owner, "evidence_sha256": sha})
                at = ch.tick()
                row = [bid, rid, uid, choice, "[]", "", "proxy", "pending", owner, a_id, None, None, None, mid,
                       proxy_name, "", at, None]
                ch.add("ballot.proxy_entered", at, actor_a, "ballot", bid,
                       {"round_id": rid, "unit_id": uid, "choice": choice, "mandate_id": mid})
            else:
                row = [bid, rid, uid, choice, "[]", "", "paper", "pending", None, a_id, None, None, fid, None, "",
                       "", at, None]
                ch.add("ballot.paper_entered", at, actor_a, "ballot", bid,
                       {"round_id": rid, "unit_id": uid, "choice": choice, "scan_sha256": sha})
            out.ballots.append(row)
            pending.append((row, w))
        conflicts = []
        for row, w in pending:
            at = ch.tick()
            row[10], row[11] = b_id, at
            if w == "conflict":
                row[7] = "conflict"
                ch.add("ballot.paper_conflict", at, actor_b, "ballot", row[0],
                       {"unit_id": row[2], "counted_ballot_id": counted[row[2]][0]})
                conflicts.append(row)
            else:
                count(row, at, actor_b)
        for row in conflicts:
            at = ch.tick()
            keep = "paper" if row[2] % 2 == 0 else "online"
            row[15] = "业主到场确认以纸质票为准" if keep == "paper" else "业主确认以本人线上投票为准"
            ch.add("ballot.conflict_resolved", at, actor_a, "ballot", row[0], {"keep": keep, "reason": row[15]})
            if keep == "paper":
                count(row, at, actor_a)
            else:
                row[7] = "rejected"
        out.current.extend((rid, uid, row[0], row[3], row[6], row[16], replaced.get(uid))
                           for uid, row in counted.items())
    for e in estates:
        one_estate(e)
    out.counts["ballot rows"] = len(out.ballots)
    out.counts["entries"] = len(out.events)
    return out
