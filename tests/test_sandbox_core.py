"""The sandbox core is provider-neutral: a tiny "echo" API, registered here, is served by the same
core as Salesforce, with its TLS, token check, faults, latency, call counting, allowance, recycle
bin and admin endpoint, and every answer in the echo API's own shape."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from crmsweep.sandbox import apis, core
from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.provider_api import ApiContext, Call, Endpoint, Request, Response, json_response
from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from crmsweep.sandbox.store import Store
from crmsweep.sandbox.windows import RollingWindow

FLAG = "archived"
KEY_HEADER = "x-echo-key"  # the echo API carries its token in its own header, not Authorization


# --- the echo provider: its whole API is below ---------------------------------------------------


class EchoApi:
    """Notes with ids "n1".."nN"; a note may have a parent, and archiving a parent archives its children."""

    def __init__(self, context: ApiContext) -> None:
        self.store = context.store
        self.faults = context.faults
        self.routed = 0
        self.now = 0.0
        self.window = RollingWindow(2, 10, clock=lambda: self.now)

    def credential(self, request: Request) -> str | None:
        return request.headers.get(KEY_HEADER)

    def endpoint(self, request: Request) -> Endpoint:
        if request.path == "/echo/public":
            return Endpoint("GET public", authenticated=False, counted=False)
        if request.path == "/echo/whoami":
            return Endpoint("GET whoami", counted=False)
        if request.path == "/echo/settings":
            return Endpoint("echo settings", counted=False, admin=True)
        resource = request.path.strip("/").split("/")[1:2]  # "/echo/notes/n1" -> "notes"
        return Endpoint(f"{request.method} {''.join(resource)}")

    def unauthorized(self, request: Request) -> Response:
        return json_response(401, {"echo_error": "who are you?"})

    def render_fault(self, rule: FaultRule, request: Request) -> Response:
        response = json_response(rule.status if rule.kind == "status" else 418, {"echo_fault": rule.kind})
        if rule.kind == "status" and rule.status == 429:
            response.headers["Retry-After"] = "7"
        return response

    def render_error(self, status: int, code: str, message: str) -> Response:
        return json_response(status, {"echo_error": code, "message": message})

    def decorate(self, request: Request | None, response: Response, call: Call | None) -> None:
        response.headers["X-Echo-Usage"] = f"{call.used}/{call.limit}" if call else "-"

    def admit(self, request: Request, endpoint: Endpoint) -> Response | None:
        if request.path == "/echo/throttled" and (wait := self.window.take()) is not None:
            return json_response(429, {"echo_fault": "window"}, {"Retry-After": str(math.ceil(wait))})
        return None

    def stats(self) -> dict[str, Any]:
        return {"echo_routed": self.routed}

    def route(self, request: Request, call: Call) -> Response:
        self.routed += 1
        parts = request.path.strip("/").split("/")[1:]
        if parts == ["settings"]:
            self.window = RollingWindow(int(json.loads(request.body)["per_10s"]), 10, clock=lambda: self.now)
            return json_response(200, {"per_10s": self.window.limit})
        if parts == ["public"] or parts == ["whoami"]:
            return json_response(200, {"hello": parts[0], "authorized": call.authorized})
        if parts == ["boom"]:
            raise RuntimeError("the echo API fell over")
        if parts[:1] == ["notes"] and len(parts) == 2 and request.method == "GET":
            row = self.store.get_row("note", parts[1])
            if row is None or (row[FLAG] and request.param("archived") != "true"):
                return json_response(404, {"echo_error": "no such note"})
            return json_response(200, {"id": row["Id"], "text": row["text"], "archived": bool(row[FLAG])})
        if parts[:1] == ["notes"] and len(parts) == 2 and request.method == "DELETE":
            with self.store.transaction():
                self._archive(parts[1])
            return Response(204)
        if parts[:1] == ["notes"] and parts[2:] == ["restore"] and request.method == "PUT":
            with self.store.transaction():
                rows = self.store.binned_with("note", FLAG, parts[1])
                self.store.restore("note", FLAG, {r[0]: {} for r in rows})
            return json_response(200, {"restored": sorted(r[0] for r in rows)})
        if parts == ["batch"] and request.method == "POST":
            results = []
            for note_id in json.loads(request.body):
                locked = self.faults.locked(request.method, request.path, note_id, canonical=str.lower)
                results.append({"id": note_id, "status": "LOCKED" if locked else "OK"})
            return json_response(207, results)
        return json_response(404, {"echo_error": "no such path"})

    def _archive(self, root: str) -> None:
        self.store.bin("note", FLAG, root, {root: {}})
        children = [r[0] for r in self.store.children("note", "parent", [root], FLAG)]
        self.store.bin("note", FLAG, root, {c: {} for c in children})


class EchoSandbox:
    name = "echo"

    def open_store(self, state_dir: Path) -> Store:
        return Store(state_dir)

    def prepare_store(self, store: Store, *, records: int, seed: int, reset: bool) -> None:
        if reset:
            store.drop_tables(["note"])
        store.create_core_tables()
        with store.transaction():
            store.ensure_table("note", [("Id", "TEXT"), ("text", "TEXT"), ("parent", "TEXT"), (FLAG, "INTEGER")],
                               indexed=["parent"])
        if not store.seeded:
            with store.transaction():
                store.insert("note", ["Id", "text", "parent", FLAG],
                             [(f"n{i}", f"note {i}", "n1" if i in (2, 3) else None, 0) for i in range(1, records + 1)])
            store.set_meta({"seeded": "1", "portal": f"echo-{seed}"})

    def make_api(self, context: ApiContext) -> EchoApi:
        return EchoApi(context)

    def org_id(self, store: Store) -> str:
        return store.meta("portal") or ""


SANDBOX = EchoSandbox()


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture()
def echo_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(apis.SANDBOX_APIS, "echo", __name__)


@pytest.fixture()
def echo(tmp_path: Path, echo_registered: None) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path / "echo", provider="echo", records=5, seed=3, api_limit=6) as running:
        yield running


@pytest.fixture()
def slept(echo: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The core's sleeps, recorded instead of slept, with `--latency-ms 250` in force."""
    sleeps: list[float] = []
    monkeypatch.setattr(core, "time", SimpleNamespace(sleep=sleeps.append))
    echo._server.core.latency_ms = 250
    return sleeps


def client(sandbox: RunningSandbox) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.info.ca_file)
    return session


def keyed(sandbox: RunningSandbox) -> dict[str, str]:
    return {KEY_HEADER: sandbox.info.token}


def admin(sandbox: RunningSandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {sandbox.info.token}"}


# --- tests ----------------------------------------------------------------------------------------


def test_the_echo_api_is_served_over_tls_with_its_json_line(echo: RunningSandbox) -> None:
    line = json.loads(echo.info.to_json_line())
    assert line == {"provider": "echo", "url": echo.info.url, "ca_file": str(echo.info.ca_file),
                    "token": echo.info.token}
    assert echo.info.org_id == "echo-3"
    answer = client(echo).get(f"{echo.info.url}/echo/notes/n4", headers=keyed(echo))
    assert answer.status_code == 200 and answer.json() == {"id": "n4", "text": "note 4", "archived": False}
    assert answer.headers["X-Echo-Usage"] == "1/6"
    with pytest.raises(requests.exceptions.SSLError):  # only the state folder's own CA is trusted
        requests.get(f"{echo.info.url}/echo/public", verify=True, timeout=10)


def test_the_token_check_is_the_cores_and_the_answer_the_providers(echo: RunningSandbox) -> None:
    session, url = client(echo), echo.info.url
    for headers in ({}, {KEY_HEADER: "wrong"}, {"Authorization": f"Bearer {echo.info.token}"}):
        refused = session.get(f"{url}/echo/notes/n1", headers=headers)
        assert refused.status_code == 401 and refused.json() == {"echo_error": "who are you?"}
        assert refused.headers["X-Echo-Usage"] == "-"
    public = session.get(f"{url}/echo/public")
    assert public.status_code == 200 and public.json() == {"hello": "public", "authorized": False}
    assert session.get(f"{url}/echo/whoami", headers=keyed(echo)).json()["authorized"] is True
    stats = echo.stats()
    # Refused, public and uncounted calls use none of the allowance.
    assert (stats["api_calls"], stats["api_usage"], stats["by_endpoint"]) == (0, 0, {})
    assert stats["echo_routed"] == 2  # the provider's own counters join the core's
    assert session.get(f"{url}/__sandbox/stats", headers=keyed(echo)).status_code == 401
    assert session.get(f"{url}/__sandbox/stats", headers=admin(echo)).json()["api_limit"] == 6


def test_faults_apply_after_the_token_check_in_the_providers_shape(echo: RunningSandbox) -> None:
    session, url = client(echo), echo.info.url
    armed = session.post(f"{url}/__sandbox/faults", headers=admin(echo), json=[
        {"kind": "status", "status": 503, "times": 1},
        {"kind": "status", "status": 429, "path": "^/echo/notes/n2$", "times": 1},
        {"kind": "expired", "path": "n3", "times": 1},
        {"kind": "limit", "path": "n5", "times": 1},
    ])
    assert armed.json() == {"rules": 4}
    assert session.get(f"{url}/echo/notes/n1").status_code == 401  # without the token: no fault used up
    assert echo.stats()["faults_injected"] == 0
    unavailable = session.get(f"{url}/echo/notes/n1", headers=keyed(echo))
    assert unavailable.status_code == 503 and unavailable.json() == {"echo_fault": "status"}
    assert unavailable.headers["X-Echo-Usage"] == "-"  # every answer passes the provider's hook
    throttled = session.get(f"{url}/echo/notes/n2", headers=keyed(echo))
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert session.get(f"{url}/echo/notes/n3", headers=keyed(echo)).json() == {"echo_fault": "expired"}
    assert session.get(f"{url}/echo/notes/n5", headers=keyed(echo)).json() == {"echo_fault": "limit"}
    assert session.get(f"{url}/echo/notes/n2", headers=keyed(echo)).status_code == 200
    stats = echo.stats()
    assert stats["faults_injected"] == 4 and stats["api_usage"] == 1  # faulted calls are not counted


def test_drop_timeout_and_latency_are_carried_out_by_the_core(echo: RunningSandbox, slept: list[float]) -> None:
    session, url = client(echo), echo.info.url
    assert session.get(f"{url}/echo/notes/n1", headers=keyed(echo)).status_code == 200
    assert slept == [0.25]  # --latency-ms is the only delay added
    echo.set_faults([FaultRule(kind="timeout", delay=4.5, times=1), FaultRule(kind="drop", times=1)])
    assert session.get(f"{url}/echo/notes/n1", headers=keyed(echo)).status_code == 200  # after the delay
    assert slept == [0.25, 0.25, 4.5]
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"{url}/echo/notes/n1", headers=keyed(echo))
    assert echo.stats()["faults_injected"] == 2


def test_calls_are_counted_per_endpoint_up_to_the_daily_allowance(echo: RunningSandbox) -> None:
    session, url = client(echo), echo.info.url
    answers = [session.get(f"{url}/echo/notes/n{i}", headers=keyed(echo)) for i in (1, 2, 3, 4)]
    answers.append(session.post(f"{url}/echo/batch", headers=keyed(echo), json=["n1"]))
    answers.append(session.get(f"{url}/echo/nowhere", headers=keyed(echo)))
    assert [a.headers["X-Echo-Usage"] for a in answers] == ["1/6", "2/6", "3/6", "4/6", "5/6", "6/6"]
    spent = session.get(f"{url}/echo/notes/n1", headers=keyed(echo))
    assert (spent.status_code, spent.json()) == (418, {"echo_fault": "limit"})
    stats = echo.stats()
    assert stats["by_endpoint"] == {"GET notes": 4, "POST batch": 1, "GET nowhere": 1}
    assert (stats["api_calls"], stats["api_usage"]) == (6, 6)
    reset = session.post(f"{url}/__sandbox/reset-stats", headers=admin(echo)).json()
    assert (reset["api_calls"], reset["api_usage"]) == (0, 0)
    assert session.get(f"{url}/echo/notes/n1", headers=keyed(echo)).status_code == 200


def test_a_providers_rate_window_refuses_before_the_call_is_counted(echo: RunningSandbox) -> None:
    session, url = client(echo), echo.info.url
    api = echo.api
    assert isinstance(api, EchoApi)
    statuses = [session.get(f"{url}/echo/throttled", headers=keyed(echo)).status_code for _ in range(3)]
    assert statuses == [404, 404, 429] and echo.stats()["api_usage"] == 2
    api.now = 4.0
    refused = session.get(f"{url}/echo/throttled", headers=keyed(echo))
    assert refused.headers["Retry-After"] == "6" and refused.json() == {"echo_fault": "window"}
    api.now = 10.0  # the first two calls have left the window
    assert session.get(f"{url}/echo/throttled", headers=keyed(echo)).status_code == 404
    assert (echo.stats()["api_usage"], api.window.remaining()) == (3, 1)


def test_a_providers_own_admin_endpoint_is_beyond_latency_faults_and_counting(
    echo: RunningSandbox, slept: list[float]
) -> None:
    echo.set_faults([FaultRule(kind="status", status=503), FaultRule(kind="drop")])  # every call, forever
    session, url = client(echo), echo.info.url
    assert session.post(f"{url}/echo/settings", json={"per_10s": 1}).status_code == 401
    settings = session.post(f"{url}/echo/settings", headers=keyed(echo), json={"per_10s": 1})
    assert settings.status_code == 200 and settings.json() == {"per_10s": 1}
    assert settings.headers["X-Echo-Usage"] == "0/6"  # the provider's hook still sees the answer
    assert slept == [] and echo.stats()["faults_injected"] == 0 and echo.stats()["api_usage"] == 0
    assert session.get(f"{url}/echo/whoami", headers=keyed(echo)).status_code == 503  # armed for the API


def test_locked_rows_are_per_record_with_the_providers_ids(echo: RunningSandbox) -> None:
    echo.set_faults([FaultRule(kind="lock", ids=("N2",), times=1)])
    session, url = client(echo), echo.info.url
    first = session.post(f"{url}/echo/batch", headers=keyed(echo), json=["n1", "n2"]).json()
    assert first == [{"id": "n1", "status": "OK"}, {"id": "n2", "status": "LOCKED"}]
    second = session.post(f"{url}/echo/batch", headers=keyed(echo), json=["n1", "n2"]).json()
    assert second == [{"id": "n1", "status": "OK"}, {"id": "n2", "status": "OK"}]


def test_the_generic_recycle_bin_keeps_rows_and_restores_exactly_a_delete(echo: RunningSandbox) -> None:
    session, url = client(echo), echo.info.url
    assert session.delete(f"{url}/echo/notes/n3", headers=keyed(echo)).status_code == 204  # a child alone
    assert session.delete(f"{url}/echo/notes/n1", headers=keyed(echo)).status_code == 204  # takes n2 too
    assert session.get(f"{url}/echo/notes/n2", headers=keyed(echo)).status_code == 404
    kept = session.get(f"{url}/echo/notes/n2", params={"archived": "true"}, headers=keyed(echo))
    assert kept.json() == {"id": "n2", "text": "note 2", "archived": True}
    restored = session.put(f"{url}/echo/notes/n1/restore", headers=keyed(echo)).json()
    assert restored == {"restored": ["n1", "n2"]}  # n3 was archived by its own delete: it stays
    assert session.get(f"{url}/echo/notes/n3", headers=keyed(echo)).status_code == 404


def test_the_cores_own_errors_are_rendered_by_the_provider(echo: RunningSandbox) -> None:
    session, url = client(echo), echo.info.url
    boom = session.get(f"{url}/echo/boom", headers=keyed(echo))
    assert boom.status_code == 500
    assert boom.json() == {"echo_error": "INTERNAL", "message": "An unexpected error occurred: RuntimeError"}
    long = session.get(f"{url}/echo/notes/{'x' * 17_000}", headers=keyed(echo))
    assert long.status_code == 414 and long.json()["echo_error"] == "URI_TOO_LONG"
    bad = session.post(f"{url}/__sandbox/faults", headers=admin(echo), json=[{"kind": "meteor"}])
    assert bad.status_code == 400 and bad.json()["echo_error"] == "BAD_REQUEST" and "meteor" in bad.json()["message"]
    assert session.get(f"{url}/__sandbox/nothing", headers=admin(echo)).json()["echo_error"] == "NOT_FOUND"


def test_echo_and_salesforce_are_served_side_by_side_by_one_core(tmp_path: Path, echo: RunningSandbox) -> None:
    with start_sandbox(tmp_path / "salesforce", records=20) as salesforce:
        assert salesforce._server.core.__class__ is echo._server.core.__class__
        session = client(salesforce)
        sf_refused = session.get(f"{salesforce.info.url}/services/data/v59.0/limits")
        assert sf_refused.status_code == 401 and sf_refused.json()[0]["errorCode"] == "INVALID_SESSION_ID"
        assert client(echo).get(f"{echo.info.url}/echo/whoami", headers=keyed(echo)).status_code == 200
        assert salesforce.info.ca_file.read_bytes() != echo.info.ca_file.read_bytes()  # a CA per state folder
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{salesforce.info.url}/services/data", verify=str(echo.info.ca_file), timeout=10)


CORE_MODULES = ("apis", "core", "faults", "provider_api", "server", "sessions", "store", "tls", "windows")


def test_no_module_of_the_core_imports_a_provider_module() -> None:
    """Importing every core module (in a fresh interpreter) loads no other sandbox module: the
    Salesforce API and its schema, SOQL and ids are loaded only when that provider is started."""
    code = (
        "import sys\n"
        + "".join(f"import crmsweep.sandbox.{m}\n" for m in CORE_MODULES)
        + "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('crmsweep.sandbox.'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    assert sorted(loaded) == sorted(f"crmsweep.sandbox.{m}" for m in CORE_MODULES)
    sandbox_dir = Path(core.__file__).parent
    for name in CORE_MODULES:
        text = (sandbox_dir / f"{name}.py").read_text(encoding="utf-8")
        imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
        assert not [line for line in imports if "salesforce" in line or "hubspot" in line], name

