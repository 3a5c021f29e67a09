"""`snapshots diff` after a clean apply and its rollback: every record they touched has new audit stamps
(the fields the provider's vocabulary names, which the CRM rewrites on every write) and nothing else
changed, so none is listed changed; the output says how many were left out, and `--all-fields` counts them.

Against the sandbox over TLS, with the CLI tests' fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path

from crmsweep import providers
from crmsweep.model import Plan
from tests import test_cli_apply as cli_apply
from tests.test_cli_apply import cli

config, home, plan_file = cli_apply.config, cli_apply.home, cli_apply.plan_file


def test_a_diff_across_an_apply_and_its_rollback_lists_no_change(config: Path, home: Path, plan_file: Path) -> None:
    plan, _ = Plan.from_json(plan_file.read_text())
    first = str(plan.header.snapshot_id)
    applied = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    cli(config, home, "rollback", applied["run"], "--yes")
    second = json.loads(cli(config, home, "backup", "-c", "cli", "--json").stdout)["snapshot"]
    touched: dict[str, int] = {}
    for change in plan.changes:
        touched[change.object] = touched.get(change.object, 0) + 1

    found = json.loads(cli(config, home, "snapshots", "diff", first, second, "--json", "--detail").stdout)
    stamps = providers.get(plan.header.provider).vocabulary.audit_fields
    assert found["audit_fields"] == list(stamps) and stamps
    for name, count in touched.items():
        counted = found["objects"][name]
        assert (counted["changed"], counted["stamps_only"], counted["changed_records"]) == (0, count, {}), name
    # The org is as it was: nothing changed anywhere (a delete's cascade, undone with it, moved stamps too).
    assert all((d["added"], d["removed"], d["changed"]) == (0, 0, 0) for d in found["objects"].values())
    stamped = sum(d["stamps_only"] for d in found["objects"].values())
    assert stamped >= len(plan.changes)
    # With the table on stdout, so `> diff.txt` keeps what the table leaves out.
    told = " ".join(cli(config, home, "snapshots", "diff", first, second).stdout.split())
    assert (f"Not counted changed: {stamped:,} records whose only differences are the CRM's audit stamps "
            f"({', '.join(stamps)}); --all-fields counts them.") in told
    assert f"Nothing changed between {first} and {second}." in told

    every = json.loads(cli(config, home, "snapshots", "diff", first, second, "--json", "--detail",
                           "--all-fields").stdout)
    assert every["audit_fields"] == []
    for name, counted in every["objects"].items():
        assert (counted["changed"], counted["stamps_only"]) == (found["objects"][name]["stamps_only"], 0), name
        assert all(set(fields) <= set(stamps) and fields for fields in counted["changed_records"].values()), name
