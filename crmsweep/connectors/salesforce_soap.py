"""The SOAP undelete call: its request envelope and the parsing of its answer.

Salesforce's REST API has no undelete, so this one call speaks the partner SOAP API. The XML lives
here, apart from the connector, because it is pure text in and out: it can be tested without a network,
and the connector only posts the bytes and hands the parsed results to its write loop.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape as xml_escape

_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_SOAP_PARTNER = "urn:partner.soap.sforce.com"


def undelete_envelope(session_id: str, ids: Sequence[str]) -> bytes:
    id_elements = "".join(f"<urn:ids>{xml_escape(i)}</urn:ids>" for i in ids)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" xmlns:urn="{_SOAP_PARTNER}">'
        f"<soapenv:Header><urn:SessionHeader><urn:sessionId>{xml_escape(session_id)}</urn:sessionId>"
        "</urn:SessionHeader></soapenv:Header>"
        f"<soapenv:Body><urn:undelete>{id_elements}</urn:undelete></soapenv:Body>"
        "</soapenv:Envelope>"
    ).encode()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(element: ET.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return None


class SoapFault(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def parse_undelete_response(body: bytes, status: int) -> list[dict[str, Any]]:
    """Undelete results in request order as collections-style dicts; raises SoapFault for a fault."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise SoapFault("UNREADABLE_RESPONSE", f"HTTP {status}, not a SOAP document", status) from exc
    for element in root.iter():
        if _local(element.tag) == "Fault":
            faultcode = _child_text(element, "faultcode") or "SOAP_FAULT"
            message = _child_text(element, "faultstring") or ""
            # "sf:INVALID_SESSION_ID" -> "INVALID_SESSION_ID"; the faultstring repeats it as a prefix.
            code = faultcode.rsplit(":", 1)[-1]
            raise SoapFault(code, message.removeprefix(f"{code}: "), status)
    results: list[dict[str, Any]] = []
    for element in root.iter():
        if _local(element.tag) != "result":
            continue
        errors = [
            {"statusCode": _child_text(err, "statusCode"), "message": _child_text(err, "message")}
            for err in element
            if _local(err.tag) == "errors"
        ]
        results.append(
            {"id": _child_text(element, "id") or None, "success": _child_text(element, "success") == "true",
             "errors": errors}
        )
    return results


__all__ = ["SoapFault", "parse_undelete_response", "undelete_envelope"]
