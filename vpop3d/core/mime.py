"""Parse a stored message once and give IMAP what FETCH, SEARCH, SORT and THREAD need.

The parser works on the stored bytes (CRLF line ends, LF tolerated) and never decodes
more than it must, so ``BODY[...]`` sections are exact byte slices of the message and
8-bit header bytes reach the client unchanged (as literals). It never raises: broken
MIME degrades to ``text/plain`` the way RFC 2045 §5.2 / RFC 2046 §5.1.1 suggest.

Public API:

* :func:`analyse` → :class:`MessageSummary` (ENVELOPE, BODYSTRUCTURE, BODY, sizes, SORT
  and THREAD fields; cacheable with ``to_json``/``from_json``).
* :func:`section` with :class:`SectionSpec` for ``BODY[section]``; :func:`partial`;
  :func:`binary` for ``BINARY[part]``.
* :func:`header_values` and :func:`text_for_search` for SEARCH.

Header primitives live in :mod:`vpop3d.core.mimeheader`, addresses and ENVELOPE in
:mod:`vpop3d.core.imapenvelope`, IMAP string quoting in :mod:`vpop3d.core.imapstring`.
"""

from __future__ import annotations

import binascii
import html
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from vpop3d.core.imapenvelope import (
    display_name,
    envelope,
    parse_addresses,
    sort_mailbox,
)
from vpop3d.core.imapstring import imap_nstring
from vpop3d.core.mimeheader import (
    FOLD,
    HeaderField,
    decode_header_text,
    decode_text,
    first_value,
    parse_structured,
    scan_header,
)

# Resource caps so that hostile input cannot make analysis slow or deep.
MAX_DEPTH = 40
MAX_PARTS = 2000
SEARCH_TEXT_LIMIT = 1_000_000  # characters of decoded text kept for BODY/TEXT search
SEARCH_PART_LIMIT = 4_000_000  # octets of one encoded part decoded for search


def _num(value: int) -> bytes:
    return str(value).encode("ascii")


_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+\Z")


# --- entity tree


@dataclass(slots=True)
class Entity:
    """One MIME entity: the message itself, a body part, or an encapsulated message."""

    header: bytes
    fields: list[HeaderField]
    body: bytes
    maintype: str = "text"
    subtype: str = "plain"
    params: list[tuple[str, str]] = field(default_factory=list)
    children: list[Entity] = field(default_factory=list)
    message: Entity | None = None  # the parsed body of a message/rfc822 part


@dataclass(slots=True)
class _Budget:
    parts: int = MAX_PARTS


def _split_multipart(body: bytes, boundary: str) -> list[bytes]:
    """Body parts between delimiter lines (RFC 2046 §5.1.1), tolerating a missing close.

    The line end before a delimiter belongs to the delimiter; preamble and epilogue are
    dropped.
    """
    try:
        token = boundary.encode("latin-1")
    except UnicodeEncodeError:
        return []
    pattern = re.compile(rb"^--" + re.escape(token) + rb"(--)?[ \t]*\r?$", re.MULTILINE)
    parts: list[bytes] = []
    start: int | None = None
    for match in pattern.finditer(body):
        if start is not None:
            end = match.start()
            if body[end - 2 : end] == b"\r\n":
                end -= 2
            elif body[end - 1 : end] == b"\n":
                end -= 1
            parts.append(body[start : max(start, end)])
        if match.group(1):
            start = None
            break
        eol = body.find(b"\n", match.end())
        start = len(body) if eol < 0 else eol + 1
    if start is not None:
        parts.append(body[start:])
    return parts


def _parse(data: bytes, default: tuple[str, str], depth: int, budget: _Budget) -> Entity:
    fields, offset = scan_header(data)
    entity = Entity(header=data[:offset], fields=fields, body=data[offset:])
    budget.parts -= 1
    ctype, params = parse_structured(first_value(fields, "content-type"))
    maintype, _, subtype = ctype.partition("/")
    maintype, subtype = maintype.strip().lower(), subtype.strip().lower()
    if _TOKEN.match(maintype) and _TOKEN.match(subtype):
        entity.maintype, entity.subtype, entity.params = maintype, subtype, params
    elif ctype:
        # RFC 2045 §5.2: an unparsable Content-Type means text/plain; charset=us-ascii
        entity.params = [("charset", "us-ascii")]
    else:
        entity.maintype, entity.subtype = default
        if default == ("text", "plain"):
            entity.params = [("charset", "us-ascii")]
    if depth >= MAX_DEPTH or budget.parts <= 0:
        if entity.maintype in ("multipart", "message"):
            entity.maintype, entity.subtype = "text", "plain"
        return entity
    if entity.maintype == "multipart":
        boundary = next((v for k, v in entity.params if k.lower() == "boundary"), "")
        bodies = _split_multipart(entity.body, boundary) if boundary else []
        if not bodies:
            # RFC 2046 §5.1.1 cannot be applied: show the content as plain text
            entity.maintype, entity.subtype = "text", "plain"
            return entity
        # RFC 2046 §5.1.5: parts of a digest default to message/rfc822
        digest = entity.subtype == "digest"
        child_default = ("message", "rfc822") if digest else ("text", "plain")
        for part in bodies:
            if budget.parts <= 0:
                break
            entity.children.append(_parse(part, child_default, depth + 1, budget))
        if not entity.children:  # out of part budget: IMAP needs >= 1 part
            entity.maintype, entity.subtype = "text", "plain"
    elif _is_message(entity):
        entity.message = _parse(entity.body, ("text", "plain"), depth + 1, budget)
    return entity


def _is_message(entity: Entity) -> bool:
    # RFC 6532 §3.7: message/global is message/rfc822 with UTF-8 headers
    return entity.maintype == "message" and entity.subtype in ("rfc822", "global")


def parse(raw: bytes) -> Entity:
    """Parse ``raw`` into an entity tree; never raises."""
    return _parse(raw, ("text", "plain"), 0, _Budget())


def _count_lines(body: bytes) -> int:
    if not body:
        return 0
    return body.count(b"\n") + (0 if body.endswith(b"\n") else 1)


# --- BODYSTRUCTURE


def _string(text: str) -> bytes:
    return imap_nstring(text.encode("latin-1", "replace"))


def _param_list(params: list[tuple[str, str]]) -> bytes:
    if not params:
        return b"NIL"
    inner = b" ".join(_string(k.upper()) + b" " + _string(v) for k, v in params)
    return b"(" + inner + b")"


def _disposition(entity: Entity) -> bytes:
    value = first_value(entity.fields, "content-disposition")
    kind, params = parse_structured(value)
    if not kind:
        return b"NIL"
    return b"(" + _string(kind.upper()) + b" " + _param_list(params) + b")"


def _language(entity: Entity) -> bytes:
    value = first_value(entity.fields, "content-language")
    if value is None:
        return b"NIL"
    tags = [t.strip() for t in value.decode("latin-1").split(",") if t.strip()]
    if not tags:
        return b"NIL"
    if len(tags) == 1:
        return _string(tags[0])
    return b"(" + b" ".join(_string(tag) for tag in tags) + b")"


def _structure(entity: Entity, extensible: bool) -> bytes:
    """BODYSTRUCTURE (``extensible``) or BODY for one entity (RFC 3501 §7.4.2)."""
    if entity.children:
        out = b"".join(_structure(child, extensible) for child in entity.children)
        out += b" " + _string(entity.subtype.upper())
        if extensible:
            out += b" " + b" ".join(
                (
                    _param_list(entity.params),
                    _disposition(entity),
                    _language(entity),
                    imap_nstring(first_value(entity.fields, "content-location")),
                )
            )
        return b"(" + out + b")"
    params = entity.params
    if entity.maintype == "text" and not any(k.lower() == "charset" for k, _ in params):
        params = [*params, ("charset", "us-ascii")]
    encoding = first_value(entity.fields, "content-transfer-encoding")
    items = [
        _string(entity.maintype.upper()),
        _string(entity.subtype.upper()),
        _param_list(params),
        imap_nstring(first_value(entity.fields, "content-id")),
        imap_nstring(first_value(entity.fields, "content-description")),
        imap_nstring(encoding.upper() if encoding else b"7BIT"),
        _num(len(entity.body)),
    ]
    if entity.message is not None:
        items.append(envelope(entity.message.fields))
        items.append(_structure(entity.message, extensible))
        items.append(_num(_count_lines(entity.body)))
    elif entity.maintype == "text":
        items.append(_num(_count_lines(entity.body)))
    if extensible:
        items.append(imap_nstring(first_value(entity.fields, "content-md5")))
        items.append(_disposition(entity))
        items.append(_language(entity))
        items.append(imap_nstring(first_value(entity.fields, "content-location")))
    return b"(" + b" ".join(items) + b")"


# --- SORT / THREAD

_SPACES = re.compile(r"[ \t\r\n]+")
# subj-leader without the WSP branch: *subj-blob subj-refwd (RFC 5256 §5)
_LEADER = re.compile(r"(?:\[[^\[\]]*\] *)*(?:re|fwd?) *(?:\[[^\[\]]*\] *)?:", re.IGNORECASE)
_BLOB = re.compile(r"\[[^\[\]]*\] *")


def base_subject(subject: str) -> tuple[str, bool]:
    """RFC 5256 §2.1 base subject, and whether it was a reply or forward.

    ``subject`` must already be RFC 2047-decoded. Comparison of the result is by
    i;ascii-casemap, which callers get via :func:`ascii_casemap`.
    """
    text = _SPACES.sub(" ", subject)  # step 1
    reply = False
    while True:
        while True:  # step 2: trailing "(fwd)" and WSP
            text = text.rstrip(" ")
            if text[-5:].lower() == "(fwd)":
                text = text[:-5]
                reply = True
            else:
                break
        changed = True
        while changed:  # steps 3-5
            changed = False
            stripped = text.lstrip(" ")
            match = _LEADER.match(stripped)
            if match:
                stripped = stripped[match.end() :]
                reply = True
            if stripped != text:
                text, changed = stripped, True
                continue
            # step 4, in one pass: the leader regex already tried every number of
            # leading blobs, so it cannot match after any of them (keeps this linear)
            position = 0
            while (blob := _BLOB.match(text, position)) and blob.end() < len(text):
                position = blob.end()
            if position:
                text, changed = text[position:], True
        if text[:5].lower() == "[fwd:" and text.endswith("]"):  # step 6
            text = text[5:-1]
            reply = True
            continue
        return text, reply


_MSG_ID = re.compile(rb"<([^<>\s]+)>")


def _message_ids(value: bytes | None) -> list[str]:
    if not value:
        return []
    return [m.decode("latin-1") for m in _MSG_ID.findall(FOLD.sub(b"", value))]


def _sent_date(value: bytes | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.decode("latin-1"))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # RFC 5322 §3.3 "-0000": time is UTC, zone unknown
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


# --- summary


def _b2s(data: bytes) -> str:
    return data.decode("latin-1")


def _s2b(text: str) -> bytes:
    return text.encode("latin-1")


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """Everything FETCH/SORT/THREAD ask about a message, computed once at delivery.

    JSON form (``to_json``): an object with the same keys; ``bytes`` fields are latin-1
    strings (lossless, one char per octet), ``sent_date`` is ISO 8601 or null, plus
    ``"v": 1``.
    """

    envelope: bytes
    bodystructure: bytes
    body: bytes
    header_size: int
    size: int
    lines: int
    sent_date: datetime | None
    subject_base: str
    subject_reply: bool  # the base subject came from a reply/forward (RFC 5256 §2.1)
    from_sort: str
    to_sort: str
    cc_sort: str
    display_from: str  # RFC 5957 DISPLAYFROM (decoded, not yet casefolded)
    display_to: str
    message_id: str  # without angle brackets; "" when none
    references: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "envelope": _b2s(self.envelope),
                "bodystructure": _b2s(self.bodystructure),
                "body": _b2s(self.body),
                "header_size": self.header_size,
                "size": self.size,
                "lines": self.lines,
                "sent_date": None if self.sent_date is None else self.sent_date.isoformat(),
                "subject_base": self.subject_base,
                "subject_reply": self.subject_reply,
                "from_sort": self.from_sort,
                "to_sort": self.to_sort,
                "cc_sort": self.cc_sort,
                "display_from": self.display_from,
                "display_to": self.display_to,
                "message_id": self.message_id,
                "references": list(self.references),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> MessageSummary:
        """Inverse of ``to_json``; ``ValueError`` on anything it did not write."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("not a v1 message summary")

        def text_of(key: str) -> str:
            value = data.get(key)
            if not isinstance(value, str):
                raise ValueError(f"summary field {key} is not a string")
            return value

        def int_of(key: str) -> int:
            value = data.get(key)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"summary field {key} is not an integer")
            return value

        sent = data.get("sent_date")
        refs = data.get("references")
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            raise ValueError("summary field references is not a list of strings")
        if sent is not None and not isinstance(sent, str):
            raise ValueError("summary field sent_date is not a string")
        reply = data.get("subject_reply")
        if not isinstance(reply, bool):
            raise ValueError("summary field subject_reply is not a boolean")
        return cls(
            envelope=_s2b(text_of("envelope")),
            bodystructure=_s2b(text_of("bodystructure")),
            body=_s2b(text_of("body")),
            header_size=int_of("header_size"),
            size=int_of("size"),
            lines=int_of("lines"),
            sent_date=None if sent is None else datetime.fromisoformat(sent),
            subject_base=text_of("subject_base"),
            subject_reply=reply,
            from_sort=text_of("from_sort"),
            to_sort=text_of("to_sort"),
            cc_sort=text_of("cc_sort"),
            display_from=text_of("display_from"),
            display_to=text_of("display_to"),
            message_id=text_of("message_id"),
            references=tuple(refs),
        )


def analyse(raw: bytes) -> MessageSummary:
    """Parse ``raw`` once into cached FETCH/SORT/THREAD data; never raises."""
    root = parse(raw)
    fields = root.fields
    subject = first_value(fields, "subject")
    base, reply = base_subject(decode_header_text(subject) if subject else "")
    references = _message_ids(first_value(fields, "references"))
    if not references:
        # RFC 5256 §2.2 step 1: fall back to the first msg-id of In-Reply-To
        references = _message_ids(first_value(fields, "in-reply-to"))[:1]
    message_ids = _message_ids(first_value(fields, "message-id"))
    from_ = parse_addresses(first_value(fields, "from"))
    to = parse_addresses(first_value(fields, "to"))
    return MessageSummary(
        envelope=envelope(fields),
        bodystructure=_structure(root, extensible=True),
        body=_structure(root, extensible=False),
        header_size=len(root.header),
        size=len(raw),
        lines=_count_lines(root.body),
        sent_date=_sent_date(first_value(fields, "date")),
        subject_base=base,
        subject_reply=reply,
        from_sort=sort_mailbox(from_),
        to_sort=sort_mailbox(to),
        cc_sort=sort_mailbox(parse_addresses(first_value(fields, "cc"))),
        display_from=display_name(from_),
        display_to=display_name(to),
        message_id=message_ids[0] if message_ids else "",
        references=tuple(references),
    )


# --- sections


@dataclass(frozen=True, slots=True)
class SectionSpec:
    """RFC 3501 §6.4.5 section: ``BODY[1.2.HEADER.FIELDS (From To)]`` is
    ``SectionSpec((1, 2), "HEADER.FIELDS", ("From", "To"))``.

    ``text`` is None (whole part), ``"HEADER"``, ``"TEXT"``, ``"HEADER.FIELDS"``,
    ``"HEADER.FIELDS.NOT"`` or ``"MIME"`` (upper case).
    """

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()

    def label(self) -> str:
        """The section as echoed in the FETCH response, e.g. ``1.HEADER.FIELDS (A B)``."""
        items = [str(number) for number in self.part]
        if self.text is not None:
            items.append(self.text)
        label = ".".join(items)
        if self.fields:
            label += " (" + " ".join(_astring(name) for name in self.fields) + ")"
        return label


_ATOM = re.compile(r"[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|}~]+\Z")
_SECTION_TEXTS = ("HEADER.FIELDS.NOT", "HEADER.FIELDS", "HEADER", "TEXT", "MIME")
_SECTION_ATOM = re.compile(r'"((?:[^"\\]|\\.)*)"|([^\s()"]+)')


def _astring(name: str) -> str:
    if _ATOM.match(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_section(text: str) -> SectionSpec:
    """Parse what stands between ``BODY[`` and ``]`` (literals excluded).

    ``ValueError`` for anything RFC 3501 §9 ``section-spec`` does not allow, e.g. a
    zero part number, ``MIME`` without a part, or an empty field list.
    """
    head, _, rest = text.partition(" ")
    numbers: list[int] = []
    items = head.split(".") if head else []
    while items and items[0].isascii() and items[0].isdigit():
        value = int(items.pop(0))
        if value == 0 or len(numbers) > 100:
            raise ValueError(f"bad section part in {text!r}")
        numbers.append(value)
    keyword = ".".join(items).upper()
    if (items and not keyword) or (keyword and keyword not in _SECTION_TEXTS):
        raise ValueError(f"bad section text in {text!r}")
    if keyword == "MIME" and not numbers:
        raise ValueError("MIME needs a part number")
    fields: list[str] = []
    if keyword.startswith("HEADER.FIELDS"):
        inner = rest.strip()
        if not (inner.startswith("(") and inner.endswith(")")):
            raise ValueError(f"missing header list in {text!r}")
        for match in _SECTION_ATOM.finditer(inner[1:-1]):
            quoted, atom = match.groups()
            fields.append(re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else atom)
        if not fields:
            raise ValueError("empty header list")
    elif rest.strip():
        raise ValueError(f"unexpected text in section {text!r}")
    return SectionSpec(tuple(numbers), keyword or None, tuple(fields))


def _locate(root: Entity, path: tuple[int, ...]) -> Entity | None:
    """Follow a part number; a non-multipart message's only part 1 is its body."""
    node, is_message = root, True
    for index in path:
        if not is_message and node.message is not None:
            node, is_message = node.message, True
        if node.children:
            if not 1 <= index <= len(node.children):
                return None
            node, is_message = node.children[index - 1], False
        elif is_message and index == 1:
            is_message = False
        else:
            return None
    return node


def _filter_header(entity: Entity, names: tuple[str, ...], keep: bool) -> bytes:
    wanted = {name.lower() for name in names}
    lines = [f.raw for f in entity.fields if (f.name.lower() in wanted) == keep]
    out = b"".join(line if line.endswith(b"\n") else line + b"\r\n" for line in lines)
    return out + b"\r\n"


def section(raw: bytes, spec: SectionSpec) -> bytes:
    """The octets of ``BODY[spec]`` before ``<partial>``; b"" for a missing part."""
    root = parse(raw)
    if spec.part:
        node = _locate(root, spec.part)
        if node is None:
            return b""
        if spec.text is None:
            return node.body
        if spec.text == "MIME":
            return node.header
        if node.message is None:
            return b""
        target = node.message
    else:
        if spec.text is None:
            return raw
        if spec.text == "MIME":
            return b""
        target = root
    if spec.text == "HEADER":
        return target.header
    if spec.text == "TEXT":
        return target.body
    if spec.text == "HEADER.FIELDS":
        return _filter_header(target, spec.fields, keep=True)
    if spec.text == "HEADER.FIELDS.NOT":
        return _filter_header(target, spec.fields, keep=False)
    return b""


_IDENTITY_CTE = frozenset({b"", b"7bit", b"8bit", b"binary"})


def binary(raw: bytes, part: tuple[int, ...]) -> bytes | None:
    """``BINARY[part]`` (RFC 3516, RFC 9051 §6.4.5): the part with its transfer
    encoding removed; b"" for a missing part, None for an unknown encoding
    (the caller answers ``NO [UNKNOWN-CTE]``).

    Multiparts and message/rfc822 parts are returned as they are stored.
    """
    root = parse(raw)
    if not part:
        return raw
    node = _locate(root, part)
    if node is None:
        return b""
    if node.children or node.message is not None:
        return node.body
    encoding = (first_value(node.fields, "content-transfer-encoding") or b"").lower()
    if encoding in _IDENTITY_CTE:
        return node.body
    if encoding in (b"base64", b"quoted-printable"):
        return _decode_transfer(node.body, encoding)
    return None


def partial(data: bytes, origin: int, count: int | None = None) -> bytes:
    """``BODY[...]<origin.count>`` (RFC 3501 §6.4.5); empty past the end."""
    if count is None:
        return data[origin:]
    return data[origin : origin + count]


# --- SEARCH text

_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)


def normalise_for_search(text: str) -> str:
    """Fold case and whitespace the same way for message text and search strings."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text).casefold())


def _decode_transfer(body: bytes, encoding: bytes | None) -> bytes:
    name = (encoding or b"").strip().lower()
    try:
        if name == b"base64":
            # tolerate line breaks, junk and missing padding (RFC 2045 §6.8)
            cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", body)
            if len(cleaned) % 4 == 1:
                cleaned = cleaned[:-1]
            cleaned += b"=" * (-len(cleaned) % 4)
            return binascii.a2b_base64(cleaned)
        if name == b"quoted-printable":
            return binascii.a2b_qp(body)
    except (binascii.Error, ValueError):
        return body
    return body


def _entity_text(entity: Entity) -> str:
    body = entity.body[:SEARCH_PART_LIMIT]
    payload = _decode_transfer(body, first_value(entity.fields, "content-transfer-encoding"))
    charset = next((v for k, v in entity.params if k.lower() == "charset"), None)
    text = decode_text(payload, charset)
    if entity.subtype == "html":
        # RFC 3501 §6.4.4 BODY matches the body as sent (markup and URLs too); the text
        # without tags is added so a phrase split by inline markup is found as well.
        text = text + "\n" + html.unescape(_TAG.sub(" ", text))
    return text


def _walk_text(entity: Entity, out: list[str], budget: list[int]) -> None:
    if budget[0] <= 0:
        return
    if entity.children:
        for child in entity.children:
            _walk_text(child, out, budget)
    elif entity.message is not None:
        # an attached message's header is body text of the outer message
        header = _header_text(entity.message.fields)[: budget[0]]
        budget[0] -= len(header)
        out.append(header)
        _walk_text(entity.message, out, budget)
    elif entity.maintype == "text":
        text = _entity_text(entity)[: budget[0]]
        budget[0] -= len(text)
        out.append(text)


def entity_search_text(root: Entity) -> str:
    """Decoded, normalised text of all text/* parts (BODY search), capped in size."""
    out: list[str] = []
    _walk_text(root, out, [SEARCH_TEXT_LIMIT])
    return normalise_for_search(" ".join(out))


def text_for_search(raw: bytes) -> str:
    """:func:`entity_search_text` of a raw message."""
    return entity_search_text(parse(raw))


def field_values(fields: list[HeaderField], name: str) -> list[str]:
    """Decoded values of every field called ``name`` (case-insensitive)."""
    wanted = name.lower()
    return [decode_header_text(f.value) for f in fields if f.name.lower() == wanted]


def header_values(raw: bytes, name: str) -> list[str]:
    """RFC 2047-decoded, unfolded values of the message's ``name`` header fields."""
    return field_values(scan_header(raw)[0], name)


def _header_text(fields: list[HeaderField]) -> str:
    return "\n".join(f"{f.name}: {decode_header_text(f.value)}" for f in fields) + "\n"


def header_search_text(fields: list[HeaderField]) -> str:
    """All header fields decoded and normalised, for the TEXT search key."""
    return normalise_for_search(_header_text(fields))
