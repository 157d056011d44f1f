"""Just enough BER (X.690) to stream CMS: headers, lengths, end-of-contents.

asn1crypto parses the small parts of an envelope (recipients, algorithms); the
bulk, an OCTET STRING of up to 64 GiB, is read and written here piece by piece
so that memory stays flat whatever the size.
"""

from __future__ import annotations

from dataclasses import dataclass

from scelle.core.files import Readable

# Tag bytes (class and form folded in) of the universal types we frame by hand.
TAG_OCTET_STRING = 0x04
TAG_OID = 0x06

CONTEXT = 2  # the class of [n] tags
UNIVERSAL = 0

EOC = b"\x00\x00"

MAX_DEPTH = 32


class BerError(Exception):
    """Malformed BER; callers turn it into a `ScelleError` of their own."""


MALFORMED = (BerError, ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)
"""What reading hostile ASN.1 raises, here or in asn1crypto (AttributeError included, on
unexpected universal types): callers catch these and say one thing."""


@dataclass(frozen=True)
class Header:
    """The identifier and length octets of one TLV."""

    tag_class: int
    constructed: bool
    number: int
    length: int | None
    """Content length in bytes; None for the indefinite form."""
    raw: bytes
    """The header bytes as read."""

    @property
    def is_eoc(self) -> bool:
        return self.tag_class == UNIVERSAL and self.number == 0 and not self.constructed

    def is_(self, tag_class: int, number: int, *, constructed: bool | None = None) -> bool:
        return (
            self.tag_class == tag_class
            and self.number == number
            and (constructed is None or self.constructed == constructed)
        )


def encode_length(length: int) -> bytes:
    """Definite length octets (X.690 8.1.3)."""
    if length < 0x80:
        return bytes((length,))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    """A definite-length TLV with a one-byte tag."""
    return bytes((tag,)) + encode_length(len(content)) + content


class BerReader:
    """Reads BER from a binary stream, counting the bytes consumed."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self.position = 0

    def read_exact(self, size: int) -> bytes:
        data = self._stream.read(size)
        if data is None or len(data) != size:
            raise BerError("truncated")
        self.position += size
        return data

    def readinto_exact(self, view: memoryview) -> None:
        done = 0
        total = len(view)
        while done < total:
            got = self._stream.readinto(view[done:])
            if not got:
                raise BerError("truncated")
            done += got
        self.position += total

    def at_end(self) -> bool:
        """True when the stream has no byte left (consumes nothing otherwise)."""
        peek = getattr(self._stream, "peek", None)
        if peek is not None:
            return not peek(1)
        data = self._stream.read(1)
        if data:
            raise BerError("trailing data")
        return True

    def read_header(self) -> Header:
        first = self.read_exact(1)
        raw = bytearray(first)
        tag_class = first[0] >> 6
        constructed = bool(first[0] & 0x20)
        number = first[0] & 0x1F
        if number == 0x1F:  # high tag number form, base 128
            number = 0
            for _ in range(4):
                byte = self.read_exact(1)
                raw += byte
                number = (number << 7) | (byte[0] & 0x7F)
                if not byte[0] & 0x80:
                    break
            else:
                raise BerError("tag number too large")
        length_byte = self.read_exact(1)
        raw += length_byte
        count = length_byte[0]
        length: int | None
        if count < 0x80:
            length = count
        elif count == 0x80:
            if not constructed:
                raise BerError("indefinite length on a primitive")
            length = None
        else:
            count &= 0x7F
            if count > 8:
                raise BerError("length too large")
            body = self.read_exact(count)
            raw += body
            length = int.from_bytes(body, "big")
        return Header(tag_class, constructed, number, length, bytes(raw))

    def read_value(self, header: Header, *, limit: int, depth: int = 0) -> bytes:
        """The content octets of `header`'s TLV as raw BER (nested EOCs kept)."""
        if depth > MAX_DEPTH:
            raise BerError("nested too deeply")
        if header.length is not None:
            if header.length > limit:
                raise BerError("too large")
            return self.read_exact(header.length)
        parts = bytearray()
        while True:
            child = self.read_header()
            if child.is_eoc:
                if child.length != 0:
                    raise BerError("bad end-of-contents")
                return bytes(parts)
            parts += child.raw
            parts += self.read_value(child, limit=limit - len(parts), depth=depth + 1)
            if child.length is None:
                parts += EOC
            if len(parts) > limit:
                raise BerError("too large")

    def read_tlv(self, *, limit: int) -> tuple[Header, bytes]:
        """One whole TLV, header and content, as raw bytes."""
        header = self.read_header()
        if header.is_eoc:
            raise BerError("unexpected end-of-contents")
        value = self.read_value(header, limit=limit)
        raw = header.raw + value + (EOC if header.length is None else b"")
        return header, raw

    def expect_end(self, header: Header, start: int) -> None:
        """Check that the TLV `header`, whose content began at `start`, ends here."""
        if header.length is None:
            eoc = self.read_header()
            if not eoc.is_eoc or eoc.length != 0:
                raise BerError("expected end-of-contents")
        elif self.position - start != header.length:
            raise BerError("length mismatch")
