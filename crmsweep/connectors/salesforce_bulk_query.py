"""Reading a whole object through a Bulk API 2.0 query job: create, poll, download the CSV pages, delete.

Transport only, over the connector's own session (so every call is counted and TLS stays pinned) and its
retry policy (`call`). Pages are downloaded to files in a private temporary folder (in parallel through
`resultPages` where the API version offers it, v58+, else one after the other along `Sforce-Locator`),
then parsed one after the other and handed on in chunks, so memory stays flat at any size and a page lost
mid-download is simply fetched again.

Bulk CSV cannot tell a null from an empty string, and carries every value as text: values are typed from
the describe's FieldSpecs, an empty field read as null (Salesforce stores an empty text value as null,
so the REST path reads the same). Anything that does not add up (a Failed or Aborted job, a page whose
row count differs from its `Sforce-NumberOfRecords`, a total that differs from the job's
`numberRecordsProcessed`, a header that is not the fields asked) raises: the backup then writes no manifest.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.csv as pacsv
import requests
from simple_salesforce.util import exception_handler

from crmsweep.errors import ConnectorError, CrmsweepError
from crmsweep.model import FieldKind, FieldSpec, Record

T = TypeVar("T")
Call = Callable[[str, Callable[[], T]], T]

RESULT_PAGES_VERSION = 58
MAX_RECORDS = 50_000  # rows per result page asked for (simple-salesforce's default too)
CSV_BLOCK_BYTES = 4 << 20  # CSV bytes parsed (and rows handed on) at a time: the backup's memory per step
DOWNLOAD_THREADS = 4
_TERMINAL_FAILURES = frozenset({"Failed", "Aborted"})
_COPY_BYTES = 1 << 20


@dataclass(frozen=True)
class PollSchedule:
    """Seconds between status polls: `first`, doubling up to `longest`; give up after `give_up` seconds."""

    first: float = 0.25
    longest: float = 10.0
    give_up: float = 4 * 3600.0


_PAGES_PREFIX = "crmsweep-bulk-"


def sweep_stale_pages(root: Path | None = None) -> list[Path]:
    """Remove the result-page folders a killed backup left in the temporary folder (they hold a copy of
    the org's records, 0600 in 0700, but nobody would ever remove them): those of this user whose process
    is gone. Returns what it removed."""
    removed: list[Path] = []
    base = Path(root or tempfile.gettempdir())
    for folder in base.glob(f"{_PAGES_PREFIX}*-*"):
        pid_text = folder.name[len(_PAGES_PREFIX):].split("-", 1)[0]
        try:
            if not pid_text.isdigit() or folder.stat().st_uid != os.getuid() or _alive(int(pid_text)):
                continue
            shutil.rmtree(folder)
        except OSError:
            continue
        removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BulkQueryReader:
    def __init__(
        self,
        *,
        session: requests.Session,
        base_url: str,
        headers: Callable[[], Mapping[str, str]],
        call: Callable[..., Any],
        api_version: str,
        polls: PollSchedule = PollSchedule(),
        max_records: int = MAX_RECORDS,
        threads: int = DOWNLOAD_THREADS,
    ) -> None:
        self._session = session
        self._jobs_url = base_url.rstrip("/") + "/jobs/query"
        self._host = base_url.split("/services/", 1)[0]
        self._headers = headers
        self._call = call
        self.parallel = int(api_version.split(".")[0]) >= RESULT_PAGES_VERSION
        # Set by `cancel`: a backup stopping (another object failed, Ctrl-C) ends jobs still being polled.
        self._cancelled = threading.Event()
        self._polls = polls
        self.max_records = max_records
        self._threads = threads

    def cancel(self) -> None:
        """Stop every job this reader polls or pages through (for good: the connector is being given up)."""
        self._cancelled.set()

    def _url(self, path: str, action: str) -> str:
        """`path` from Salesforce's answer (a resultUrl, a nextRecordsUrl) on this instance: a path only,
        never another host, which would receive the bearer token."""
        parts = urlsplit(path)
        if parts.scheme or parts.netloc or not path.startswith("/services/data/"):
            raise ConnectorError(f"{action}: Salesforce pointed a result page outside /services/data/ on its own "
                                 "instance; not followed")
        return self._host + path

    # -- HTTP

    def _request(self, method: str, url: str, action: str, **kwargs: Any) -> requests.Response:
        extra = kwargs.pop("headers", {})

        def send() -> requests.Response:
            headers = {**self._headers(), **extra}
            response = self._session.request(method, url, headers=headers, **kwargs)
            if response.status_code >= 300:
                exception_handler(response, action)
            return response

        response: requests.Response = self._call(action, send)
        return response

    def _json(self, method: str, url: str, action: str, **kwargs: Any) -> dict[str, Any]:
        answer = self._request(method, url, action, **kwargs).json()
        if not isinstance(answer, dict):
            raise ConnectorError(f"Salesforce answered {action} with no JSON object")
        return answer

    # -- the job

    def pages(self, object_name: str, soql: str, specs: Sequence[FieldSpec], *,
              include_deleted: bool) -> Iterator[list[Record]]:
        """The records of `soql` (whose SELECT list is `specs`, in order), in chunks, typed from `specs`."""
        names = [s.name for s in specs]
        converters = [_CONVERTERS.get(s.kind) for s in specs]
        for batch in self.text_batches(object_name, soql, names, include_deleted=include_deleted):
            # Column by column: one comprehension per field is far cheaper than a converter call per value.
            columns = [_column(column.to_pylist(), convert) for column, convert in zip(batch.columns, converters,
                                                                                        strict=True)]
            yield [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]

    def text_batches(self, object_name: str, soql: str, names: Sequence[str], *,
                     include_deleted: bool) -> Iterator[pa.RecordBatch]:
        """The rows of `soql` (whose SELECT list is `names`, in order) as Arrow batches of text columns,
        exactly as the CSV holds them: an empty field is null (see the module's docstring), nothing typed."""
        action = f"bulk query {object_name}"
        body = {"operation": "queryAll" if include_deleted else "query", "query": soql,
                "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF"}
        job = self._json("POST", self._jobs_url, action, json=body)
        job_id = str(job.get("id") or "")
        if not job_id.isalnum():
            raise ConnectorError(f"Salesforce answered {action} with no job id")
        job_url = f"{self._jobs_url}/{job_id}"
        finished = False
        try:
            expected = self._wait(job_url, action)
            finished = True
            seen = 0
            sweep_stale_pages()
            with tempfile.TemporaryDirectory(prefix=f"{_PAGES_PREFIX}{os.getpid()}-") as folder:
                for path, announced in self._downloads(job_url, Path(folder), action, expected):
                    if self._cancelled.is_set():
                        raise ConnectorError(f"{action}: stopped between result pages (the backup is being stopped)")
                    rows = 0
                    for batch in _parse(path, names, object_name):
                        rows += batch.num_rows
                        yield batch
                    os.unlink(path)
                    if rows != announced:
                        raise ConnectorError(
                            f"{action}: a result page of job {job_id} held {rows} rows but Salesforce announced "
                            f"{announced} (Sforce-NumberOfRecords): the backup stops rather than keep a short copy")
                    seen += rows
            if seen != expected:
                raise ConnectorError(
                    f"{action}: job {job_id} processed {expected} records but its result pages held {seen}: "
                    "the backup stops rather than keep a partial copy")
        finally:
            self._remove(job_url, action, finished)

    def _wait(self, job_url: str, action: str) -> int:
        """Poll until JobComplete; the job's numberRecordsProcessed."""
        wait, waited = 0.0, 0.0
        while True:
            info = self._json("GET", job_url, action)
            state = info.get("state")
            if state == "JobComplete":
                return int(info.get("numberRecordsProcessed") or 0)
            if state in _TERMINAL_FAILURES:
                said = str(info.get("errorMessage") or "no reason given")[:300]
                raise ConnectorError(f"{action}: Salesforce ended the query job {state}: {said}",
                                     code=f"BULK_JOB_{str(state).upper()}")
            if waited >= self._polls.give_up:
                raise ConnectorError(f"{action}: the query job was still {state} after {waited:.0f} s: "
                                     "try again later, or back the object up over REST with a higher threshold")
            wait = self._polls.first if wait == 0 else min(wait * 2, self._polls.longest)
            if self._cancelled.wait(wait):
                raise ConnectorError(f"{action}: stopped while the query job ran (the backup is being stopped)")
            waited += wait

    def _remove(self, job_url: str, action: str, finished: bool) -> None:
        """Abort a job still running, then delete it; a job left behind is Salesforce's to clear in 7 days,
        so a failure here never hides what went wrong before it."""
        steps = ([("PATCH", {"json": {"state": "Aborted"}})] if not finished else []) + [("DELETE", {})]
        for method, kwargs in steps:
            # An abort refused (the job had already ended Failed) must not keep the delete from going.
            with contextlib.suppress(CrmsweepError, requests.exceptions.RequestException):
                self._request(method, job_url, action, **kwargs)

    # -- result pages

    def _downloads(self, job_url: str, folder: Path, action: str, expected: int) -> Iterator[tuple[Path, int]]:
        """(file, announced rows) for each result page, in result order. A result that fits one page is
        fetched at once, without a resultPages listing first."""
        if not self.parallel or expected <= self.max_records:
            locator: str | None = None
            seen: set[str] = set()
            number = 0
            while True:
                url = f"{job_url}/results?maxRecords={self.max_records}" + (f"&locator={locator}" if locator else "")
                path = folder / f"page-{number}.csv"
                announced, locator = self._download(url, path, action)
                yield path, announced
                number += 1
                if locator in (None, "", "null"):
                    return
                if locator in seen:
                    raise ConnectorError(f"{action}: Salesforce repeated a result locator: stopped to avoid an "
                                         "endless loop")
                seen.add(locator)
        with concurrent.futures.ThreadPoolExecutor(self._threads, thread_name_prefix="bulk-page") as pool:
            next_url: str | None = f"{job_url}/resultPages?maxRecords={self.max_records}"
            number = 0
            while next_url:
                listing = self._json("GET", next_url, action)
                urls = [self._url(str(p["resultUrl"]), action) for p in listing.get("resultPages") or []
                        if isinstance(p, Mapping) and p.get("resultUrl")]
                paths = [folder / f"page-{number + i}.csv" for i in range(len(urls))]
                number += len(urls)
                futures = [pool.submit(self._download, u, p, action) for u, p in zip(urls, paths, strict=True)]
                try:
                    for path, future in zip(paths, futures, strict=True):
                        yield path, future.result()[0]
                finally:
                    for future in futures:
                        future.cancel()
                following = listing.get("nextRecordsUrl") or listing.get("nextRecordUrl")
                next_url = None if listing.get("done", True) or not following else self._url(str(following), action)

    def _download(self, url: str, path: Path, action: str) -> tuple[int, str | None]:
        """One result page to `path` (0600); its Sforce-NumberOfRecords and Sforce-Locator."""

        def fetch() -> tuple[int, str | None]:
            headers = {**self._headers(), "Accept": "text/csv"}
            with self._session.get(url, headers=headers, stream=True) as response:
                if response.status_code >= 300:
                    exception_handler(response, action)
                announced = response.headers.get("Sforce-NumberOfRecords")
                if announced is None or not announced.isdigit():
                    raise ConnectorError(f"{action}: a result page came without Sforce-NumberOfRecords")
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(descriptor, "wb") as handle:
                    for block in response.iter_content(_COPY_BYTES):
                        handle.write(block)
                return int(announced), response.headers.get("Sforce-Locator")

        result: tuple[int, str | None] = self._call(action, fetch)
        return result


# --- CSV to typed records ----------------------------------------------------------------------------


def _parse(path: Path, names: Sequence[str], object_name: str) -> Iterator[pa.RecordBatch]:
    """A result page's rows as batches of text columns named `names`, parsed by Arrow (in C++, a block
    at a time: the csv module's row-by-row Python was most of a large backup's time). Quoted newlines,
    commas and doubled quotes are values; an empty field, quoted or not, is null."""
    with open(path, "rb") as handle:
        header = handle.readline()  # field names hold no newline, so the header is the first line
        has_rows = bool(handle.read(1))
    if not header:
        return
    columns = next(csv.reader([header.decode("utf-8", "replace")]), [])
    if [c.lower() for c in columns] != [n.lower() for n in names]:
        raise ConnectorError(f"bulk query {object_name}: the result's columns are not the fields asked for")
    if not has_rows:
        return
    options = (
        pacsv.ReadOptions(column_names=list(names), skip_rows=1, block_size=CSV_BLOCK_BYTES, use_threads=False),
        pacsv.ParseOptions(delimiter=",", quote_char='"', double_quote=True, escape_char=False,
                           newlines_in_values=True),
        pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, null_values=[""],
                             strings_can_be_null=True, quoted_strings_can_be_null=True),
    )
    try:
        with pacsv.open_csv(path, read_options=options[0], parse_options=options[1],
                            convert_options=options[2]) as reader:
            for batch in reader:
                if batch.num_rows:
                    yield batch
    except pa.ArrowInvalid as exc:
        problem = "a result row does not have" if "columns" in str(exc) else "a result page is not CSV of"
        raise ConnectorError(f"bulk query {object_name}: {problem} {len(names)} values ({str(exc)[:200]})") from None


def _column(values: list[Any], convert: Callable[[str], Any] | None) -> list[Any]:
    if convert is None:
        return values
    return [None if v is None else convert(v) for v in values]


_BOOLS = {"true": True, "false": False, "True": True, "False": False}


def _bool(value: str) -> Any:
    return _BOOLS.get(value, value)


def _int(value: str) -> Any:
    try:
        return int(value)
    except ValueError:
        return _float(value)


def _float(value: str) -> Any:
    try:
        return float(value)
    except ValueError:
        return value  # left as text: the snapshot's typing names the record and the value


_CONVERTERS: Mapping[FieldKind, Callable[[str], Any]] = {
    FieldKind.BOOL: _bool,
    FieldKind.INT: _int,
    FieldKind.FLOAT: _float,
}

__all__ = ["BulkQueryReader", "PollSchedule"]
