"""What the seeded portal plants for each cleanup pass, and the record of it (`planted.json`).

`plant` runs over the portal `hubspot_seed.generate` built (records, links, documents), from its own
seeded random source so the base portal's values stay as they were. It
- fills what the passes read that the base portal leaves out: contacts' and companies' `state`,
  tickets linked to companies, campaigns, lists' filter branches, the lists a marketing email is sent to;
- keeps the random filler clear of every pass's cut-off (by at least `MARGIN`), so none qualifies by
  accident: open tasks are due in the last 300 days or later, open deals are either 10-60 or 120+ days
  past their close date, used lists and recent emails were touched in the last 250 days;
- plants, per pass, true candidates, held-back ones (created within the default `[protect]
  recent_days`, a person on an open deal, a company whose only link is a ticket or an open deal, an
  old list an email still sends to) and near-misses (a contact with only a mobile phone, an address
  quarantined but not hard-bounced, a task 300 days overdue, a deal 10 days past its close date...);
- and works out, from the finished portal, the ids each pass must propose and hold back under its
  default settings, in pass order (people removed by an earlier pass no longer count for a company,
  and a record an earlier pass changes is not proposed again: one change per record per plan).

stale_templates can have no held-back candidate on HubSpot: an email is stale by its own last
update, which is never before its creation, so one created within 30 days is never stale.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from crmsweep.sandbox.hubspot_campaigns_api import CAMPAIGN_KIND
from crmsweep.sandbox.hubspot_portal import EMAIL_KIND, LIST_KIND
from crmsweep.sandbox.hubspot_schema import CLOSED_DEAL_STAGES, OBJECT_TYPES
from crmsweep.sandbox.hubspot_seed import REFUSALS, PortalData, link
from crmsweep.sandbox.hubspot_store import ObjectRow
from crmsweep.sandbox.hubspot_values import format_ts, parse_ts
from crmsweep.sandbox.seed_words import CITIES, COMPANY_WORDS, FIRST_NAMES

RECENT_DAYS = 30  # [protect] recent_days, default
DEAL_DAYS = 90  # stale_open_deals days, default
TASK_DAYS = 365  # orphaned_tasks overdue_days, default
ASSET_DAYS = 365  # stale_templates and stale_lists days, default
MARGIN = 60  # days between any filler value and a cut-off
STATE_OF_CITY = {city: state for city, state, _ in CITIES}
BRAND_ONSETS = ("Bral", "Cor", "Dex", "Fen", "Gal", "Hux", "Jor", "Kel", "Lum", "Mor", "Nyx", "Orb", "Pax", "Quin",
                "Ros", "Sol", "Tav", "Ulm", "Ver", "Wex", "Yar", "Zen")
BRAND_ENDINGS = ("ara", "ium", "ovo", "eth", "ique", "andra", "ux", "elle", "opia", "ard")
OPEN_DEAL_NEAR, OPEN_DEAL_FAR = (10, 60), (120, 400)  # days past close: a near-miss, a true candidate
# The property filters of the dynamic lists (list id -> properties), what `list_filters` backs up.
LIST_FILTER_PROPERTIES: dict[str, tuple[str, ...]] = {
    "1": ("lifecyclestage",), "4": ("city", "country"), "7": ("preferred_language",), "10": ("jobtitle",),
}


@dataclass
class _Portal:
    """The generated portal indexed for the rules below."""

    data: PortalData
    rows: dict[str, dict[int, ObjectRow]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for row in self.data.objects:
            self.rows.setdefault(row.type, {})[row.id] = row

    def of(self, kind: str) -> list[ObjectRow]:
        return sorted(self.rows.get(kind, {}).values(), key=lambda r: r.id)

    def links(self, from_type: str, to_type: str) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for a_type, a_id, b_type, b_id, _, _ in self.data.associations:
            if a_type == from_type and b_type == to_type:
                out.setdefault(a_id, set()).add(b_id)
        return out


def _days_ago(anchor: datetime, when: str | None) -> float | None:
    moment = parse_ts(when or "")
    return None if moment is None else (anchor - moment).total_seconds() / 86400


def _set_created(row: ObjectRow, when: datetime) -> None:
    stamp = format_ts(when)
    created = "createdate" if "createdate" in row.properties else "hs_createdate"
    row.created_at = row.properties[created] = stamp
    if row.updated_at < stamp:
        row.updated_at = row.properties[OBJECT_TYPES[row.type].modified_property] = stamp


def _recent(anchor: datetime, created: str | None) -> bool:
    days = _days_ago(anchor, created)
    return days is not None and days < RECENT_DAYS


def _is_open(deal: ObjectRow) -> bool:
    return deal.properties.get("dealstage") not in CLOSED_DEAL_STAGES


def _ids(values: Iterable[int | str]) -> list[str]:
    """Ids as a plan names them (text), numeric ones in numeric order."""
    return sorted({str(v) for v in values}, key=lambda v: (len(v), v))


def _entry(proposed: Iterable[int | str], held: Iterable[int | str] = (), *, near: Iterable[int | str] = (),
           **notes: Any) -> dict[str, Any]:
    return {"proposed": _ids(proposed), "held": _ids(held), "near": _ids(near), **notes}


def plant(data: PortalData, seed: int) -> dict[str, dict[str, Any]]:
    """Fill, clear and plant (in place), then the ids per pass for planted.json."""
    r = random.Random(f"hubspot-assets-{seed}")
    p = _Portal(data)
    anchor = data.anchor
    ids = data.counts.ids
    for kind in ("contacts", "companies"):
        for row in p.of(kind):
            state = STATE_OF_CITY.get(str(row.properties.get("city")))
            if state:
                row.properties["state"] = state

    twins, sources = _duplicate_pairs(p)
    _unique_names(p, twins, sources, r)
    contacts = p.of("contacts")
    on_deal = p.links("contacts", "deals")
    deals = p.rows.get("deals", {})
    off_owners = {str(o) for o in ids.get("deactivated_owners", [])}
    special = ({*ids.get("stale_contacts", []), *ids.get("bounced_contacts", []), *ids.get("unreachable_contacts", []),
                *(i for pair in twins for i in pair)})
    filler = [c for c in contacts if c.id not in special and c.properties.get("phone") and c.id not in on_deal
              and c.properties.get("hubspot_owner_id") not in off_owners
              and (_days_ago(anchor, c.created_at) or 0) > MARGIN]

    # --- people: no contact info, bounced addresses ----------------------------------------------
    near_people: list[int] = []  # the last filler: the first contacts are the ones tests sample
    near_bounces: list[int] = []
    if len(filler) >= 3:
        mobile_only, phone_only, quarantined = filler[-1], filler[-2], filler[-3]
        mobile_only.properties.update(email=None, phone=None, mobilephone="+1 415 555 0134")
        phone_only.properties.update(email=None, mobilephone=None)
        quarantined.properties["hs_email_quarantined"] = "true"
        for row in (mobile_only, phone_only):  # a record holds no key for a property without a value
            row.properties = {k: v for k, v in row.properties.items() if v is not None}
        near_people, near_bounces = [mobile_only.id, phone_only.id], [quarantined.id]
    stale = set(ids.get("stale_contacts", []))
    open_deal_people = {c for c, ds in on_deal.items() if any(_is_open(deals[d]) for d in ds if d in deals)}
    unreachable = [c for c in contacts if c.id not in stale and not any(
        c.properties.get(n) for n in ("email", "phone", "mobilephone"))]
    if unreachable and not any(c.id in open_deal_people or _recent(anchor, c.created_at) for c in unreachable):
        _set_created(unreachable[0], anchor - timedelta(days=5))
    bounced_rows = [p.rows["contacts"][i] for i in sorted(ids.get("bounced_contacts", []))]
    if len(bounced_rows) >= 3:
        cleared = bounced_rows[-1]  # hard-bounced, but its address is gone already: a near-miss
        cleared.properties.pop("email", None)
        cleared.properties["phone"] = cleared.properties.get("phone") or "+1 212 555 0187"
        _set_created(bounced_rows[-2], anchor - timedelta(days=3))
        near_bounces.append(cleared.id)

    removed: set[int] = set()  # people the removal passes take, in pass order
    planted: dict[str, dict[str, Any]] = {}
    stale_held = {c for c in stale if c in open_deal_people or _recent(anchor, p.rows["contacts"][c].created_at)}
    planted["stale_contacts"] = _entry(stale - stale_held, stale_held)
    removed |= stale - stale_held
    no_info = [c.id for c in unreachable]
    no_info_held = {c for c in no_info if c in open_deal_people or _recent(anchor, p.rows["contacts"][c].created_at)}
    planted["no_contact_info"] = _entry(set(no_info) - no_info_held, no_info_held,
                                        near=near_people)
    removed |= set(no_info) - no_info_held
    hard = [c for c in contacts if c.id not in removed and c.properties.get("email") and (
        c.properties.get("hs_email_hard_bounce_reason_enum") or c.properties.get("hs_email_bad_address") == "true")]
    # A refusal's reply reads as soft (the seed wrote it), unless HubSpot flags the address as bad.
    refused = {text for _, text in REFUSALS}
    bounced_held = {c.id for c in hard if _recent(anchor, c.created_at) or (
        c.properties.get("hs_email_hard_bounce_reason") in refused
        and c.properties.get("hs_email_bad_address") != "true")}
    bounced_cleared = {c.id for c in hard} - bounced_held
    planted["bounced_emails"] = _entry(bounced_cleared, bounced_held, near=near_bounces)
    planted["duplicates"] = _entry({i for pair in (*twins, *sources) for i in pair}, (),
                                   pairs=[_ids(pair) for pair in (*twins, *sources)])

    # --- owners, tasks, deals ---------------------------------------------------------------------
    tasks = p.of("tasks")
    open_tasks = [t for t in tasks if t.properties.get("hs_task_status") != "COMPLETED"]
    for task in open_tasks:  # filler: due within the last 300 days or later
        due = _days_ago(anchor, task.properties.get("hs_timestamp"))
        if due is not None and due > TASK_DAYS - MARGIN:
            task.properties["hs_timestamp"] = format_ts(anchor - timedelta(days=r.uniform(1, 250)))
    handed = [t for t in open_tasks if t.properties.get("hubspot_owner_id") in off_owners]
    spare = [t for t in open_tasks if t not in handed and not _recent(anchor, t.created_at)]
    # (days overdue, days since created): two true candidates, 300 days late, done, and one made 10 days ago
    for task, (late, age) in zip(spare, ((500, 600), (420, 500), (300, 400), (500, 700), (450, 10)), strict=False):
        task.properties["hs_timestamp"] = format_ts(anchor - timedelta(days=late))
        _set_created(task, anchor - timedelta(days=age))
    if len(spare) >= 4:
        spare[3].properties["hs_task_status"] = "COMPLETED"
    late_tasks = [t for t in spare if t.properties.get("hs_task_status") != "COMPLETED"
                  and (_days_ago(anchor, t.properties.get("hs_timestamp")) or 0) > TASK_DAYS]
    # inactive_users hands over the tasks of deactivated owners first, but leaves the recent ones to this pass
    handed_held = [t.id for t in handed if _recent(anchor, t.created_at)]
    planted["orphaned_tasks"] = _entry([t.id for t in late_tasks if not _recent(anchor, t.created_at)],
                                       [*(t.id for t in late_tasks if _recent(anchor, t.created_at)), *handed_held],
                                       near=[t.id for t in spare[2:4]],
                                       owned_by_deactivated=_ids(t.id for t in handed),
                                       note="owned_by_deactivated are candidates too when inactive_users does "
                                            "not hand them over first (it needs reassign_to)")

    past = [deals[i] for i in sorted(ids.get("deals_open_past_close", []))]
    for deal in past:
        days_late = _days_ago(anchor, deal.properties.get("closedate")) or 0.0
        if OPEN_DEAL_NEAR[1] < days_late < OPEN_DEAL_FAR[0]:
            deal.properties["closedate"] = format_ts(anchor - timedelta(days=OPEN_DEAL_FAR[0] + r.uniform(0, 30)))
    if past:
        past[0].properties["closedate"] = format_ts(anchor - timedelta(days=OPEN_DEAL_NEAR[0]))
    far = [d for d in past if (_days_ago(anchor, d.properties.get("closedate")) or 0) >= OPEN_DEAL_FAR[0]]
    if far and not any(_recent(anchor, d.created_at) for d in far):
        _set_created(far[-1], anchor - timedelta(days=12))
    stale_deals = {d.id for d in far}
    deals_held = {d.id for d in far if _recent(anchor, d.created_at)}
    # One change per record per plan: a deal inactive_users (order 20) hands over is not closed as well.
    handed_deals = {d.id for d in far if d.id not in deals_held and _handed_over(d, off_owners, anchor)}
    closing = stale_deals - deals_held - handed_deals
    planted["stale_open_deals"] = _entry(closing, deals_held,
                                         near=[d.id for d in past if d.id not in stale_deals],
                                         handed_over_first=_ids(handed_deals))

    planted["finished_campaigns"] = _campaigns(data, r, anchor)
    planted["empty_accounts"] = _empty_companies(p, r, anchor, removed, closing, off_owners)
    guids = [key for kind, key, _, _ in data.docs if kind == CAMPAIGN_KIND]
    planted["stale_templates"], planted["stale_lists"] = _lists_and_emails(data, r, anchor, guids)
    # Last, over every record as it now is (the plants above set some creation dates), but for what an
    # earlier pass changes: people removed, and the addresses bounced_emails clears.
    changed = removed | bounced_cleared
    owned = [row for kind in ("contacts", "companies", "deals", "tickets") for row in p.of(kind)
             if row.properties.get("hubspot_owner_id") in off_owners and row.id not in changed]
    everyone = [*owned, *handed]
    users_held = {row.id for row in everyone if _recent(anchor, row.created_at)}
    planted["inactive_users"] = _entry({row.id for row in everyone} - users_held, users_held,
                                       deactivated_owners=_ids(off_owners),
                                       note="needs reassign_to: hands these over to that owner")
    return planted


def _duplicate_pairs(p: _Portal) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(contact pairs, company pairs), each (original, twin), as hubspot_seed planted them."""
    ids = p.data.counts.ids
    contacts = p.rows.get("contacts", {})
    people: list[tuple[int, int]] = []
    for twin_id in ids.get("duplicate_contacts", []):
        twin = contacts[twin_id].properties
        for row in contacts.values():
            same_name = row.id != twin_id and all(row.properties.get(k) == twin.get(k) for k in ("firstname",
                                                                                                "lastname"))
            if same_name and (row.properties.get("phone") == twin.get("phone")
                              or row.properties.get("hs_additional_emails") == twin.get("email")):
                people.append((row.id, twin_id))
                break
    companies = p.rows.get("companies", {})
    firms: list[tuple[int, int]] = []
    for twin_id in ids.get("duplicate_companies", []):
        domain = companies[twin_id].properties.get("domain")
        original = next((c.id for c in companies.values() if c.id != twin_id and c.properties.get("domain") == domain),
                        None)
        if original is not None:
            firms.append((original, twin_id))
    return people, firms


def _brands() -> Iterator[str]:
    """Company names no two of which are alike: the base seed draws from 20 words, which after a
    legal suffix is dropped makes every tenth company a duplicate of another by name."""
    for size in range(1, 4):
        for parts in itertools.product(BRAND_ENDINGS, repeat=size):
            for onset in BRAND_ONSETS:
                yield onset + "".join(parts)


def _unique_names(p: _Portal, people: Sequence[tuple[int, int]], pairs: Sequence[tuple[int, int]],
                  r: random.Random) -> None:
    """Give every company its own name (a planted duplicate pair shares one), carried to its contacts'
    `company` and its deals' names; then no two people at one company share a name by chance."""
    twin_of = {twin: original for original, twin in pairs}
    brands = _brands()
    named: dict[int, str] = {}
    # Once, not per company: the loop renames, it never links, and a scan of every association per
    # company made a 10,000-contact portal's seed take most of a minute.
    linked_to = {kind: p.links("companies", kind) for kind in ("contacts", "deals")}
    for company in p.of("companies"):
        old = str(company.properties.get("name") or "")
        word = next((w for w in COMPANY_WORDS if old.startswith(w + " ")), "")
        suffix = old[len(word) + 1:] if word else ""
        source = twin_of.get(company.id)
        named[company.id] = named[source] if source in named else f"{next(brands)} {suffix}".strip()
        company.properties["name"] = named[company.id]
        for row_kind, key in (("contacts", "company"), ("deals", "dealname")):
            for linked in linked_to[row_kind].get(company.id, ()):
                row = p.rows[row_kind][linked]
                held = str(row.properties.get(key) or "")
                if old and held.startswith(old):
                    row.properties[key] = named[company.id] + held[len(old):]
    planted = {i for pair in people for i in pair}
    seen: set[tuple[Any, Any, Any]] = set()
    for person in p.of("contacts"):
        if person.id in planted:
            continue
        who = (person.properties.get("firstname"), person.properties.get("lastname"), person.properties.get("company"))
        if who[2] and who in seen:
            free = [n for n in FIRST_NAMES if (n, who[1], who[2]) not in seen]
            person.properties["firstname"] = r.choice(free)
            who = (person.properties["firstname"], who[1], who[2])
        seen.add(who)


def _campaigns(data: PortalData, r: random.Random, anchor: datetime) -> dict[str, Any]:
    # (name, days since created, days from now to the end date or None, status)
    plan = (("Spring webinar series", 400, -200, "active"), ("Trade show follow-up", 300, -40, "in_progress"),
            ("Black Friday push", 20, -10, "paused"), ("Product launch 2027", 90, 30, "active"),
            ("Partner summit 2024", 700, -300, "completed"), ("Always-on nurture", 500, None, "planned"))
    made: list[str] = []
    for name, age, end, status in plan:
        guid = str(uuid.UUID(int=r.getrandbits(128), version=4))
        created = anchor - timedelta(days=age)
        start = created + timedelta(days=7)
        properties: dict[str, str] = {"hs_name": name, "hs_campaign_status": status,
                                      "hs_start_date": start.date().isoformat(), "hs_currency_code": "USD"}
        if end is not None:
            properties["hs_end_date"] = (anchor + timedelta(days=end)).date().isoformat()
        stamp = format_ts(created)
        updated = format_ts(created + (anchor - created) * r.random())
        data.docs.append((CAMPAIGN_KIND, guid, {"id": guid, "properties": properties, "createdAt": stamp,
                                                "updatedAt": updated, "businessUnits": [{"id": 0}]}, False))
        made.append(guid)
    return _entry(made[:2], made[2:3], near=made[3:])


def _handed_over(row: ObjectRow, off_owners: set[str], anchor: datetime) -> bool:
    """Whether inactive_users hands this record over (a deactivated owner's, not held back as recent):
    then no later pass proposes it, a plan holding one change per record."""
    return row.properties.get("hubspot_owner_id") in off_owners and not _recent(anchor, row.created_at)


def _empty_companies(p: _Portal, r: random.Random, anchor: datetime, removed: set[int],
                     closed_by_pass: set[int], off_owners: set[str]) -> dict[str, Any]:
    companies = p.of("companies")
    empty = sorted(p.data.counts.ids.get("companies_without_contacts", []))
    with_contacts = p.links("companies", "contacts")
    linkable = [c.id for c in companies if with_contacts.get(c.id)]
    tickets = p.of("tickets")
    for ticket in tickets:
        link(p.data, "tickets", ticket.id, "companies", r.choice(linkable))
    deals = p.rows.get("deals", {})
    future = [d for d in p.of("deals") if _is_open(d) and d.id not in closed_by_pass
              and (_days_ago(anchor, d.properties.get("closedate")) or 0) < 0]
    if len(empty) >= 5 and tickets and future:  # held back: one by a ticket, one by an open deal, one new
        link(p.data, "tickets", tickets[0].id, "companies", empty[0])
        link(p.data, "deals", future[0].id, "companies", empty[1])
        company = p.rows["companies"][empty[2]]
        _set_created(company, anchor - timedelta(days=7))
    with_contacts = p.links("companies", "contacts")
    with_deals = p.links("companies", "deals")
    with_tickets = p.links("companies", "tickets")
    # Candidates: no contacts left. Held back (and counted by the pass): recent, on an open deal, or
    # with any ticket (open or closed). Of the rest, those inactive_users hands over are not proposed.
    candidates = [c for c in companies if not (with_contacts.get(c.id, set()) - removed)]
    held = {c.id for c in candidates if _recent(anchor, c.created_at) or with_tickets.get(c.id)
            or any(_is_open(deals[d]) and d not in closed_by_pass for d in with_deals.get(c.id, ()))}
    handed = {c.id for c in candidates if c.id not in held and _handed_over(c, off_owners, anchor)}
    near = [c.id for c in companies if len(with_contacts.get(c.id, set()) - removed) == 1][:2]  # one contact left
    return _entry({c.id for c in candidates} - held - handed, held, near=near, handed_over_first=_ids(handed))


def _lists_and_emails(data: PortalData, r: random.Random, anchor: datetime,
                      campaigns: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    lists = {key: doc for kind, key, doc, _ in data.docs if kind == LIST_KIND}
    deleted = {key for kind, key, _, archived in data.docs if kind == LIST_KIND and archived}
    unused = {str(i) for i in data.counts.ids.get("unused_lists", [])}
    still_sent = sorted(unused, key=int)[2] if len(unused) > 2 else None  # an old list an email still uses
    used = [k for k in lists if k not in unused and k not in deleted]
    for key in used:
        doc = lists[key]
        if (_days_ago(anchor, doc.get("updatedAt")) or 0) > ASSET_DAYS - MARGIN:
            touched = format_ts(_after(doc.get("createdAt"), anchor, r))
            doc["updatedAt"] = doc["filtersUpdatedAt"] = touched
    for key, properties in LIST_FILTER_PROPERTIES.items():
        if key in lists:
            lists[key]["filterBranch"] = _filter_branch(properties)
    emails = [(key, doc, archived) for kind, key, doc, archived in data.docs if kind == EMAIL_KIND]
    old: list[str] = []
    near: list[str] = []
    designed_old = data.counts.old_marketing_emails  # the first ones, untouched for two years
    for n, (key, doc, archived) in enumerate(emails):
        stamp = "publishedAt" if doc.get("isPublished") else "updatedAt"
        if n >= designed_old and (_days_ago(anchor, doc.get(stamp)) or 0) > ASSET_DAYS - MARGIN:
            doc[stamp] = format_ts(_after(doc.get("createdAt"), anchor, r))
        if archived:
            pass
        elif n < designed_old:
            old.append(key)
        else:
            near.append(key)
        if doc.get("updatedAt", "") < doc.get("publishedAt", ""):
            doc["updatedAt"] = doc["publishedAt"]
        targets = [used[n % len(used)]] if used else []
        if still_sent is not None and n == len(emails) - 2 and not archived:
            targets.append(still_sent)
        if campaigns and n % 3 == 0:  # some emails belong to a campaign, as the shape allows
            doc["campaign"] = campaigns[n % len(campaigns)]
        doc["to"] = {"contactIlsLists": {"include": targets, "exclude": []},
                     "contactLists": {"include": [], "exclude": []}, "limitSendFrequency": False,
                     "suppressGraymail": True}
    stale_lists = [k for k in unused if k not in deleted and k != still_sent]
    templates = _entry(old, (), near=near, note="no held-back one: an email is stale by its own last "
                       "publication or update, never before it was created")
    # The old list an email still sends to is stale, and the pass holds it back and counts it.
    listing = _entry(stale_lists, [still_sent] if still_sent else (), near=sorted(deleted))
    return templates, listing


def _after(created: Any, anchor: datetime, r: random.Random) -> datetime:
    start = max(parse_ts(str(created or "")) or anchor, anchor - timedelta(days=250))
    return start + (anchor - start) * r.random()


def _filter_branch(properties: Iterable[str]) -> dict[str, Any]:
    filters = [{"filterType": "PROPERTY", "property": name,
                "operation": {"operationType": "ALL_PROPERTY", "operator": "IS_KNOWN",
                              "includeObjectsWithNoValueSet": False}} for name in properties]
    return {"filterBranchType": "OR", "filterBranchOperator": "OR", "filters": [], "filterBranches": [
        {"filterBranchType": "AND", "filterBranchOperator": "AND", "filters": filters, "filterBranches": []}]}
