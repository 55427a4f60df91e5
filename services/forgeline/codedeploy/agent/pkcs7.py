"""PKCS#7 SignedData in PEM, as the command service sends a deployment specification:
the content attached, the signer's certificate embedded (`openssl smime -sign -nodetach
-binary -outform PEM`, or cryptography's PKCS7SignatureBuilder).

`cryptography` signs PKCS#7 but does not verify it, so this module reads the few ASN.1
structures involved itself (BER and DER; pure, no disk) and verifies the signature with
`cryptography`: the signed attributes' message digest must be the content's digest, the
signature over those attributes must verify with the signer certificate's key, and that
certificate must be the trusted signer certificate or be issued by it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import re

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "1.3.14.3.2.26": hashes.SHA1,
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
    "2.16.840.1.101.3.4.2.4": hashes.SHA224,
}
_SEQUENCE, _SET, _OCTET_STRING, _OID, _INTEGER = 0x30, 0x31, 0x04, 0x06, 0x02
_CONTEXT_0, _CONTEXT_1 = 0xA0, 0xA1
_PEM = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----(.*?)-----END [A-Z0-9 ]+-----", re.DOTALL)


class SignedDataError(ValueError):
    """Not a PKCS#7 SignedData we can read, or its signature does not hold."""


@dataclasses.dataclass(frozen=True)
class SignedMessage:
    content: bytes
    certificates: tuple[x509.Certificate, ...]
    signer: _SignerInfo


def read_pem(pem: str | bytes) -> SignedMessage:
    """The content and signer of a PEM PKCS#7 SignedData, not yet verified."""
    raw = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    found = _PEM.search(raw)
    if found is None:
        raise SignedDataError("the payload is not PEM (no -----BEGIN ...----- block)")
    try:
        der = base64.b64decode(b"".join(found.group(1).split()), validate=True)
    except binascii.Error:
        raise SignedDataError("the PEM payload is not valid base64") from None
    return read_der(der)


def read_der(der: bytes) -> SignedMessage:
    try:
        return _read_signed_data(der)
    except (IndexError, ValueError) as exc:
        if isinstance(exc, SignedDataError):
            raise
        raise SignedDataError(f"the payload is not a PKCS#7 SignedData: {exc}") from None


def verify(message: SignedMessage, trusted: x509.Certificate) -> bytes:
    """The content, once the signature holds and its signer is `trusted` or issued by it."""
    signer = _signer_certificate(message)
    if signer.fingerprint(hashes.SHA256()) != trusted.fingerprint(hashes.SHA256()):
        try:
            signer.verify_directly_issued_by(trusted)
        except (ValueError, TypeError, InvalidSignature):
            raise SignedDataError(
                f"the specification is signed by {signer.subject.rfc4514_string()}, "
                "which the agent's signer certificate neither is nor issued"
            ) from None
    _check_signature(message, signer)
    return message.content


# --- reading -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Node:
    tag: int
    content: bytes  # the value's bytes (for constructed BER: the children's encodings)
    children: tuple[_Node, ...]
    encoding: bytes  # the whole element, header included

    def child(self, index: int, tag: int | None = None) -> _Node:
        node = self.children[index]
        if tag is not None and node.tag != tag:
            raise SignedDataError(f"expected tag {tag:#x}, found {node.tag:#x}")
        return node


@dataclasses.dataclass(frozen=True)
class _SignerInfo:
    serial_number: int | None
    key_identifier: bytes | None
    digest_oid: str
    signed_attributes: bytes | None  # re-tagged as a SET, ready to hash
    message_digest: bytes | None
    signature: bytes


def _parse(data: bytes, offset: int = 0) -> tuple[_Node, int]:
    start = offset
    tag = data[offset]
    offset += 1
    if tag & 0x1F == 0x1F:
        raise SignedDataError("high tag numbers are not used by PKCS#7 SignedData")
    first = data[offset]
    offset += 1
    constructed = bool(tag & 0x20)
    if first == 0x80:  # indefinite length (BER): children until an end-of-contents
        if not constructed:
            raise SignedDataError("indefinite length on a primitive element")
        children = []
        while data[offset : offset + 2] != b"\x00\x00":
            node, offset = _parse(data, offset)
            children.append(node)
        end = offset + 2
        return _Node(tag, data[start:offset], tuple(children), data[start:end]), end
    if first & 0x80:
        count = first & 0x7F
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    else:
        length = first
    end = offset + length
    if end > len(data):
        raise SignedDataError("an element runs past the end of the data")
    content = data[offset:end]
    children_list: list[_Node] = []
    if constructed:
        position = 0
        while position < len(content):
            node, position = _parse(content, position)
            children_list.append(node)
    return _Node(tag, content, tuple(children_list), data[start:end]), end


def _octets(node: _Node) -> bytes:
    """An OCTET STRING's bytes, joining the pieces of a constructed (BER) one."""
    if node.tag == _OCTET_STRING:
        return node.content
    if node.tag == _OCTET_STRING | 0x20:
        return b"".join(_octets(child) for child in node.children)
    raise SignedDataError(f"expected an OCTET STRING, found tag {node.tag:#x}")


def _oid(node: _Node) -> str:
    if node.tag != _OID or not node.content:
        raise SignedDataError("expected an OBJECT IDENTIFIER")
    values, value = [], 0
    for byte in node.content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            values.append(value)
            value = 0
    first_arc = min(values[0] // 40, 2)
    arcs = [first_arc, values[0] - 40 * first_arc, *values[1:]]
    return ".".join(str(arc) for arc in arcs)


def _read_signed_data(der: bytes) -> SignedMessage:
    content_info, _ = _parse(der)
    if content_info.tag != _SEQUENCE or _oid(content_info.child(0)) != OID_SIGNED_DATA:
        raise SignedDataError("the payload is not a PKCS#7 SignedData")
    signed_data = content_info.child(1, _CONTEXT_0).child(0, _SEQUENCE)
    encapsulated = signed_data.child(2, _SEQUENCE)
    if len(encapsulated.children) < 2:
        raise SignedDataError("the signature is detached: the content is not attached")
    content = _octets(encapsulated.child(1, _CONTEXT_0).child(0))
    certificates: list[x509.Certificate] = []
    signer_infos: _Node | None = None
    for node in signed_data.children[3:]:
        if node.tag == _CONTEXT_0:
            certificates += [
                x509.load_der_x509_certificate(cert.encoding)
                for cert in node.children
                if cert.tag == _SEQUENCE
            ]
        elif node.tag == _SET:
            signer_infos = node
    if signer_infos is None or len(signer_infos.children) != 1:
        raise SignedDataError("the specification must carry exactly one signature")
    return SignedMessage(content, tuple(certificates), _read_signer(signer_infos.children[0]))


def _read_signer(node: _Node) -> _SignerInfo:
    identifier = node.child(1)
    serial, key_identifier = None, None
    if identifier.tag == _SEQUENCE:  # issuerAndSerialNumber
        serial = int.from_bytes(identifier.child(1, _INTEGER).content, "big", signed=True)
    else:  # [0] subjectKeyIdentifier
        key_identifier = identifier.content
    digest_oid = _oid(node.child(2, _SEQUENCE).child(0))
    index = 3
    attributes, digest = None, None
    if node.children[index].tag == _CONTEXT_0:
        attributes_node = node.children[index]
        # The signature covers the attributes encoded as a SET, not as the [0] they travel as.
        attributes = bytes([_SET]) + attributes_node.encoding[1:]
        for attribute in attributes_node.children:
            if _oid(attribute.child(0)) == OID_MESSAGE_DIGEST:
                digest = _octets(attribute.child(1, _SET).child(0))
        index += 1
    signature = _octets(node.child(index + 1))
    return _SignerInfo(serial, key_identifier, digest_oid, attributes, digest, signature)


# --- verifying -----------------------------------------------------------------------------


def _signer_certificate(message: SignedMessage) -> x509.Certificate:
    signer = message.signer
    for cert in message.certificates:
        if signer.serial_number is not None and cert.serial_number == signer.serial_number:
            return cert
        if signer.key_identifier is not None:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if ski.value.digest == signer.key_identifier:
                return cert
    raise SignedDataError("the signer's certificate is not embedded in the specification")


def _check_signature(message: SignedMessage, signer: x509.Certificate) -> None:
    algorithm_class = _DIGESTS.get(message.signer.digest_oid)
    if algorithm_class is None:
        raise SignedDataError(f"unsupported digest algorithm {message.signer.digest_oid}")
    algorithm = algorithm_class()
    info = message.signer
    if info.signed_attributes is None:
        signed = message.content
    else:
        digest = hashes.Hash(algorithm_class())
        digest.update(message.content)
        if info.message_digest is None or not hmac.compare_digest(
            digest.finalize(), info.message_digest
        ):
            raise SignedDataError("the specification's content does not match its signed digest")
        signed = info.signed_attributes
    key = signer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(info.signature, signed, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(info.signature, signed, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(info.signature, signed)
        else:
            raise SignedDataError(f"unsupported signer key type {type(key).__name__}")
    except InvalidSignature:
        raise SignedDataError("the specification's signature does not verify") from None
