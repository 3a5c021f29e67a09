"""The custom-field seed's steady contact (the one Partner_Code__c is planted on) is found in one pass over
the contacts, and is still exactly the contact the definition picks: the first, by id, whose email, phone
and name no other contact shares (a missing first name matching only another missing one)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from crmsweep.sandbox import rules
from crmsweep.sandbox.planted import planted_ids
from crmsweep.sandbox.rules import parse_datetime
from crmsweep.sandbox.salesforce_seed_fields import _steady_contact
from crmsweep.sandbox.salesforce_store import SalesforceStore
from crmsweep.sandbox.server import start_sandbox

# The definition as first written: a correlated COUNT per contact (quadratic, so only for a small org).
_BY_DEFINITION = (
    'SELECT c."Id" FROM "Contact" c WHERE c."IsDeleted" = 0 AND c."Email" IS NOT NULL AND c."Phone" IS NOT NULL '
    'AND c."EmailBouncedDate" IS NULL AND c."LastActivityDate" >= ? AND c."CreatedDate" < ? '
    'AND (SELECT COUNT(*) FROM "Contact" o WHERE lower(o."Email") = lower(c."Email")) = 1 '
    'AND (SELECT COUNT(*) FROM "Contact" o WHERE o."Phone" = c."Phone") = 1 '
    'AND (SELECT COUNT(*) FROM "Contact" o WHERE o."FirstName" IS c."FirstName" AND o."LastName" = c."LastName") = 1 '
    'ORDER BY c."Id"')


def _by_definition(store: SalesforceStore) -> str | None:
    anchor = parse_datetime(store.meta("anchor") or "")
    recent = (anchor - timedelta(days=365)).date().isoformat()
    settled = rules.format_datetime(anchor - timedelta(days=60))
    taken = planted_ids(store.path.parent)
    found = [str(r[0]) for r in store.fetch(_BY_DEFINITION, (recent, settled)) if str(r[0]) not in taken]
    return found[0] if found else None


def test_the_steady_contact_is_the_one_the_definition_picks(tmp_path: Path) -> None:
    with start_sandbox(tmp_path, records=1500):
        pass
    store = SalesforceStore(tmp_path)
    try:
        anchor = parse_datetime(store.meta("anchor") or "")
        expected = _by_definition(store)
        assert expected is not None
        assert _steady_contact(store, anchor) == expected
        # Twins made after the fact: the same email in another case, then the same (missing) first name.
        others = [str(r[0]) for r in store.fetch('SELECT "Id" FROM "Contact" WHERE "Id" != ? ORDER BY "Id" LIMIT 1',
                                                 (expected,))]
        with store.transaction() as db:
            db.execute('UPDATE "Contact" SET "Email" = (SELECT upper("Email") FROM "Contact" WHERE "Id" = ?) '
                       'WHERE "Id" = ?', (expected, others[0]))
        second = _by_definition(store)
        assert second is not None and second != expected and _steady_contact(store, anchor) == second
        with store.transaction() as db:
            db.execute('UPDATE "Contact" SET "FirstName" = NULL, "LastName" = ? WHERE "Id" IN (?, ?)',
                       ("Solo", second, others[0]))
        third = _by_definition(store)
        assert third not in (expected, second) and _steady_contact(store, anchor) == third
    finally:
        store.close()
