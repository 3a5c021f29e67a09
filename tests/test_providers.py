"""The provider registry: one entry per CRM, found by itself; generic code provider-neutral.

The neutrality proof runs the whole story (backup, scan, apply, rollback through `crmsweep.api`)
against the in-memory fake under a third provider registered by adding ONE module, once with
Salesforce's field names and once with a made-up CRM whose every name differs.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from typer.testing import CliRunner

from crmsweep import api, providers
from crmsweep.cli import app
from crmsweep.config import load_config, resolve_connection
from crmsweep.connectors import open_connector
from crmsweep.connectors.base import Connection, Connector
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.errors import BadInput
from crmsweep.model import FieldKind, Op, Plan, Record, Vocabulary
from crmsweep.paths import Home
from crmsweep.providers import Provider
from crmsweep.sandbox.server import SandboxInfo
from tests import fake_provider
from tests.fake_connector import ACME_VOCABULARY, FAKE_CAPABILITIES, FAKE_VOCABULARY, FakeConnector, spec
from tests.fake_connector import standard_fields as fake_standard_fields

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
OLD = "2019-03-01T12:00:00.000Z"
RECENT = "2030-05-20T12:00:00.000Z"


# --- the registry ----------------------------------------------------------------------------------


def test_both_providers_are_registered_with_their_builtin_connections() -> None:
    assert providers.names() == ("hubspot", "salesforce")
    assert [p.name for p in providers.all()] == ["hubspot", "salesforce"]
    assert providers.by_builtin_connection("sandbox-salesforce") is providers.get("salesforce")
    assert providers.by_builtin_connection("sandbox-hubspot") is providers.get("hubspot")
    assert providers.by_builtin_connection("prod") is None
    assert providers.default().name == "salesforce"
    hubspot = providers.get("hubspot")
    assert (hubspot.capabilities.supports_undelete, hubspot.capabilities.has_associations) == (False, True)
    assert hubspot.capabilities.max_batch_write == hubspot.capabilities.max_query_page == 100
    assert hubspot.vocabulary.deleted_field == "archived" and hubspot.vocabulary.people_objects == ("contacts",)


def test_unknown_provider_names_the_known_ones() -> None:
    with pytest.raises(BadInput, match=r"^unknown provider 'acme': use one of hubspot, salesforce$"):
        providers.get("acme")
    with pytest.raises(BadInput, match=r"^unknown provider \(not shown\)"):
        providers.get("pat-na1-0123456789abcdef0123456789abcdef")


def test_a_part_not_built_yet_is_one_line_but_a_broken_one_is_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(BadInput, match=r"^the Acme connector is not built yet$"):
        providers.import_part("crmsweep.connectors.acme_not_here", "the Acme connector")
    # A part that exists but needs a package that is missing is a real error, not "not built yet".
    (tmp_path / "acme_part.py").write_text("import acme_sdk_that_is_not_installed\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="acme_sdk_that_is_not_installed"):
        providers.import_part("acme_part", "the Acme connector")


# --- a third provider is one module --------------------------------------------------------------------


class NoSandbox:
    """The handle of a provider whose sandbox is the fake itself: nothing serves, stop is counted."""

    def __init__(self, state_dir: Path, stops: list[Path]) -> None:
        self.info = SandboxInfo(provider="", url="https://127.0.0.1:9", ca_file=state_dir / "ca.pem",
                                       token="fake-token", state_dir=state_dir, org_id="")
        self._stops = stops

    def stop(self) -> None:
        self._stops.append(self.info.state_dir)

    def __enter__(self) -> NoSandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def fake_entry(vocabulary: Vocabulary, org: FakeConnector, stops: list[Path]) -> Provider:
    def connect(connection: Connection, retry: RetryPolicy | None) -> Connector:
        org.connection_name = connection.name
        return org

    def start(state_dir: Path, /, **options: Any) -> NoSandbox:
        return NoSandbox(state_dir, stops)

    return Provider(
        name=vocabulary.provider,
        title=vocabulary.provider.title(),
        vocabulary=vocabulary,
        capabilities=org.capabilities,
        connect=connect,
        start_sandbox=start,
        builtin_connection=f"sandbox-{vocabulary.provider}",
        url_example=f"https://crm.{vocabulary.provider}.example",
        token_name="api key",
        token_env_example="ACME_KEY",
        api_version_pattern=re.compile(r"v[0-9]+"),
        api_version_example="v2",
        client_library="a fake",
        sandbox_speaks="nothing",
        demo_objects=vocabulary.people_objects,
    )


@pytest.fixture
def register(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Provider], None]]:
    """Register a provider exactly as a third CRM would be: one module in the providers package."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    monkeypatch.setattr(providers, "__path__", [*providers.__path__, str(plugins)])
    added: list[str] = []

    def add(entry: Provider) -> None:
        fake_provider.UNDER_TEST[entry.name] = entry
        (plugins / f"{entry.name}.py").write_text(
            f"from tests.fake_provider import UNDER_TEST\n\nPROVIDER = UNDER_TEST[{entry.name!r}]\n", encoding="utf-8"
        )
        added.append(entry.name)
        providers._registry.cache_clear()

    yield add
    for name in added:
        fake_provider.UNDER_TEST.pop(name, None)
        sys.modules.pop(f"crmsweep.providers.{name}", None)
    monkeypatch.undo()
    providers._registry.cache_clear()


def neutral_org(vocab: Vocabulary) -> FakeConnector:
    """People (two stale, one stale on an open deal, one active), users (one idle), a deal and its link,
    all under `vocab`'s names."""
    people, users, deals = vocab.people_objects[0], vocab.user_object, vocab.deal_object
    link = vocab.deal_links[0]
    activity = vocab.last_activity_fields[0]
    names = (*vocab.label_fields.get(people, ()), vocab.email_field)
    user_labels = vocab.label_fields.get(users, ())

    def std(*extra: Any, deletable: bool = True) -> list[Any]:
        return fake_standard_fields(*extra, deletable=deletable, vocabulary=vocab)

    fields = {
        people: std(*(spec(n) for n in dict.fromkeys(names)), spec(vocab.owner_field),
                    spec(activity, FieldKind.DATETIME, writable=False)),
        users: std(*(spec(n) for n in user_labels), spec(vocab.user_active_field, FieldKind.BOOL),
                   spec(vocab.user_last_login_field, FieldKind.DATETIME, writable=False), deletable=False),
        deals: std(spec(vocab.deal_closed_field, FieldKind.BOOL), spec(vocab.deal_close_date_field, FieldKind.DATE)),
        link.object: std(spec(link.person_field), spec(link.deal_field)),
    }
    audit = {name: OLD for name in (vocab.created_field, *vocab.audit_fields)}
    audit[vocab.fingerprint_field] = OLD

    def person(n: int, last: str) -> Record:
        return {vocab.id_field: f"p{n}", **{f: f"person{n}@example.com" if f == vocab.email_field else f"Person {n}"
                                             for f in names},
                vocab.owner_field: "u0", activity: last, **audit}

    records: dict[str, list[Record]] = {
        people: [person(1, OLD), person(2, OLD), person(3, OLD), person(4, RECENT)],
        users: [
            {vocab.id_field: "u0", **{f: "Idle" for f in user_labels}, vocab.user_active_field: True,
             vocab.user_last_login_field: OLD, **audit},
            {vocab.id_field: "u1", **{f: "Busy" for f in user_labels}, vocab.user_active_field: True,
             vocab.user_last_login_field: RECENT, **audit},
        ],
        deals: [{vocab.id_field: "d1", vocab.deal_closed_field: False, vocab.deal_close_date_field: "2031-01-01",
                 **audit}],
        link.object: [{vocab.id_field: "l1", link.person_field: "p3", link.deal_field: "d1", **audit}],
    }
    org = FakeConnector(fields, records, vocabulary=vocab, capabilities=FAKE_CAPABILITIES, org_id="ORG-NEUTRAL")
    org.running_user_id = "u1"
    return org


SALESFORCE_NAMES = replace(
    FAKE_VOCABULARY, default_backup_objects=("User", "Contact", "Opportunity", "OpportunityContactRole")
)


@pytest.mark.parametrize("vocab", [SALESFORCE_NAMES, ACME_VOCABULARY], ids=["salesforce-names", "acme-names"])
def test_scan_apply_rollback_through_a_third_provider(
    vocab: Vocabulary, register: Callable[[Provider], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = neutral_org(vocab)
    register(fake_entry(vocab, org, []))
    before = {obj: org.all_rows(obj) for obj in org._fields}
    config = tmp_path / "crmsweep.toml"
    config.write_text(
        f'[connections.crm]\nprovider = "{vocab.provider}"\nurl = "https://crm.example"\ntoken_env = "CRM_KEY"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("CRM_KEY", "key")
    ws = api.Workspace.load(config, tmp_path / "home")
    people, users = vocab.people_objects[0], vocab.user_object

    outcome = api.scan(ws, "crm", tmp_path / "plan.json", now=NOW)
    plan = outcome.result.plan
    assert sorted((c.op, c.object, c.record_id) for c in plan.changes) == [
        (Op.DEACTIVATE, users, "u0"), (Op.DELETE, people, "p1"), (Op.DELETE, people, "p2"),
    ]
    assert outcome.result.held_back["stale_contacts"] == {f"on an open {vocab.deal_object.lower()}": 1}
    assert plan.header.provider == vocab.provider

    report = api.apply(ws, tmp_path / "plan.json", confirm=_yes).report
    assert report is not None and (report.applied, report.failed, report.skipped) == (3, 0, 0)
    deleted = vocab.deleted_field or ""
    assert [org.row(people, f"p{n}")[deleted] for n in (1, 2, 3, 4)] == [True, True, False, False]
    assert org.row(users, "u0")[vocab.user_active_field] is False

    back = api.rollback(ws, report.run_id, confirm=_yes).report
    assert back is not None and (back.applied, back.failed) == (3, 0)
    stamped = {vocab.fingerprint_field, *vocab.audit_fields}
    for obj, rows in before.items():
        now_rows = org.all_rows(obj)
        assert {rid: _without(r, stamped) for rid, r in now_rows.items()} == {
            rid: _without(r, stamped) for rid, r in rows.items()
        }, obj


def _without(row: Record, names: set[str]) -> Record:
    return {k: v for k, v in row.items() if k not in names}


def _yes(plan: Plan) -> bool:
    return True


def test_a_third_providers_builtin_connection_starts_and_stops_its_sandbox(
    register: Callable[[Provider], None], tmp_path: Path
) -> None:
    stops: list[Path] = []
    register(fake_entry(ACME_VOCABULARY, neutral_org(ACME_VOCABULARY), stops))
    config = load_config(None, environ={})
    assert config.connection_names == ["sandbox-acme", "sandbox-hubspot", "sandbox-salesforce"]
    home = Home(tmp_path / "home")
    with contextlib.ExitStack() as stack:
        connection = resolve_connection(config, "sandbox-acme", home, stack, environ={})
        assert (connection.provider, connection.url, connection.token) == ("acme", "https://127.0.0.1:9", "fake-token")
        connector = open_connector(connection)
        assert connector.vocabulary is ACME_VOCABULARY
        assert stops == []
    assert stops == [home.sandbox_dir("acme")]


def test_a_configured_connection_of_a_third_provider_gets_its_texts(
    register: Callable[[Provider], None], tmp_path: Path
) -> None:
    register(fake_entry(ACME_VOCABULARY, neutral_org(ACME_VOCABULARY), []))
    config = tmp_path / "c.toml"
    config.write_text('[connections.x]\nprovider = "acme"\nurl = "http://crm"\ntoken_env = "K"\n', encoding="utf-8")
    with pytest.raises(BadInput, match=r"url: must be an https:// address like https://crm\.acme\.example, "):
        load_config(config)
    config.write_text('[connections.x]\nprovider = "nope"\nurl = "https://crm"\ntoken_env = "K"\n', encoding="utf-8")
    with pytest.raises(BadInput, match=r"provider: must be one of acme, hubspot, salesforce, got 'nope'"):
        load_config(config)
    config.write_text('[connections.sandbox-acme]\nprovider = "acme"\nurl = "https://crm"\ntoken_env = "K"\n',
                      encoding="utf-8")
    with pytest.raises(BadInput, match=r"\[connections.sandbox-acme\] is a built-in connection name"):
        load_config(config)


# --- the CLI chooses through the registry ------------------------------------------------------------------


def test_sandbox_serve_and_demo_refuse_a_provider_the_registry_lacks(tmp_path: Path) -> None:
    runner = CliRunner()
    home = str(tmp_path / "home")
    for argv in (["sandbox", "serve", "--provider", "acme"], ["demo", "--provider", "acme"]):
        result = runner.invoke(app, [*argv, "--home", home])
        assert result.exit_code == 2, result.output
        assert "unknown provider 'acme': use one of hubspot, salesforce" in result.output


def test_demo_runs_on_the_sandbox_of_the_provider_it_is_given(
    register: Callable[[Provider], None], tmp_path: Path
) -> None:
    """`demo --provider acme` takes acme's built-in connection from the registry and tells the whole story
    on it, under acme's names, and the org ends as it began."""
    stops: list[Path] = []
    org = neutral_org(ACME_VOCABULARY)
    register(fake_entry(ACME_VOCABULARY, org, stops))
    before = {obj: org.all_rows(obj) for obj in org._fields}
    result = CliRunner().invoke(app, ["demo", "--provider", "acme", "--home", str(tmp_path / "home")])
    assert result.exit_code == 0, result.output
    assert "embedded Acme sandbox" in result.output and "Live: 4 person, 2 active users." in result.output
    assert "Live after apply: 2 person, 1 active users." in result.output
    assert "Back under their own ids: 1 member reactivated; 2 person undeleted.\n" in result.output
    assert "Nothing had to be re-created under a new id." in result.output
    assert "crmsweep scan -c sandbox-acme" in result.output
    assert stops and set(stops) == {tmp_path / "home" / "sandbox" / "acme"}
    assert {obj: {rid: r[ACME_VOCABULARY.deleted_field or ""] for rid, r in org.all_rows(obj).items()}
            for obj in ("person",)} == {"person": {rid: False for rid in before["person"]}}
    assert org.row("member", "u0")["enabled"] is True


# --- no generic module tests a provider's name ---------------------------------------------------------------

PROVIDER_SPECIFIC = re.compile(
    r"^crmsweep/(connectors/(salesforce|hubspot)[^/]*\.py|providers/(salesforce|hubspot)\.py|sandbox/.*)$"
)


def generic_modules() -> list[Path]:
    return sorted(
        p for p in (ROOT / "crmsweep").rglob("*.py")
        if not PROVIDER_SPECIFIC.match(p.relative_to(ROOT).as_posix())
    )


def test_no_generic_module_names_a_provider() -> None:
    modules = generic_modules()
    assert ROOT / "crmsweep" / "config.py" in modules and ROOT / "crmsweep" / "providers" / "__init__.py" in modules
    names = [p.name for p in providers.all()]
    pattern = re.compile("|".join(re.escape(n) for n in names), re.IGNORECASE)
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in modules
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


def test_the_fake_filters_by_the_vocabularys_own_names() -> None:
    org = neutral_org(ACME_VOCABULARY)
    org.touch_behind_our_back("person", "p2", mail=None)  # rev_at moves to the fake's clock (2030)
    assert org.count("person") == 4
    pages = org.iter_pages("person", ["uid"], since="2030-01-01T00:00:00Z")
    assert [r["uid"] for page in pages for r in page] == ["p2"]
    assert org.count("person", ids=["p1", "p3", "nope"]) == 2 and org.count("person", ids=[]) == 0
    assert org.count("person", equals={"mail": None}) == 1 and org.count("person", has_value=["mail"]) == 3
    assert org.count("member", equals={"enabled": True}) == 2
