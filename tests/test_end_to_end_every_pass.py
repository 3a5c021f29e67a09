"""Every pass's changes applied to the default seeded sandbox of each provider, then rolled back: the org,
read back through its API by a second backup, equals the first backup — records, field definitions,
reports, lists and templates included; ids kept where the CRM allows, mapped through the rollback's run log
where it re-creates.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from crmsweep import api
from crmsweep.backup.runlog import read_run
from crmsweep.backup.snapshot_reader import open_snapshot
from crmsweep.cleanup.passes import PASSES
from crmsweep.model import ASSOCIATION_FROM_FIELD, ASSOCIATION_TO_FIELD, Plan
from crmsweep.paths import Home
from crmsweep.providers import get as provider_of
from crmsweep.providers import names as provider_names
from crmsweep.sandbox.server import start_sandbox
from tests.test_planted_passes import SETTINGS

TOKEN_ENV = "EVERY_PASS_TOKEN"
# Filled fields too, so that a rollback must write values back, not only the definitions.
FIELDS = "\n[passes.unused_custom_fields]\nmax_fill = 0.5\n"


# Keys of a definition kept as JSON text that say when it was last written (a re-created one is new).
WRITE_STAMPS = frozenset({"updatedAt", "updatedUserId", "archivedAt", "LastModifiedDate", "LastModifiedById"})


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str) and a.startswith("{") and b.startswith("{"):
        try:
            left, right = json.loads(a), json.loads(b)
        except ValueError:
            return a == b
        if isinstance(left, dict) and isinstance(right, dict):
            return ({k: v for k, v in left.items() if k not in WRITE_STAMPS}
                    == {k: v for k, v in right.items() if k not in WRITE_STAMPS})
    return bool(a == b)


def yes(plan: Plan) -> bool:
    return True


def _rows(home: Home, snapshot_id: str, obj: str, id_field: str, deleted: str | None) -> dict[str, dict[str, Any]]:
    reader = open_snapshot(home, snapshot_id)
    if not reader.has(obj):
        return {}
    frame = reader.frame(obj)
    if deleted and deleted in frame.columns:
        frame = frame[~frame[deleted].fillna(False).astype(bool)]
    rows: dict[str, dict[str, Any]] = {}
    for record in frame.astype(object).to_dict("records"):
        clean: dict[str, Any] = {str(k): (None if isinstance(v, float) and math.isnan(v) else v)
                                 for k, v in record.items()}
        clean = {k: (None if v is not None and str(v) in ("NaT", "<NA>") else v) for k, v in clean.items()}
        key = str(clean[id_field]) if id_field in clean else "|".join(f"{k}={clean[k]}" for k in sorted(clean))
        rows[key] = clean
    return rows


@pytest.mark.parametrize("provider", provider_names())
def test_every_pass_applied_then_rolled_back_leaves_the_org_as_it_was(provider: str, tmp_path: Path) -> None:
    vocab = provider_of(provider).vocabulary
    with start_sandbox(tmp_path / "state", provider=provider) as sandbox:  # the default size and seed
        info = sandbox.info
        config = tmp_path / "crmsweep.toml"
        config.write_text(
            f'[connections.e2e]\nprovider = "{provider}"\nurl = "{info.url}"\ntoken_env = "{TOKEN_ENV}"\n'
            f'ca_file = "{info.ca_file}"\n\n{SETTINGS[provider]}{FIELDS}',
            encoding="utf-8",
        )
        mp = pytest.MonkeyPatch()
        mp.setenv(TOKEN_ENV, info.token)
        try:
            ws = api.Workspace.load(config, tmp_path / "home")
            before = api.backup(ws, "e2e")
            scanned = api.scan(ws, "e2e", tmp_path / "plan.json", snapshot_id=before.snapshot_id, allow_over_cap=True)
            plan = scanned.result.plan
            ran = {c.pass_name for c in plan.changes}
            expected = {n for n, s in PASSES.items() if not s.report_only and n not in scanned.result.skipped}
            assert ran == expected, f"passes that proposed nothing: {sorted(expected - ran)}"
            applied = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
            assert applied is not None and applied.failed == 0, applied
            rolled = api.rollback(ws, applied.run_id, confirm=yes).report
            assert rolled is not None
            skipped = [(i["object"], i["detail"]) for i in rolled.skipped_items]
            assert rolled.failed == 0 and rolled.skipped == 0, skipped
            after = api.backup(ws, "e2e")
        finally:
            mp.undo()
    home = ws.home
    id_map = read_run(home, rolled.run_id).id_map
    ignored = {*vocab.audit_fields, vocab.fingerprint_field, vocab.created_field}
    differences: list[str] = []
    for obj, entry in before.objects.items():
        old = _rows(home, before.snapshot_id, obj, vocab.id_field, vocab.deleted_field)
        new = _rows(home, after.snapshot_id, obj, vocab.id_field, vocab.deleted_field)
        specs = {f.name: f for f in entry.fields}
        remapped = id_map.get(obj, {})
        back = {new_id: old_id for old_id, new_id in remapped.items()}
        if ASSOCIATION_FROM_FIELD in specs and ASSOCIATION_TO_FIELD in specs:
            # Links name records by id: a re-created end is named by its new id after the rollback.
            ends = [names for o, names in id_map.items()]
            reverse = {new_id: old_id for names in ends for old_id, new_id in names.items()}
            old_links = {(r[ASSOCIATION_FROM_FIELD], r[ASSOCIATION_TO_FIELD]) for r in old.values()}
            new_links = {(reverse.get(str(r[ASSOCIATION_FROM_FIELD]), r[ASSOCIATION_FROM_FIELD]),
                          reverse.get(str(r[ASSOCIATION_TO_FIELD]), r[ASSOCIATION_TO_FIELD])) for r in new.values()}
            if old_links != new_links:
                differences.append(f"{obj}: {len(old_links - new_links)} links gone, {len(new_links - old_links)} new")
            continue
        new = {back.get(k, k): v for k, v in new.items()}
        if set(old) != set(new):
            gone, added = sorted(set(old) - set(new))[:5], sorted(set(new) - set(old))[:5]
            differences.append(f"{obj}: ids gone {gone}, new {added}")
        for rid in sorted(set(old) & set(new)):
            recreated = rid in remapped
            for name, spec in specs.items():
                if name in ignored or name == vocab.id_field:
                    continue
                # A re-created record holds what an API client may write; the CRM computes the rest anew.
                if recreated and not (spec.createable or spec.updateable):
                    continue
                if not _same(old[rid].get(name), new[rid].get(name)):
                    differences.append(f"{obj} {rid}: {name} was {old[rid].get(name)!r}, now {new[rid].get(name)!r}")
                    break
    assert not differences, "\n".join(differences[:40])
