"""parse_email and its helpers: one RFC 5322 message in, one RawMessage out."""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from connectors.base import MalformedPayload
from connectors.email.wire import (
    MAX_ATTACHMENTS,
    decode_bytes,
    decode_encoded_words,
    html_to_text,
    parse_email,
    strip_quoted,
)
from normalizers.canonical import attachments_of

NOW = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


def message(
    *headers: str, body: str = "Jalan rusak.\r\n", content_type: str = "text/plain; charset=utf-8"
) -> bytes:
    lines = list(headers)
    if not any(h.lower().startswith("from:") for h in headers):
        lines.append("From: Budi <budi@example.id>")
    lines += [f"Content-Type: {content_type}", ""]
    return ("\r\n".join(lines) + "\r\n" + body).encode()


def with_attachments(parts: list[tuple[str, str, bytes]], text: str = "Lihat lampiran.") -> bytes:
    out = (
        "From: Budi <budi@example.id>\r\nMessage-ID: <att@example.id>\r\n"
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        f"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()
    for content_type, filename, data in parts:
        out += (
            (
                f"--B\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\n"
                f'Content-Disposition: attachment; filename="{filename}"\r\n\r\n'
            ).encode()
            + base64.encodebytes(data)
            + b"\r\n"
        )
    return out + b"--B--\r\n"


def jpeg_bytes(size: tuple[int, int] = (16, 16)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "green").save(out, "JPEG")
    return out.getvalue()


# --- the contract -------------------------------------------------------------------------


def test_an_empty_message_is_malformed() -> None:
    with pytest.raises(MalformedPayload):
        parse_email(b"", received_at=NOW)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=2048))
def test_arbitrary_bytes_always_give_a_raw_message(raw: bytes) -> None:
    parsed = parse_email(raw, received_at=NOW)
    assert parsed.channel == "email"
    assert isinstance(parsed.text, str)
    assert parsed.external_id


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "From: =?utf-8?q?=FF?= <a@b>",
                "Subject: =?bogus?B?////?=",
                "Content-Type: multipart/mixed; boundary=",
                "Content-Type: multipart/mixed; boundary=x",
                "Content-Type: message/rfc822",
                "Content-Type: text/plain; charset=utf-16",
                "Content-Transfer-Encoding: base64",
                "Content-Transfer-Encoding: quoted-printable",
                "Content-Disposition: attachment; filename*=bogus''%ZZ",
                "In-Reply-To: <<<",
                "Return-Path: <>",
                "--x",
                "--x--",
                "",
                "=?utf-8?b?QQ==?=",
            ]
        ),
        min_size=1,
        max_size=20,
    )
)
def test_header_soup_never_crashes_the_parser(lines: list[str]) -> None:
    parsed = parse_email("\r\n".join(lines).encode() + b"\r\nisi", received_at=NOW)
    assert isinstance(parsed.text, str)


def test_the_connector_name_and_intake_id_are_carried() -> None:
    parsed = parse_email(
        message("Message-ID: <a@b>"), received_at=NOW, intake_id="imap:1:42", connector="email_imap"
    )
    assert parsed.connector == "email_imap"
    assert parsed.extra["intake_id"] == "imap:1:42"


def test_recipients_date_and_reply_to_are_kept_in_extra() -> None:
    parsed = parse_email(
        message(
            "To: Pengaduan <Pengaduan@Jakarta.go.id>, lain@example.id",
            "Cc: rt03@example.id",
            "Reply-To: istri.budi@example.id",
            "Date: Mon, 05 Jan 2026 10:00:00 +0700",
            "Message-ID: <x@example.id>",
        ),
        received_at=NOW,
    )
    assert parsed.extra["to"] == ["pengaduan@jakarta.go.id", "lain@example.id"]
    assert parsed.extra["cc"] == ["rt03@example.id"]
    assert parsed.extra["reply_to"] == ["istri.budi@example.id"]
    assert parsed.extra["date"] == "Mon, 05 Jan 2026 10:00:00 +0700"
    assert parsed.extra["date_iso"] == "2026-01-05T10:00:00+07:00"
    assert parsed.extra["message_id"] == "<x@example.id>"


def test_without_message_id_the_id_is_a_hash_of_date_from_and_body() -> None:
    raw = message("Date: Mon, 05 Jan 2026 10:00:00 +0700", "From: Budi <budi@example.id>")
    body = raw.split(b"\r\n\r\n", 1)[1]
    digest = hashlib.sha256(
        b"Mon, 05 Jan 2026 10:00:00 +0700\nBudi <budi@example.id>\n" + body
    ).hexdigest()
    assert parse_email(raw, received_at=NOW).external_id == f"sha256:{digest}"


def test_threading_ids_come_from_in_reply_to_then_references_without_repeats() -> None:
    parsed = parse_email(
        message(
            "Message-ID: <self@example.id>",
            "In-Reply-To: <b@kanal>",
            "References: <a@kanal>\r\n <b@kanal> <self@example.id> <c@kanal>",
        ),
        received_at=NOW,
    )
    assert parsed.in_reply_to == ("b@kanal", "a@kanal", "c@kanal")


# --- automated mail -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Auto-Submitted: auto-replied", "auto_reply"),
        ("Auto-Submitted: auto-generated", "auto_generated"),
        ("Auto-Submitted: no", None),
        ("X-Autoreply: yes", "auto_reply"),
        ("X-Autorespond: Out of office", "auto_reply"),
        ("Precedence: bulk", "bulk"),
        ("Precedence: junk", "bulk"),
        ("Precedence: list", "list"),
        ("Precedence: auto_reply", "auto_reply"),
        ("List-Id: <warga.lists.example.id>", "list"),
        ("List-Unsubscribe: <mailto:leave@example.id>", "list"),
        ("Return-Path: <>", "bounce"),
        ("Return-Path: <budi@example.id>", None),
        ("From: postmaster@example.id", "bounce"),
        ("From: Mail Delivery <MAILER-DAEMON@example.id>", "bounce"),
        # Outlook puts this on mail people write; alone it says nothing about the sender.
        ("X-Auto-Response-Suppress: All", None),
        ("X-Auto-Response-Suppress: DR, OOF, AutoReply", None),
    ],
)
def test_automated_mail_is_recognised_by_its_headers(header: str, reason: str | None) -> None:
    assert parse_email(message(header), received_at=NOW).automated == reason


def test_a_read_receipt_is_automated() -> None:
    raw = message(
        body="--R\r\nContent-Type: text/plain\r\n\r\nDibaca.\r\n--R--\r\n",
        content_type='multipart/report; report-type=disposition-notification; boundary="R"',
    )
    assert parse_email(raw, received_at=NOW).automated == "receipt"


# --- attachments --------------------------------------------------------------------------


def test_a_five_megabyte_attachment_is_read_whole() -> None:
    big = b"%PDF-1.7\n" + bytes(range(256)) * (5 * 1024 * 1024 // 256)
    parsed = parse_email(with_attachments([("application/pdf", "besar.pdf", big)]), received_at=NOW)
    assert [a.content_type for a in parsed.attachments] == ["application/pdf"]
    assert parsed.attachments[0].data == big
    assert parsed.text == "Lihat lampiran."


def test_attachments_beyond_the_cap_are_left_in_the_raw_message() -> None:
    parts = [("text/csv", f"f{n}.csv", b"a,b\n1,2\n") for n in range(MAX_ATTACHMENTS + 5)]
    parsed = parse_email(with_attachments(parts), received_at=NOW)
    assert len(parsed.attachments) == MAX_ATTACHMENTS
    assert any("beyond the cap" in d for d in parsed.extra["parse_defects"])


def test_winmail_dat_is_flagged_by_its_name_even_when_declared_octet_stream() -> None:
    parsed = parse_email(
        with_attachments([("application/octet-stream", "WINMAIL.DAT", b"\x00\x01garbage")]),
        received_at=NOW,
    )
    assert "winmail_dat" in parsed.extra["flags"]
    assert parsed.attachments[0].filename == "WINMAIL.DAT"


def test_attachments_are_carried_as_declared_and_the_report_types_them_by_their_bytes() -> None:
    parsed = parse_email(
        with_attachments(
            [
                ("application/x-rar-compressed", "a.rar", b"\x00\x01\x02unknown"),
                ("image/jpeg", "fake.jpg", b"\x00\x01\x02not a jpeg"),
                ("application/pdf", "real.jpg", jpeg_bytes()),
            ]
        ),
        received_at=NOW,
    )
    assert [a.content_type for a in parsed.attachments] == [
        "application/x-rar-compressed",
        "image/jpeg",
        "application/pdf",
    ]
    assert parsed.extra["attachments"][2]["declared_type"] == "application/pdf"
    stored, _ = attachments_of([parsed])
    assert [a.content_type for a in stored] == [
        "application/octet-stream",
        "application/octet-stream",
        "image/jpeg",
    ]


def test_winmail_dat_is_flagged_by_its_bytes_whatever_its_name_and_type() -> None:
    tnef = b"\x78\x9f\x3e\x22" + bytes(40)
    parsed = parse_email(
        with_attachments([("application/octet-stream", "lampiran.bin", tnef)]), received_at=NOW
    )
    assert "winmail_dat" in parsed.extra["flags"]


def test_attachment_names_lose_their_directories() -> None:
    parsed = parse_email(
        with_attachments([("text/plain", "../../etc/evil.txt", b"hi")]), received_at=NOW
    )
    assert parsed.attachments[0].filename == "evil.txt"


def test_nested_messages_are_followed_to_a_limited_depth() -> None:
    inner = b"From: Ani <ani@example.id>\r\nSubject: dasar\r\n\r\nPesan paling dalam.\r\n"
    for level in range(6):
        inner = (
            (
                f"From: L{level} <l{level}@example.id>\r\nSubject: lapis {level}\r\n"
                f'Content-Type: multipart/mixed; boundary="N{level}"\r\n\r\n'
                f"--N{level}\r\nContent-Type: text/plain\r\n\r\nlapis {level}\r\n"
                f"--N{level}\r\nContent-Type: message/rfc822\r\n\r\n"
            ).encode()
            + inner
            + f"\r\n--N{level}--\r\n".encode()
        )
    parsed = parse_email(inner, received_at=NOW)
    assert "lapis 5" in parsed.text
    assert "Forwarded message" in parsed.text
    assert any("nested deeper" in d for d in parsed.extra["parse_defects"])
    assert [a.content_type for a in parsed.attachments] == ["message/rfc822"]


def test_html_and_plain_alternatives_are_not_attachments() -> None:
    raw = message(
        body=(
            "--A\r\nContent-Type: text/plain\r\n\r\n\r\n"
            "--A\r\nContent-Type: text/html\r\n\r\n<p>Hanya di HTML.</p>\r\n--A--\r\n"
        ),
        content_type='multipart/alternative; boundary="A"',
    )
    parsed = parse_email(raw, received_at=NOW)
    assert parsed.text == "Hanya di HTML."
    assert parsed.attachments == []


# --- text: charsets, HTML, quotes -----------------------------------------------------------


def test_declared_charsets_that_lie_are_recovered() -> None:
    defects: list[str] = []
    assert decode_bytes("naïve".encode(), "us-ascii", defects, "t") == "naïve"
    assert decode_bytes("“quoted”".encode("cp1252"), "utf-8", defects, "t") == "“quoted”"
    assert decode_bytes("Rp 5.000 — ok".encode(), "windows-1252", defects, "t") == "Rp 5.000 — ok"
    assert decode_bytes(b"caf\xe9", "x-unknown", defects, "t") == "café"
    assert decode_bytes(b"abc", "base64", defects, "t") == "abc"  # not a character set
    assert decode_bytes("日本".encode("shift_jis"), "shift_jis", defects, "t") == "日本"
    assert len(defects) == 5


def test_encoded_words_with_bogus_charsets_still_decode() -> None:
    assert decode_encoded_words("=?x-bogus?q?caf=C3=A9?= =?utf-8?b?IGJ1a2E=?=") == "café buka"
    assert decode_encoded_words("=?utf-8?q?tanpa_spasi?=!") == "tanpa spasi!"


def test_html_becomes_clean_text() -> None:
    html = (
        "<html><head><style>x{}</style><title>t</title></head><body>"
        "<h1>Judul</h1><p>Satu&nbsp;&amp; dua</p><table><tr><td>a</td><td>b</td></tr></table>"
        "<pre>  baris\n  terjaga</pre><blockquote>kutipan<br>dua</blockquote>"
        "<script>var x = '<p>';</script><p>akhir</p></body></html>"
    )
    text = html_to_text(html)
    assert text.splitlines()[0] == "Judul"
    assert "Satu & dua" in text
    assert "a b" in text
    assert "> kutipan\n> dua" in text
    assert "var x" not in text and "x{}" not in text and "\nt\n" not in text
    assert text.endswith("akhir")
    assert "\n\n\n" not in text


LONG_FOOTER_LOOKALIKE = (
    "Dikirim dari kantor kelurahan kemarin,\nnamun belum ada\ntindakan apa pun\nsampai\nhari ini."
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Baru.\n\nOn Mon, 5 Jan 2026 at 10:00, Kanal <k@x> wrote:\n> lama", "Baru."),
        ("Baru.\n\nOn Mon, 5 Jan 2026 at 10:00, Kanal <\nk@x> wrote:\n> lama", "Baru."),
        ("Baru.\n\nPada Sen, 5 Jan 2026 pukul 10.00 Kanal <k@x> menulis:\n> lama", "Baru."),
        ("Baru.\n> lama\n> lama", "Baru."),
        ("Baru.\n-----Original Message-----\nFrom: x", "Baru."),
        ("Baru.\n-----Pesan Asli-----\nDari: x", "Baru."),
        ("Baru.\nFrom: Kanal\nSent: Senin\nTo: Budi\n\nlama", "Baru."),
        ("Baru.\nDari: Kanal\nDikirim: Senin\n\nlama", "Baru."),
        ("Baru.\n\nSent from my iPhone", "Baru."),
        ("Baru.\n\nKirim dari Samsung Galaxy", "Baru."),
        ("Baru.\n\n-- \nBudi\nRT 03", "Baru."),
        # Interleaved answers keep the citizen's lines.
        (
            "On Mon, Kanal <k@x> wrote:\n> Di mana?\nDi Jl. Kenari.\n> Kapan?\nTadi pagi.",
            "Di Jl. Kenari.\nTadi pagi.",
        ),
        # A forward with nothing written above it: the forwarded text is the complaint.
        (
            "---------- Forwarded message ---------\nFrom: Ani\nDate: x\n\nGot mampet.",
            "Got mampet.",
        ),
        # Words that merely look like markers stay.
        (
            "Pada hari Senin jalan ditutup.\nDari: warga RT 03",
            "Pada hari Senin jalan ditutup.\nDari: warga RT 03",
        ),
        (LONG_FOOTER_LOOKALIKE, LONG_FOOTER_LOOKALIKE),
    ],
)
def test_quotes_signatures_and_footers_are_cut(text: str, expected: str) -> None:
    assert strip_quoted(text)[0] == expected


def test_the_full_body_length_is_kept_when_quotes_are_cut() -> None:
    raw = message(body="Baru.\r\n\r\nOn Mon, Kanal <k@x> wrote:\r\n> " + "lama " * 100 + "\r\n")
    parsed = parse_email(raw, received_at=NOW)
    assert parsed.text == "Baru."
    assert parsed.extra["body_chars"] > 500
    assert parsed.extra["quote_cut"] == "reply"
