"""Hostile input files, built in memory by the tests (no binary fixtures in the repository).

Each generator returns bytes. The controls (`docx()` and `pdf()` around ordinary text) are valid
documents, so every hostile variant is the same container with one thing made hostile: a file the
parser opens, not one it refuses as garbage at once.

Sizes: inflating bombs use a repeated deflate block (a full flush resets the compressor, so one
compressed MiB can be repeated N times and the checksum patched), which builds 1 GiB in a fraction
of a second instead of compressing it.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
MIB = 1 << 20

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Default Extension="png" ContentType="image/png"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
PACKAGE_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="word/document.xml" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/></Relationships>'
)


# --- DOCX ------------------------------------------------------------------------------------

def document_xml(body: str, doctype: str = "") -> str:
    """word/document.xml whose body is `body` (already WordprocessingML); `doctype` goes before the root."""
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{doctype}'
            f'<w:document xmlns:w="{W}" xmlns:r="{R}"><w:body>{body}</w:body></w:document>')


def paragraph(text: str) -> str:
    return f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"


def docx(document: str, parts: dict[str, bytes | str] | None = None, content_types: str = CONTENT_TYPES) -> bytes:
    """A minimal DOCX package (what python-docx needs) plus any extra `parts`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("_rels/.rels", PACKAGE_RELS)
        archive.writestr("word/document.xml", document)
        for name, data in (parts or {}).items():
            archive.writestr(zipfile.ZipInfo(name), data)  # ZipInfo: the name is stored exactly as given
    return buffer.getvalue()


def billion_laughs(levels: int = 10, fanout: int = 10) -> str:
    """A DTD of nested entities: `&l9;` would expand to fanout**levels copies (10**10 by default)."""
    entities = ['<!ENTITY l0 "lol">'] + [
        f'<!ENTITY l{i} "{f"&l{i - 1};" * fanout}">' for i in range(1, levels)
    ]
    return f"<!DOCTYPE w:document [{''.join(entities)}]>"


def docx_billion_laughs() -> bytes:
    return docx(document_xml(paragraph("Entities follow.") + paragraph("&l9;"), billion_laughs()))


def docx_billion_laughs_in_content_types() -> bytes:
    """The expansion in another part: [Content_Types].xml is parsed before the document."""
    types = CONTENT_TYPES.replace('standalone="yes"?>', f'standalone="yes"?>{billion_laughs()}', 1)
    types = types.replace('ContentType="application/xml"/>', 'ContentType="application/xml&l9;"/>', 1)
    return docx(document_xml(paragraph("Content types with entities.")), content_types=types)


def docx_quadratic_blowup(entity_kib: int = 64, references: int = 20_000) -> bytes:
    """One large entity referenced many times: no nesting, 64 KiB x 20,000 = 1.25 GiB if expanded."""
    doctype = f'<!DOCTYPE w:document [<!ENTITY big "{"A" * (entity_kib * 1024)}">]>'
    return docx(document_xml(paragraph("&big;" * references), doctype))


def docx_external_entity(target: str = "file:///etc/passwd") -> bytes:
    """XXE: an external entity naming a local file; its content must never reach the index."""
    doctype = f'<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "{target}">]>'
    return docx(document_xml(paragraph("Before the entity.") + paragraph("&xxe;"), doctype))


def _padding_part(inflated_bytes: int) -> bytes:
    return b" " * inflated_bytes  # compresses about 1000:1


def docx_zip_bomb(inflated_mib: int = 100) -> bytes:
    """An honest zip bomb: the declared size of one part is `inflated_mib` MiB of spaces (~1000:1)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", PACKAGE_RELS)
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            part.write(document_xml(paragraph("Bomb ahead."))[:-len("</w:body></w:document>")].encode())
            for _ in range(inflated_mib):
                part.write(_padding_part(MIB))
            part.write(b"</w:body></w:document>")
    return buffer.getvalue()


def docx_lying_sizes(real_mib: int = 64, declared_bytes: int = 2048) -> bytes:
    """A zip whose headers declare word/document.xml as `declared_bytes` while its data inflates to
    `real_mib` MiB: a size check that trusted the headers alone would wave it through."""
    body = document_xml(paragraph("Lying sizes.") + "<!--" + " " * (real_mib * MIB) + "-->").encode()
    data = bytearray(docx(body.decode()))
    name = b"word/document.xml"
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory
        start = 0
        while (at := data.find(signature, start)) >= 0:
            name_len = struct.unpack_from("<H", data, at + (26 if signature == b"PK\x03\x04" else 28))[0]
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if bytes(data[name_at:name_at + name_len]) == name:
                struct.pack_into("<I", data, at + size_at, declared_bytes)
            start = at + 4
    return bytes(data)


def docx_many_parts(count: int = 12_000) -> bytes:
    """More parts than any document needs (each costs the parser an entry and a header read)."""
    return docx(document_xml(paragraph("Many parts.")), {f"customXml/item{i}.xml": "<a/>" for i in range(count)})


def docx_traversal_members() -> bytes:
    """Archive members named to escape an extraction directory: relative, absolute, Windows-style."""
    return docx(document_xml(paragraph("Members with escaping names.")), {
        "../../evil-relative.txt": "escaped", "/tmp/evil-absolute.txt": "escaped",
        "..\\..\\evil-windows.txt": "escaped", "word/../../evil-nested.txt": "escaped",
    })


def png(width: int, height: int) -> bytes:
    """A 1-bit grayscale PNG of zeros: width*height pixels (419 M for 20480x20480) in a few KiB; height is a
    multiple of 64."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)  # filter byte + packed bits
    stream = _repeated_zlib(row * 64, height // 64, raw=False)

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")


def docx_image_bomb(side: int = 20_480) -> bytes:
    """A document whose picture is a decompression-bomb PNG (side x side pixels)."""
    drawing = (
        '<w:p><w:r><w:drawing><wp:inline xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/'
        'wordprocessingDrawing"><wp:extent cx="914400" cy="914400"/><wp:docPr id="1" name="bomb"/>'
        '<a:graphic xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><a:graphicData '
        'uri="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:pic xmlns:pic="http://schemas.'
        'openxmlformats.org/drawingml/2006/picture"><pic:nvPicPr><pic:cNvPr id="1" name="bomb.png"/><pic:cNvPicPr/>'
        '</pic:nvPicPr><pic:blipFill><a:blip r:embed="rIdImg"/></pic:blipFill><pic:spPr/></pic:pic></a:graphicData>'
        '</a:graphic></wp:inline></w:drawing></w:r></w:p>'
    )
    rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rIdImg" Target="media/bomb.png" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image"/></Relationships>')
    return docx(document_xml(paragraph("A picture follows.") + drawing),
                {"word/_rels/document.xml.rels": rels, "word/media/bomb.png": png(side, side)})


# --- PDF -------------------------------------------------------------------------------------

def pdf(objects: list[bytes], *, trailer: bytes = b"", prev_self: bool = False) -> bytes:
    """A PDF of numbered `objects` (object 1 is the catalog) with a correct xref table.

    `prev_self` makes the trailer's /Prev point at its own xref section: a reader that follows /Prev
    without remembering where it has been loops forever.
    """
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    prev = b" /Prev %d" % xref_at if prev_self else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s %s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, prev, trailer,
                                                                                     xref_at)
    return bytes(out)


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def text_content(lines: list[str]) -> bytes:
    shown = b" ".join(b"(%s) Tj 0 -16 Td" % line.encode("latin-1") for line in lines)
    return b"BT /F1 12 Tf 72 600 Td " + shown + b" ET"


def text_pdf(lines: list[str], page_extra: bytes = b"", pages_kids: bytes = b"[3 0 R]", count: int = 1,
             **kwargs) -> bytes:
    """A one-page PDF with extractable text; `page_extra` goes into the page dictionary."""
    return pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids %s /Count %d >>" % (pages_kids, count),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R %s >>" % page_extra,
        FONT,
        stream(text_content(lines)),
    ], **kwargs)


def pdf_deep_nesting(depth: int = 50_000) -> bytes:
    """Arrays and dictionaries nested `depth` deep inside the page: recursive-descent parsers overflow."""
    arrays = b"[" * depth + b"]" * depth
    dicts = b"<< /A " * depth + b"null" + b" >>" * depth
    return text_pdf(["Deeply nested objects follow."], page_extra=b"/Deep %s /Deeper %s" % (arrays, dicts))


def pdf_cyclic_prev() -> bytes:
    return text_pdf(["A trailer whose /Prev is itself."], prev_self=True)


def pdf_page_tree_cycle() -> bytes:
    """The page tree lists itself among its own kids (and claims a million pages)."""
    return text_pdf(["A page tree that contains itself."], pages_kids=b"[2 0 R 3 0 R 2 0 R]", count=1_000_000)


def pdf_stream_bomb(inflated_mib: int = 1536) -> bytes:
    """A content stream that inflates to `inflated_mib` MiB (spaces and a little text): ~1000:1."""
    data = _repeated_zlib(b" " * MIB, inflated_mib, raw=False, prefix=b"BT /F1 12 Tf 72 600 Td (Bomb) Tj ET ")
    return pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        FONT,
        stream(data, b"/Filter /FlateDecode"),
    ])


def pdf_huge_image(side: int = 100_000) -> bytes:
    """A page that draws an image XObject declared side x side RGB (30 GB if decoded) from a tiny stream."""
    pixels = zlib.compress(b"\x00" * 65536, 9)
    return pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> "
        b"/XObject << /Im1 6 0 R >> >> /Contents 5 0 R >>",
        FONT,
        stream(text_content(["A very large picture follows."]) + b" q 500 0 0 500 50 50 cm /Im1 Do Q"),
        stream(pixels, b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                       b"/BitsPerComponent 8 /Filter /FlateDecode" % (side, side)),
    ])


# --- helpers -----------------------------------------------------------------------------------

def _repeated_zlib(block: bytes, times: int, raw: bool, prefix: bytes = b"") -> bytes:
    """zlib (or raw deflate) of prefix + block*times, built from one compressed copy of `block`.

    After Z_FULL_FLUSH the compressor forgets its window, so compressing the same block again yields
    the same bytes; the stream ends with an empty final block and the true Adler-32 of the whole data.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15 if raw else 15)
    first = compressor.compress(prefix + block) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush(zlib.Z_FINISH)
    if raw:
        return first + again * (times - 1) + end
    checksum = zlib.adler32(prefix)
    for _ in range(times):
        checksum = zlib.adler32(block, checksum)
    return first + again * (times - 1) + end[:-4] + struct.pack(">I", checksum)


def pdf_operator_flood(operators: int = 20_000) -> bytes:
    """One page whose content stream shows `operators` tiny strings at scattered positions: ~100 KB to send,
    and unstructured's layout of it is quadratic (1,000 strings: 13 s; 5,000: over 5 minutes on 2 cores),
    so a parser that effectively never finishes."""
    ops = b"".join(b"1 0 0 1 %d %d Tm (x%d) Tj " % (i * 37 % 500, i * 53 % 780, i % 10) for i in range(operators))
    return pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        FONT,
        stream(zlib.compress(b"BT /F1 6 Tf " + ops + b"ET", 6), b"/Filter /FlateDecode"),
    ])
