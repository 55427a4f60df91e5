"""Parse untrusted report XML into ElementTree elements, refusing the dangerous parts.

Report files come out of a build, i.e. from whoever wrote the buildspec. Entity
declarations (billion laughs, quadratic blowup) and external entities have no place in
test or coverage output, so they are errors. A bare DOCTYPE naming an external DTD is
allowed because Cobertura and JaCoCo write one, but that DTD is never loaded and an
internal subset is refused. expat is driven directly so these handlers run before
anything is expanded. Element names lose their namespace
prefix: the formats are recognised by local names.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, NoReturn
from xml.parsers import expat

from forgeline.codebuild.reports.model import MAX_REPORT_FILE_BYTES, ReportParseError

MAX_DEPTH = 256
MAX_ELEMENTS = 2_000_000


def _local(name: str) -> str:
    return name.rsplit(":", 1)[-1]


class _Builder:
    def __init__(self) -> None:
        self.builder = ET.TreeBuilder()
        self.depth = 0
        self.count = 0

    def start(self, name: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        self.count += 1
        if self.depth > MAX_DEPTH:
            raise ReportParseError(f"XML nests deeper than {MAX_DEPTH} elements")
        if self.count > MAX_ELEMENTS:
            raise ReportParseError(f"XML has more than {MAX_ELEMENTS} elements")
        attrs = {_local(k): v for k, v in attributes.items() if not k.startswith("xmlns")}
        self.builder.start(_local(name), attrs)

    def end(self, name: str) -> None:
        self.depth -= 1
        self.builder.end(_local(name))

    def data(self, text: str) -> None:
        self.builder.data(text)


def _refuse(what: str) -> Any:
    def handler(*_args: Any) -> NoReturn:
        raise ReportParseError(f"XML with {what} is not accepted in a report file")

    return handler


def _check_doctype(
    _name: str, _system_id: str | None, _public_id: str | None, has_internal_subset: int
) -> None:
    if has_internal_subset:
        raise ReportParseError("XML with an internal DTD subset is not accepted in a report file")


def parse_xml(data: bytes) -> ET.Element:
    """The root element of `data`; ReportParseError for anything malformed or hostile."""
    if len(data) > MAX_REPORT_FILE_BYTES:
        raise ReportParseError(f"file is larger than {MAX_REPORT_FILE_BYTES} bytes")
    builder = _Builder()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _check_doctype
    parser.EntityDeclHandler = _refuse("entity declarations")
    parser.UnparsedEntityDeclHandler = _refuse("entity declarations")
    parser.ExternalEntityRefHandler = _refuse("external entities")
    parser.SkippedEntityHandler = _refuse("entity references")
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise ReportParseError(
            f"not well-formed XML: {expat.ErrorString(exc.code)} "
            f"at line {exc.lineno}, column {exc.offset}"
        ) from None
    try:
        return builder.builder.close()
    except AssertionError:
        raise ReportParseError("XML document has no root element") from None


def text_of(element: ET.Element | None) -> str | None:
    """All text inside an element (CDATA included), or None."""
    if element is None:
        return None
    return "".join(element.itertext())
