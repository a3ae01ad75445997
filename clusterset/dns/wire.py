"""DNS wire format: reading a query's header and question, and answers kept as bytes to splice a query into.

An answer is packed once (dnslib) with ID 0, RD clear and the question in lowercase; each query then gets
`its ID + the prepared flags and counts + its own question bytes + the rest`, so the hot path parses nothing
beyond the header and copies the query's case back into the question, as DNS servers do. The question has
the same length in any case, so the compression pointers of the packed answer stay valid.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from dnslib import AAAA as AAAA_RD
from dnslib import NS as NS_RD
from dnslib import RD, RR, DNSHeader, DNSLabel, DNSQuestion, DNSRecord
from dnslib import SOA as SOA_RD
from dnslib import SRV as SRV_RD
from dnslib import TXT as TXT_RD
from dnslib import A as A_RD

from clusterset.dns.records import AAAA, IN, NS, OPT, SOA, SRV, TXT, A, Record, Soa, Srv

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
BADVERS = 16  # an extended rcode: 1 in the OPT RR's upper bits, 0 in the header
UDP_LIMIT = 512  # without EDNS0 (RFC 1035)
MAX_UDP = 65507  # the most a UDP datagram carries, whatever a client offers
OUR_UDP_SIZE = 1232  # what we advertise (DNS flag day 2020): fits every path's MTU
MAX_NAME = 255
OPT_RR = struct.pack("!BHHIH", 0, OPT, OUR_UDP_SIZE, 0, 0)
OPT_LEN = len(OPT_RR)

QR, AA, TC, RD_BIT = 0x80, 0x04, 0x02, 0x01  # in the header's third byte


@dataclass(frozen=True)
class Answer:
    """What a question gets, before packing: an rcode and the three sections."""

    rcode: int
    answer: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()


class Entry:
    """A packed answer, ready to splice a query into.

    `pre[rd | edns << 1]` is the header after the ID (flags and counts), `suffix` everything after the question.
    `small`: it fits 512 bytes without EDNS, so the hot path may send it as it is.
    """

    __slots__ = ("pre", "rcode", "size", "small", "suffix")

    def __init__(self, packed: bytes, question_length: int, rcode: int) -> None:
        flags, rest = packed[2:4], packed[4:12]
        plain = bytes((flags[0] & ~RD_BIT & 0xFF, flags[1])) + rest
        with_rd = bytes((plain[0] | RD_BIT,)) + plain[1:]
        arcount = struct.unpack("!H", rest[6:8])[0] + 1
        edns = [p[:8] + struct.pack("!H", arcount) for p in (plain, with_rd)]
        self.pre = (plain, with_rd, edns[0], edns[1])
        self.suffix = packed[12 + question_length:]
        self.size = len(packed)
        self.small = self.size <= UDP_LIMIT
        self.rcode = rcode


@dataclass(frozen=True)
class Query:
    """A query read far enough to answer it: its question (as sent), the lowercase key and labels, EDNS."""

    id: bytes
    rd: int
    question: bytes
    key: bytes
    labels: tuple[bytes, ...]
    qtype: int
    qclass: int
    edns: int | None = None  # the client's UDP payload size, when it sent an OPT RR
    edns_version: int = 0

    @property
    def limit(self) -> int:
        """How large a UDP answer may be."""
        return UDP_LIMIT if self.edns is None else min(MAX_UDP, max(UDP_LIMIT, self.edns))


def key_of(question: bytes) -> bytes:
    """The cache key of a question: its name lowercased (ASCII only, as DNS compares), type and class as sent."""
    return question[:-4].lower() + question[-4:]


def _rdata(record: Record) -> RD:
    data = record.data
    if record.type == A:
        return A_RD(str(data))
    if record.type == AAAA:
        return AAAA_RD(str(data))
    if record.type == SRV and isinstance(data, Srv):
        return SRV_RD(data.priority, data.weight, data.port, DNSLabel(data.target))
    if record.type == TXT:
        return TXT_RD(str(data))
    if record.type == NS:
        return NS_RD(DNSLabel(str(data)))
    if record.type == SOA and isinstance(data, Soa):
        return SOA_RD(DNSLabel(data.mname), DNSLabel(data.rname),
                      (data.serial, data.refresh, data.retry, data.expire, data.minimum))
    raise ValueError(f"cannot pack record type {record.type}")


def _rr(record: Record) -> RR:
    return RR(DNSLabel(record.name), record.type, IN, record.ttl, _rdata(record))


def pack(labels: tuple[bytes, ...], qtype: int, qclass: int, answer: Answer) -> Entry:
    """Packs an answer to the question (labels, qtype, qclass) into an Entry."""
    header = DNSHeader(id=0, qr=1, aa=1, rd=0, rcode=answer.rcode)
    record = DNSRecord(header, q=DNSQuestion(DNSLabel(list(labels)), qtype, qclass))
    for rr in answer.answer:
        record.add_answer(_rr(rr))
    for rr in answer.authority:
        record.add_auth(_rr(rr))
    for rr in answer.additional:
        record.add_ar(_rr(rr))
    question_length = sum(len(label) + 1 for label in labels) + 5
    return Entry(bytes(record.pack()), question_length, answer.rcode)


def respond(entry: Entry, query: Query, udp: bool) -> bytes:
    """The answer to `query` from a packed entry; over UDP, a truncated one (TC) when it does not fit."""
    edns = query.edns is not None
    if udp and entry.size + (OPT_LEN if edns else 0) > query.limit:
        return short(query, entry.rcode, tc=True)
    out = query.id + entry.pre[query.rd | (2 if edns else 0)] + query.question + entry.suffix
    return out + OPT_RR if edns else out


def short(query: Query, rcode: int, tc: bool = False) -> bytes:
    """A response with the question and no records: SERVFAIL, REFUSED, BADVERS, or truncated (TC)."""
    edns = query.edns is not None
    extended, rcode = rcode >> 4, rcode & 0xF
    flags = bytes((QR | AA | (TC if tc else 0) | query.rd, rcode))
    out = query.id + flags + struct.pack("!HHHH", 1, 0, 0, 1 if edns else 0) + query.question
    return out + struct.pack("!BHHIH", 0, OPT, OUR_UDP_SIZE, extended << 24, 0) if edns else out


def header_only(data: bytes, rcode: int) -> bytes:
    """FORMERR or NOTIMP to a query whose question we do not read: its ID, opcode and RD, no sections."""
    opcode_rd = data[2] & 0x79 if len(data) > 2 else 0
    return data[:2] + bytes((QR | opcode_rd, rcode)) + bytes(8)


def parse(data: bytes) -> Query | bytes | None:
    """A query, or the error response to send (FORMERR, NOTIMP), or None to drop it (no header, a response)."""
    if len(data) < 12 or data[2] & QR:
        return None  # nothing to answer to, or a response sent to us (answering could loop between servers)
    if (data[2] >> 3) & 0xF != 0:
        return header_only(data, NOTIMP)
    qdcount, ancount, nscount, arcount = struct.unpack("!HHHH", data[4:12])
    if qdcount != 1 or ancount or nscount:
        return header_only(data, FORMERR)
    labels: list[bytes] = []
    at, size = 12, len(data)
    while True:
        if at >= size:
            return header_only(data, FORMERR)
        length = data[at]
        if length == 0:
            at += 1
            break
        if length > 63 or at + 1 + length > size:
            return header_only(data, FORMERR)  # a compression pointer (or reserved bits) in a question, or cut
        labels.append(data[at + 1:at + 1 + length].lower())
        at += 1 + length
        if at - 12 > MAX_NAME:
            return header_only(data, FORMERR)
    if at + 4 > size:
        return header_only(data, FORMERR)
    qtype, qclass = struct.unpack("!HH", data[at:at + 4])
    question = data[12:at + 4]
    edns, version = _edns(data, at + 4) if arcount else (None, 0)
    return Query(data[:2], data[2] & RD_BIT, question, key_of(question), tuple(labels), qtype, qclass, edns, version)


def _edns(data: bytes, at: int) -> tuple[int | None, int]:
    """The UDP payload size and EDNS version of an OPT RR right after the question (root owner name), if any."""
    if len(data) < at + OPT_LEN or data[at] != 0:
        return None, 0
    rtype, payload, ttl = struct.unpack("!HHI", data[at + 1:at + 9])
    if rtype != OPT:
        return None, 0
    return payload, (ttl >> 16) & 0xFF
