"""The SOAP calls the sandbox answers (partner `undelete` and `emptyRecycleBin`): parse the envelope, build replies.

Parsing is defensive: a size cap, no DTDs or entities (they are how XML bombs work), and elements
are found by local name so any namespace prefix a client picks works.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import escape

from crmsweep.sandbox.rules import RecordError

MAX_ENVELOPE_BYTES = 1_000_000
_ENVELOPE_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
)


class SoapFault(Exception):
    def __init__(self, code: str, message: str, *, client: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client = client  # a soapenv:Client fault (bad request shape) rather than an sf: one


@dataclass(frozen=True)
class SoapCall:
    operation: str
    session_id: str | None
    ids: tuple[str, ...]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_call(body: bytes) -> SoapCall:
    if len(body) > MAX_ENVELOPE_BYTES:
        raise SoapFault("soapenv:Client", "Request too large", client=True)
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise SoapFault("soapenv:Client", "DOCTYPE is not allowed", client=True)
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise SoapFault("soapenv:Client", f"Could not parse the SOAP envelope: {exc}", client=True) from None
    if _local(root.tag) != "Envelope":
        raise SoapFault("soapenv:Client", "Expected a SOAP Envelope", client=True)
    header = next((c for c in root if _local(c.tag) == "Header"), None)
    body_el = next((c for c in root if _local(c.tag) == "Body"), None)
    if body_el is None or len(body_el) == 0:
        raise SoapFault("soapenv:Client", "The SOAP envelope has no Body operation", client=True)
    session_id = None
    if header is not None:
        for el in header.iter():
            if _local(el.tag) == "sessionId":
                session_id = (el.text or "").strip()
    operation = body_el[0]
    ids = tuple((el.text or "").strip() for el in operation if _local(el.tag) == "ids")
    return SoapCall(_local(operation.tag), session_id, ids)


def fault(code: str, message: str) -> bytes:
    detail = ""
    if code.startswith("sf:"):
        name = code.removeprefix("sf:")
        detail = (
            '<detail><sf:UnexpectedErrorFault xmlns:sf="urn:fault.partner.soap.sforce.com" '
            'xsi:type="sf:UnexpectedErrorFault">'
            f"<sf:exceptionCode>{escape(name)}</sf:exceptionCode>"
            f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage></sf:UnexpectedErrorFault></detail>"
        )
        message = f"{name}: {message}"
    return (
        _ENVELOPE_OPEN.replace('xmlns="urn:partner.soap.sforce.com"', 'xmlns:sf="urn:fault.partner.soap.sforce.com"')
        + "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>{escape(code)}</faultcode><faultstring>{escape(message)}</faultstring>{detail}"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    ).encode()


def undelete_response(
    results: list[tuple[str | None, RecordError | None]], used: int, allowance: int, operation: str = "undelete"
) -> bytes:
    """The reply to `undelete` or `emptyRecycleBin`: both answer one {id, success, errors} per id."""
    parts = []
    for record_id, error in results:
        part = "<result>"
        if error is not None:
            part += (
                "<errors>"
                + "".join(f"<fields>{escape(f)}</fields>" for f in error.fields)
                + f"<message>{escape(error.message)}</message><statusCode>{escape(error.status_code)}</statusCode>"
                "</errors>"
            )
        part += '<id xsi:nil="true"/>' if record_id is None else f"<id>{escape(record_id)}</id>"
        part += f"<success>{'false' if error else 'true'}</success></result>"
        parts.append(part)
    limit_info = (
        "<soapenv:Header><LimitInfoHeader><limitInfo>"
        f"<current>{used}</current><limit>{allowance}</limit><type>API REQUESTS</type>"
        "</limitInfo></LimitInfoHeader></soapenv:Header>"
    )
    return (
        _ENVELOPE_OPEN + limit_info + f"<soapenv:Body><{operation}Response>" + "".join(parts)
        + f"</{operation}Response></soapenv:Body></soapenv:Envelope>"
    ).encode()
