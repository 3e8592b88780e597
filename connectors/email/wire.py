"""E-mail: one RFC 5322 message (bytes) into one RawMessage.

Pure and total: any byte sequence but the empty one gives a RawMessage, with what could
not be read listed in `extra["parse_defects"]` (the gateway keeps the raw bytes anyway).
Long (~950 lines) because reading real mail is one concept with many cases: charsets,
MIME structure, quoted replies, forwards, TNEF, automated mail; split, each part would
need all the others.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from connectors.base import AttachmentRef, MalformedPayload, RawMessage, Sender
from connectors.email.auth import MAX_HEADER_CHARS, MAX_HEADERS

log = logging.getLogger(__name__)

CHANNEL = "email"
MAX_ATTACHMENTS = 50
MAX_NESTING = 3  # message/rfc822 inside message/rfc822 …
MAX_EXTERNAL_ID = 500
TNEF = "application/ms-tnef"  # winmail.dat: Outlook's wrapper around a message's parts
_TNEF_SIGNATURE = b"\x78\x9f\x3e\x22"

TICKET_RE = re.compile(r"\bKNL-[0-9A-Z]{4}-[0-9A-Z]{4}\b", re.IGNORECASE)
_MSGID_RE = re.compile(r"<([^<>\s]+)>")
_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([QqBb])\?([^?\s]*)\?=")
_BLANK_BETWEEN_WORDS = re.compile(r"(=\?[^?\s]+\?[QqBb]\?[^?\s]*\?=)\s+(?==\?)")
_SINGLE_BYTE_CHARSETS = {
    "ascii",
    "latin-1",
    "iso8859-1",
    "iso8859-15",
    "cp1252",
    "iso8859-2",
    "cp1250",
}
# Codecs that are not character sets, whatever a header calls them.
_NOT_CHARSETS = {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"}


# --- bytes and headers into clean text --------------------------------------------------


def _codec(charset: str | None) -> str | None:
    """Python's codec name for a MIME charset; None when unknown or not a character set."""
    if not charset:
        return None
    name = charset.strip().strip("\"'").lower()
    if not name or name in ("unknown-8bit", "x-unknown", "unknown", "8bit"):
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


def _mostly_utf8(data: bytes) -> bool:
    """True when the 8-bit bytes are mostly well-formed UTF-8 sequences."""
    high = sum(1 for b in data if b >= 0x80)
    if not high:
        return True
    in_sequences = sum(len(m) for m in _UTF8_MULTIBYTE.findall(data))
    return in_sequences * 2 >= high


def decode_bytes(data: bytes, charset: str | None, defects: list[str], where: str) -> str:
    """Best-effort text: the declared charset when it fits the bytes, else UTF-8, else cp1252."""
    declared = (charset or "").strip().strip("\"'").lower()
    codec = _codec(declared)
    if declared and codec is None:
        defects.append(f"{where}: unknown charset {declared[:40]!r}")
    if codec:
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass
        else:
            if codec in _SINGLE_BYTE_CHARSETS and codec != "ascii" and _has_utf8(data):
                defects.append(f"{where}: declared {declared} but bytes are utf-8")
                return data.decode("utf-8")
            return text
        if codec != "ascii" and declared:
            defects.append(f"{where}: bytes do not match declared charset {declared[:40]!r}")
        elif declared:
            defects.append(f"{where}: 8-bit bytes under declared {declared}")
    elif not declared and any(b >= 0x80 for b in data):
        defects.append(f"{where}: 8-bit bytes without a charset")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if _mostly_utf8(data):
        return data.decode("utf-8", "replace")
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _has_utf8(data: bytes) -> bool:
    """Valid UTF-8 with at least one multi-byte sequence (which Latin-1 text almost never is)."""
    if not _UTF8_MULTIBYTE.search(data):
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def clean_str(value: Any) -> str:
    """A str safe for JSON and PostgreSQL: 8-bit bytes smuggled as surrogates re-decoded,
    no NULs or other control characters but tab and newline."""
    text = value if isinstance(value, str) else str(value or "")
    if _SURROGATES.search(text):
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "replace")
        text = decode_bytes(raw, None, [], "")
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def decode_encoded_words(value: str, defects: list[str] | None = None) -> str:
    """RFC 2047 `=?charset?Q|B?…?=` words, with the same charset fallbacks as bodies."""
    sink: list[str] = [] if defects is None else defects
    value = _BLANK_BETWEEN_WORDS.sub(r"\1", value)

    def word(match: re.Match[str]) -> str:
        charset, encoding, payload = match.group(1), match.group(2).upper(), match.group(3)
        try:
            if encoding == "B":
                raw = base64.b64decode(payload + "=" * (-len(payload) % 4))
            else:
                raw = re.sub(
                    r"=([0-9A-Fa-f]{2})",
                    lambda m: chr(int(m.group(1), 16)),
                    payload.replace("_", " "),
                ).encode("latin-1")
        except (binascii.Error, ValueError, UnicodeEncodeError):
            sink.append(f"header: undecodable encoded word {match.group(0)[:60]!r}")
            return match.group(0)
        return decode_bytes(raw, charset, sink, "header")

    return _ENCODED_WORD.sub(word, value)


def _raw_header(msg: EmailMessage, name: str) -> str | None:
    """A header's value exactly as it came, folding removed (no parsing, never raises)."""
    lowered = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == lowered:
            return _unfold(value)
    return None


def _unfold(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return re.sub(r"\r?\n[ \t]", " ", text).strip()


def _raw_headers(msg: EmailMessage, name: str, limit: int) -> list[str]:
    """Every value of a repeated header (e.g. Authentication-Results), topmost first, cleaned."""
    lowered = name.lower()
    found: list[str] = []
    for key, value in msg.raw_items():
        if key.lower() == lowered and len(found) < limit:
            found.append(clean_str(_unfold(value))[:MAX_HEADER_CHARS])
    return found


def _text_header(msg: EmailMessage, name: str, defects: list[str]) -> str | None:
    raw = _raw_header(msg, name)
    if raw is None:
        return None
    text = re.sub(r"\s+", " ", clean_str(decode_encoded_words(clean_str(raw), defects))).strip()
    return text or None


@dataclass(frozen=True, slots=True)
class _Address:
    name: str | None
    addr: str | None


def _addresses(msg: EmailMessage, name: str, defects: list[str]) -> list[_Address]:
    """Addresses of a header, decoded; garbage yields what parseaddr can salvage."""
    if _raw_header(msg, name) is None:
        return []
    found: list[_Address] = []
    try:
        header = msg[name]
        for address in getattr(header, "addresses", ()):
            found.append(
                _Address(
                    clean_str(address.display_name).strip() or None,
                    clean_str(address.addr_spec).strip().strip("<>") or None,
                )
            )
    except Exception as exc:  # the stdlib header parser has raised on hostile input before
        defects.append(f"{name}: header parser failed ({type(exc).__name__})")
        found = []
    if not found or all(a.addr is None or "@" not in a.addr for a in found):
        decoded = _text_header(msg, name, defects) or ""
        salvaged = [
            _Address(display.strip() or None, addr.strip() or None)
            for display, addr in getaddresses([decoded])
            if addr or display
        ]
        if any(a.addr and "@" in a.addr for a in salvaged):
            found = salvaged
        elif not found:
            display, addr = parseaddr(decoded)
            found = [_Address(display or None, addr or None)] if display or addr else []
            if not addr:
                defects.append(f"{name}: no address could be read")
    return found


def _message_ids(value: str | None) -> list[str]:
    if not value:
        return []
    ids = _MSGID_RE.findall(value)
    if not ids:  # some clients drop the angle brackets
        ids = [token.strip("<>,;") for token in value.split() if "@" in token]
    return [clean_str(i) for i in ids if i]


# --- HTML into text ------------------------------------------------------------------------

_SKIP_TAGS = {"script", "style", "head", "title", "noscript", "template", "svg", "object"}
_BLOCK_TAGS = {
    "p", "div", "br", "tr", "table", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "pre", "section", "article", "header", "footer", "address", "dd", "dt", "dl",
    "blockquote", "center", "form", "fieldset", "figure", "figcaption", "main", "nav",
    "aside", "tbody", "thead", "tfoot", "caption",
}  # fmt: skip
_VOID_TAGS = {"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr"}


class _HtmlText(HTMLParser):
    """Readable text from HTML mail: blocks become lines, blockquotes become `> ` lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.skip_depth = 0
        self.quote_depth = 0
        self.pre_depth = 0

    def _break(self) -> None:
        self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS and tag not in _VOID_TAGS:
            self.skip_depth += 1
            return
        if tag in _BLOCK_TAGS:
            self._break()
        if tag == "blockquote":
            self.quote_depth += 1
            self._break()
        elif tag == "pre":
            self.pre_depth += 1
        elif tag == "li":
            self.lines[-1] += "- "
        elif tag in ("td", "th"):
            self.lines[-1] += " "

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS and tag not in _VOID_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if tag == "blockquote":
            self.quote_depth = max(0, self.quote_depth - 1)
        elif tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
        if tag in _BLOCK_TAGS:
            self._break()

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        prefix = "> " * self.quote_depth
        if self.pre_depth:
            first, *rest = data.split("\n")
            self._append(first, prefix)
            for line in rest:
                self._break()
                self._append(line, prefix)
        else:
            self._append(re.sub(r"\s+", " ", data), prefix)

    def _append(self, text: str, prefix: str) -> None:
        if not text:
            return
        if prefix and not self.lines[-1].startswith(prefix):
            self.lines[-1] = prefix + self.lines[-1].lstrip()
        self.lines[-1] += text


def html_to_text(html: str) -> str:
    """Clean text of an HTML body: no script, style or head; blank lines collapsed."""
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError, IndexError) as exc:  # older parsers on bad markup
        log.debug("HTML parser stopped early: %s", exc)
    out: list[str] = []
    for line in parser.lines:
        match = re.match(r"^((?:>\s?)*)(.*)$", line.replace("\xa0", " "))
        quote = (match.group(1) if match else "").replace(" ", "")
        content = re.sub(r"[ \t]+", " ", match.group(2) if match else line).strip()
        out.append(f"{'> ' * len(quote)}{content}".rstrip() if quote else content)
    return _collapse_blank_lines("\n".join(out))


def _collapse_blank_lines(text: str) -> str:
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: a line ending in a space continues on the next one."""
    out: list[str] = []
    carry = ""
    for line in text.split("\n"):
        if line.endswith(" ") and line != "-- " and not line.startswith(">"):
            carry += line[:-1] if delsp else line
            continue
        out.append(carry + line)
        carry = ""
    if carry:
        out.append(carry)
    return "\n".join(out)


# --- quoted replies, forwards and signatures ----------------------------------------------

_FORWARD_MARK = re.compile(
    r"^\s*-{3,}\s*(?:Forwarded message|Pesan terusan|Pesan yang diteruskan)\s*-{3,}\s*$"
    r"|^\s*(?:Begin forwarded message|Mulai pesan yang diteruskan|Pesan yang diteruskan)\s*:\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_ORIGINAL_MARK = re.compile(
    r"^\s*-{3,}\s*(?:Original Message|Pesan Asli)\s*-{3,}\s*$", re.IGNORECASE | re.MULTILINE
)
# "On Mon, 1 Jan 2026 at 10:00, Budi <b@x.id> wrote:" — Gmail wraps it over two lines.
_REPLY_HEADER = re.compile(
    r"^[ \t]*(?:On|Pada)\b[^\n]{0,300}(?:\n[^\n]{0,300})?\b(?:wrote|menulis)\s*:[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(?:From|Dari)\s*:\*?\s*\S", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(
    r"^\s*\*?(?:Sent|Dikirim|Date|Tanggal|Terkirim|To|Kepada)\s*:\*?\s*\S", re.IGNORECASE
)
_HEADER_LINE = re.compile(
    r"^\s*\*?(?:From|Dari|Date|Tanggal|Sent|Dikirim|Terkirim|Subject|Subjek|Perihal|To|Kepada"
    r"|Cc|Tembusan|Reply-To)\s*:\*?",
    re.IGNORECASE,
)
_FOOTER = re.compile(
    r"^\s*(?:Sent from (?:my |Yahoo Mail|Mail for |Outlook|Samsung|Gmail|Xiaomi|Huawei)"
    r"|Sent via |Get Outlook for |Dapatkan Outlook untuk "
    r"|Dikirim dari |Kirim dari |Dikirim melalui |Terkirim dari )[^\n]{0,60}$",
    re.IGNORECASE,
)


@dataclass(slots=True)
class _Cut:
    index: int  # line index where the quoted part starts
    kind: str  # reply | forward | original | outlook | quote
    end: int  # first line after the marker itself


def _find_cut(lines: list[str]) -> _Cut | None:
    text = "\n".join(lines)
    offsets: list[int] = []
    position = 0
    for line in lines:
        offsets.append(position)
        position += len(line) + 1

    def line_of(char: int) -> int:
        low, high = 0, len(offsets) - 1
        while low < high:
            mid = (low + high + 1) // 2
            if offsets[mid] <= char:
                low = mid
            else:
                high = mid - 1
        return low

    cuts: list[_Cut] = []
    for kind, pattern in (
        ("forward", _FORWARD_MARK),
        ("original", _ORIGINAL_MARK),
        ("reply", _REPLY_HEADER),
    ):
        match = pattern.search(text)
        if match:
            start = line_of(match.start() + (len(match.group(0)) - len(match.group(0).lstrip())))
            end = line_of(max(match.end() - 1, match.start())) + 1
            cuts.append(_Cut(start, kind, end))
    for number, line in enumerate(lines):
        if line.startswith(">"):
            cuts.append(_Cut(number, "quote", number))
            break
    for number, line in enumerate(lines):
        if _OUTLOOK_FROM.match(line) and any(
            _OUTLOOK_NEXT.match(following) for following in lines[number + 1 : number + 4]
        ):
            start = number
            if number and re.fullmatch(r"\s*_{8,}\s*", lines[number - 1]):
                start = number - 1
            cuts.append(_Cut(start, "outlook", start))
            break
    if not cuts:
        return None
    return min(cuts, key=lambda cut: (cut.index, cut.kind != "forward"))


def _strip_signature(lines: list[str]) -> list[str]:
    for number, line in enumerate(lines):
        if line in ("-- ", "--"):
            return lines[:number]
    for number, line in enumerate(lines):
        if _FOOTER.match(line):
            after = [rest for rest in lines[number + 1 :] if rest.strip()]
            if len(after) <= 3:
                return lines[:number]
    return lines


def _skip_header_block(lines: list[str]) -> list[str]:
    """Drop the From/Date/Subject/To block that opens a forwarded or Outlook-quoted message."""
    number = 0
    while number < len(lines) and not lines[number].strip():
        number += 1
    while number < len(lines) and (
        _HEADER_LINE.match(lines[number]) or re.fullmatch(r"\s*_{8,}\s*", lines[number])
    ):
        number += 1
    return lines[number:]


def strip_quoted(text: str, _depth: int = 0) -> tuple[str, str | None]:
    """The citizen's own words: quoted replies, signatures and client footers removed.

    Returns the clean text and what was cut (`reply`, `forward`, `original`, `outlook`,
    `quote`, or None). A forward with nothing written above it keeps the forwarded text:
    a citizen forwarding a complaint means that text is the complaint. A reply with nothing
    above the attribution line is read as interleaved: the unquoted lines are kept.
    """
    lines = text.split("\n")
    cut = _find_cut(lines)
    if cut is None:
        return _collapse_blank_lines("\n".join(_strip_signature(lines))), None
    own = _strip_signature(lines[: cut.index])
    if any(line.strip() for line in own):
        return _collapse_blank_lines("\n".join(own)), cut.kind
    if _depth >= 3:
        return "", cut.kind
    if cut.kind in ("reply", "quote"):
        kept = [line for line in lines[cut.end :] if not line.startswith(">")]
        inner, _ = strip_quoted("\n".join(kept), _depth + 1)
        return inner, cut.kind
    forwarded = _skip_header_block(lines[cut.end :])
    inner, _ = strip_quoted("\n".join(forwarded), _depth + 1)
    return inner, cut.kind


# --- the message tree ----------------------------------------------------------------------

_REPORT_PARTS = {
    "message/delivery-status",
    "message/global-delivery-status",
    "text/rfc822-headers",
    "message/disposition-notification",
    "message/feedback-report",
}
_SIGNATURE_PARTS = {
    "application/pgp-signature",
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
}
_NESTED_MESSAGES = {"message/rfc822", "message/global"}


@dataclass(slots=True)
class _Harvest:
    defects: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    attachments: list[AttachmentRef] = field(default_factory=list)
    attachment_notes: list[dict[str, Any]] = field(default_factory=list)
    dropped_attachments: int = 0
    forwarded_texts: list[str] = field(default_factory=list)

    def flag(self, name: str) -> None:
        if name not in self.flags:
            self.flags.append(name)


def _safe_content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # a garbage Content-Type header must not sink the message
        return "application/octet-stream"


def _payload_bytes(part: Message, harvest: _Harvest, where: str) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception as exc:  # decoders raise on some hostile transfer encodings
        harvest.defects.append(f"{where}: payload not decodable ({type(exc).__name__})")
        return b""
    if isinstance(payload, bytes):
        return payload
    return b""


def _part_text(part: Message, harvest: _Harvest, where: str) -> str:
    data = _payload_bytes(part, harvest, where)
    try:
        charset = part.get_param("charset")
    except Exception:
        charset = None
    charset_name = charset if isinstance(charset, str) else None
    text = clean_str(decode_bytes(data, charset_name, harvest.defects, where))
    subtype = _safe_content_type(part)
    if subtype == "text/html":
        return html_to_text(text)
    try:
        flowed = str(part.get_param("format") or "").lower() == "flowed"
        delsp = str(part.get_param("delsp") or "").lower() == "yes"
    except Exception:
        flowed = delsp = False
    return _unflow(text, delsp) if flowed else text


def _filename(part: EmailMessage) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if not name:
        return None
    name = clean_str(decode_encoded_words(clean_str(name)))
    name = re.split(r"[/\\]", name)[-1].strip().strip(".") or None
    return name[:255] if name else None


def _pick_body(msg: EmailMessage, harvest: _Harvest, where: str) -> Message | None:
    """The part holding the message text: plain preferred, HTML when plain is empty."""
    try:
        plain = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
    except Exception as exc:
        harvest.defects.append(f"{where}: body not found ({type(exc).__name__})")
        return None
    if plain is not None and (html is None or _part_text(plain, _Harvest(), "").strip()):
        return plain
    return html or plain


def _is_attachment_leaf(part: EmailMessage, content_type: str) -> bool:
    if content_type in _REPORT_PARTS or content_type in _SIGNATURE_PARTS:
        return False
    try:
        disposition = part.get_content_disposition()
    except Exception:
        disposition = None
    if content_type in ("text/plain", "text/html"):
        return disposition == "attachment" or _filename(part) is not None
    return True


def _add_attachment(part: EmailMessage, content_type: str, harvest: _Harvest, where: str) -> None:
    if len(harvest.attachments) >= MAX_ATTACHMENTS:
        harvest.dropped_attachments += 1
        return
    data = _payload_bytes(part, harvest, where)
    filename = _filename(part)
    # The attachment is carried as declared: what the bytes are is the normalizers' to sniff.
    if (
        content_type == TNEF
        or data.startswith(_TNEF_SIGNATURE)
        or (filename or "").lower() == "winmail.dat"
    ):
        harvest.flag("winmail_dat")
    content_id = _raw_header(part, "Content-ID")
    harvest.attachments.append(
        AttachmentRef(content_type=content_type, filename=filename, data=data)
    )
    harvest.attachment_notes.append(
        {
            "filename": filename,
            "declared_type": content_type,
            "size": len(data),
            "content_id": clean_str(content_id).strip("<> ") if content_id else None,
        }
    )


def _nested_message(part: EmailMessage, harvest: _Harvest, where: str) -> EmailMessage | None:
    try:
        payload = part.get_payload()
    except Exception:
        payload = None
    if isinstance(payload, list) and payload and isinstance(payload[0], EmailMessage):
        return payload[0]
    # Some clients base64-encode the attached message, so the parser left it as a string.
    data = _payload_bytes(part, harvest, where)
    if not data:
        return None
    try:
        nested = BytesParser(policy=policy.default).parsebytes(data)
    except Exception as exc:
        harvest.defects.append(f"{where}: attached message unreadable ({type(exc).__name__})")
        return None
    return nested if isinstance(nested, EmailMessage) else None


def _walk(
    part: EmailMessage,
    body: Message | None,
    harvest: _Harvest,
    depth: int,
    path: str,
    inline_texts: list[str],
    parent_type: str = "",
) -> None:
    content_type = _safe_content_type(part)
    try:
        _walk_part(part, content_type, body, harvest, depth, path, inline_texts, parent_type)
    finally:
        # Read last: decoding a payload is what registers its transfer-encoding defects.
        for defect in getattr(part, "defects", []):
            harvest.defects.append(f"{path}: {type(defect).__name__}")


def _walk_part(
    part: EmailMessage,
    content_type: str,
    body: Message | None,
    harvest: _Harvest,
    depth: int,
    path: str,
    inline_texts: list[str],
    parent_type: str,
) -> None:
    if content_type in _NESTED_MESSAGES:
        nested = _nested_message(part, harvest, path)
        if nested is None:
            _add_attachment(part, content_type, harvest, path)
        elif depth >= MAX_NESTING:
            harvest.defects.append(f"{path}: attached message nested deeper than {MAX_NESTING}")
            _add_attachment(part, content_type, harvest, path)
        else:
            harvest.flag("forwarded_attachment")
            harvest.forwarded_texts.append(_read_nested(nested, harvest, depth + 1, path))
        return
    if part.is_multipart():
        try:
            children = list(part.iter_parts())
        except Exception as exc:
            harvest.defects.append(f"{path}: parts unreadable ({type(exc).__name__})")
            return
        for number, child in enumerate(children, 1):
            if isinstance(child, EmailMessage):
                _walk(child, body, harvest, depth, f"{path}.{number}", inline_texts, content_type)
        return
    if part is body:
        return
    if _is_attachment_leaf(part, content_type):
        _add_attachment(part, content_type, harvest, path)
    elif content_type == "text/plain" and parent_type == "multipart/mixed":
        # Apple Mail splits the text around inline images into several text parts.
        inline_texts.append(_part_text(part, harvest, path))
    elif content_type in _SIGNATURE_PARTS:
        harvest.flag("signed")


def _read_parts(
    msg: EmailMessage, harvest: _Harvest, depth: int, path: str
) -> tuple[str, Message | None]:
    """The message's full body text (before quote stripping), collecting attachments."""
    body = _pick_body(msg, harvest, path)
    text = _part_text(body, harvest, f"{path} body") if body is not None else ""
    inline_texts: list[str] = []
    _walk(msg, body, harvest, depth, path, inline_texts)
    if inline_texts:
        text = "\n".join([text, *inline_texts]) if text.strip() else "\n".join(inline_texts)
    return text, body


def _read_nested(msg: EmailMessage, harvest: _Harvest, depth: int, path: str) -> str:
    defects = harvest.defects
    sender = _addresses(msg, "From", defects)
    header_lines = []
    if sender:
        first = sender[0]
        shown = f"{first.name} <{first.addr}>" if first.name and first.addr else first.addr
        header_lines.append(f"From: {shown or first.name}")
    for label in ("Date", "Subject"):
        value = _text_header(msg, label, defects)
        if value:
            header_lines.append(f"{label}: {value}")
    text, _ = _read_parts(msg, harvest, depth, path)
    own, _ = strip_quoted(text)
    return "\n".join(header_lines) + ("\n\n" + own if own else "")


# --- automated mail ------------------------------------------------------------------------


def automated_reason(msg: EmailMessage, sender: str | None, defects: list[str]) -> str | None:
    """Why this is machine mail (`bounce`, `receipt`, `auto_reply`, `auto_generated`, `list`,
    `bulk`), or None for mail a person wrote.

    `X-Auto-Response-Suppress` alone is deliberately not a sign: it asks *other* systems not
    to auto-answer this message, and Outlook/Exchange put it on ordinary mail people write
    (and on meeting invitations), so honouring it would reject real complaints.
    """

    def header(name: str) -> str:
        return (_text_header(msg, name, defects) or "").strip().lower()

    local_part = (sender or "").split("@", 1)[0].lower()
    if _raw_header(msg, "Return-Path") is not None and header("Return-Path") in ("<>", ""):
        return "bounce"
    content_type = _safe_content_type(msg)
    try:
        report_type = str(msg.get_param("report-type") or "").lower()
    except Exception:
        report_type = ""
    if content_type == "multipart/report" and report_type == "delivery-status":
        return "bounce"
    if local_part in ("mailer-daemon", "postmaster") or _raw_header(msg, "X-Failed-Recipients"):
        return "bounce"
    if content_type == "multipart/report" and report_type == "disposition-notification":
        return "receipt"
    auto_submitted = header("Auto-Submitted").split(";", 1)[0].strip()
    if _raw_header(msg, "Auto-Submitted") is not None and auto_submitted != "no":
        return "auto_reply" if auto_submitted == "auto-replied" else "auto_generated"
    x_autoreply = header("X-Autoreply")
    if _raw_header(msg, "X-Autoreply") is not None and x_autoreply not in ("no", "false", "0"):
        return "auto_reply"
    if _raw_header(msg, "X-Autorespond") is not None:
        return "auto_reply"
    precedence = header("Precedence")
    if precedence == "auto_reply":
        return "auto_reply"
    if _raw_header(msg, "List-Id") is not None or _raw_header(msg, "List-Unsubscribe") is not None:
        return "list"
    if precedence == "list":
        return "list"
    if precedence in ("bulk", "junk"):
        return "bulk"
    return None


# --- the whole message ---------------------------------------------------------------------


def _split_raw(raw: bytes) -> bytes:
    """The body bytes of the raw message (everything after the first blank line)."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = raw.find(separator)
        if index >= 0:
            return raw[index + len(separator) :]
    return b""


def _fallback_id(date: str | None, sender: str | None, raw: bytes) -> str:
    """Date + From + body when there is no Message-ID, so a copy that gained
    transport headers (Received:, an IMAP copy of SMTP mail) still dedupes. Without Date
    and From, or without a body, those would not tell two different messages apart: then
    the whole bytes decide, and only an exact redelivery counts as the same message."""
    body = _split_raw(raw)
    if not (date and sender and body):
        return "sha256-raw:" + hashlib.sha256(raw).hexdigest()
    digest = hashlib.sha256()
    digest.update(date.encode("utf-8", "surrogateescape"))
    digest.update(b"\n")
    digest.update(sender.encode("utf-8", "surrogateescape"))
    digest.update(b"\n")
    digest.update(body)
    return "sha256:" + digest.hexdigest()


def _external_id(message_id: str | None, date: str | None, sender: str | None, raw: bytes) -> str:
    ids = _message_ids(message_id)
    if ids:
        first = ids[0]
        if len(first) > MAX_EXTERNAL_ID:
            return "sha256:" + hashlib.sha256(first.encode("utf-8", "replace")).hexdigest()
        return first
    return _fallback_id(date, sender, raw)


def _iso_date(value: str | None) -> str | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when.isoformat() if when else None


def parse_email(
    raw: bytes,
    *,
    received_at: datetime,
    intake_id: str | None = None,
    connector: str = "email",
) -> RawMessage:
    """One RawMessage from one RFC 5322 message; raises MalformedPayload only for b""."""
    if not raw:
        raise MalformedPayload("empty e-mail message")
    try:
        return _parse(raw, received_at=received_at, intake_id=intake_id, connector=connector)
    except Exception as exc:
        # Last resort, so that a stdlib bug on one hostile message cannot stall the intake:
        # the raw bytes are stored by the gateway and the defect says what happened.
        # The exception's text may quote the message (addresses, words): debug level only.
        log.warning("e-mail parser failed: %s", type(exc).__name__)
        log.debug("e-mail parser failure detail: %s", exc)
        return RawMessage(
            connector=connector,
            channel=CHANNEL,
            external_id=_fallback_id(None, None, raw),
            received_at=received_at,
            extra={
                "intake_id": intake_id,
                "flags": [],
                "parse_defects": [f"parser failed: {type(exc).__name__}: {clean_str(exc)[:200]}"],
                "ticket_in_subject": None,
            },
        )


def _parse(
    raw: bytes, *, received_at: datetime, intake_id: str | None, connector: str
) -> RawMessage:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    harvest = _Harvest()
    defects = harvest.defects

    senders = _addresses(msg, "From", defects)
    if not senders:
        if _raw_header(msg, "From") is None:
            defects.append("From: missing")
        for fallback in ("Sender", "Reply-To"):
            senders = _addresses(msg, fallback, defects)
            if senders:
                defects.append(f"From: sender taken from {fallback}")
                break
    first = senders[0] if senders else _Address(None, None)
    address = first.addr if first.addr and "@" in first.addr else None
    sender = Sender(
        user_id=address.lower() if address else None,
        name=first.name if first.name and first.name != address else None,
        email=address,
    )

    subject = _text_header(msg, "Subject", defects)
    date_raw = _text_header(msg, "Date", defects)
    message_id_raw = _text_header(msg, "Message-ID", defects)
    if message_id_raw is None:
        defects.append("Message-ID: missing")
    from_raw = _raw_header(msg, "From")
    external_id = _external_id(message_id_raw, _raw_header(msg, "Date"), from_raw, raw)

    replies: list[str] = []
    for name in ("In-Reply-To", "References"):
        for message_id in _message_ids(_text_header(msg, name, defects)):
            if message_id not in replies and message_id != external_id:
                replies.append(message_id)

    full_text, _ = _read_parts(msg, harvest, 0, "1")
    own_text, cut = strip_quoted(full_text)
    if harvest.forwarded_texts:
        sections = [own_text] if own_text else []
        sections += [
            f"---------- Forwarded message ----------\n{t}" for t in harvest.forwarded_texts
        ]
        own_text = "\n\n".join(sections)
    if harvest.dropped_attachments:
        defects.append(
            f"{harvest.dropped_attachments} attachments beyond the cap of {MAX_ATTACHMENTS} "
            "not extracted (the raw message keeps them)"
        )
    automated = automated_reason(msg, address, defects)

    ticket = TICKET_RE.search(subject or "")
    reply_to = [a.addr.lower() for a in _addresses(msg, "Reply-To", defects) if a.addr]
    extra: dict[str, Any] = {
        "message_id": message_id_raw,
        "to": [a.addr.lower() for a in _addresses(msg, "To", defects) if a.addr],
        "cc": [a.addr.lower() for a in _addresses(msg, "Cc", defects) if a.addr],
        "date": date_raw,
        "date_iso": _iso_date(date_raw),
        "flags": harvest.flags,
        "parse_defects": list(dict.fromkeys(defects)),
        "ticket_in_subject": ticket.group(0).upper() if ticket else None,
        "body_chars": len(full_text),
        "quote_cut": cut,
        "attachments": harvest.attachment_notes,
        # The receiving MTA's verdict on the sender (connectors/email/auth.py decides).
        "authentication_results": _raw_headers(msg, "Authentication-Results", MAX_HEADERS),
    }
    if reply_to and reply_to != [sender.user_id]:
        extra["reply_to"] = reply_to
    if intake_id is not None:
        extra["intake_id"] = intake_id

    return RawMessage(
        connector=connector,
        channel=CHANNEL,
        external_id=external_id,
        received_at=received_at,
        sender=sender,
        text=own_text,
        title=subject,
        attachments=harvest.attachments,
        in_reply_to=tuple(replies),
        automated=automated,
        extra=extra,
    )
