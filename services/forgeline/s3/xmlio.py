"""S3's XML: rendering responses and reading the few request bodies S3 takes."""

from __future__ import annotations

import datetime as dt
import email.utils
import xml.etree.ElementTree as ET
from typing import Any

from forgeline.s3.errors import S3Error, malformed_xml

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
Content = str | int | bool | dt.datetime | list[ET.Element] | ET.Element | None


def iso(moment: dt.datetime) -> str:
    """S3's XML timestamps: `2024-01-31T12:00:00.000Z`."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def http_date(moment: dt.datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(dt.UTC), usegmt=True)


def node(tag: str, content: Content = None, **children: Content) -> ET.Element:
    """An element with text (or child elements), then one child per keyword (None skipped)."""
    element = ET.Element(tag)
    _fill(element, content)
    for name, value in children.items():
        if isinstance(value, ET.Element) and value.tag == name:
            element.append(value)
        elif value is not None:
            element.append(node(name, value))
    return element


def _fill(element: ET.Element, content: Content) -> None:
    if content is None:
        return
    if isinstance(content, ET.Element):
        element.append(content)
    elif isinstance(content, list):
        element.extend(content)
    elif isinstance(content, bool):
        element.text = "true" if content else "false"
    elif isinstance(content, dt.datetime):
        element.text = iso(content)
    else:
        element.text = str(content)


def document(root: ET.Element, *, namespaced: bool = True) -> bytes:
    if namespaced:
        root.set("xmlns", NAMESPACE)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")


def error_document(error: S3Error, request_id: str, **extra: str) -> bytes:
    fields: dict[str, Any] = {**error.fields, **extra}
    root = node("Error", None, Code=error.code, Message=error.message)
    for name, value in fields.items():
        root.append(node(name, value))
    root.append(node("RequestId", request_id))
    root.append(node("HostId", request_id))
    return document(root, namespaced=False)


def parse(body: bytes) -> ET.Element:
    """The request body's root element, with namespaces dropped from every tag."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise malformed_xml()  # S3's documents never need them; refusing avoids entity tricks
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise malformed_xml() from None
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


def child_text(element: ET.Element, tag: str) -> str | None:
    found = element.find(tag)
    if found is None:
        return None
    return found.text or ""
