import pytest

from rag.errors import UnsupportedDocument
from rag.documents.parsing import ParseLimits, decode_text, parse_bytes
from rag.fakes.samples import make_docx, make_encrypted_pdf, make_pdf, make_zip_bomb_docx

LIMITS = ParseLimits()


def test_markdown_sections_follow_headings_and_skip_fenced_code() -> None:
    text = "Intro line.\n\n# Guide\n\nBody.\n\n## Install\n\n```\n# not a heading\n```\n\nSetup\n-----\n\nMore.\n"
    doc = parse_bytes(text.encode(), "guide.md", LIMITS)
    assert doc.title == "Guide"
    assert [s.heading for s in doc.sections] == [None, "Guide", "Guide › Install", "Guide › Setup"]
    install = doc.sections[2]
    assert doc.text[install.start : install.end].startswith("## Install")
    assert "# not a heading" in doc.text[install.start : install.end]
    assert doc.text == text  # spans point into the file's own text


def test_html_keeps_visible_text_and_headings_drops_scripts() -> None:
    html = (
        "<html><head><title>Page T</title><style>p{color:red}</style></head><body>"
        "<h1>Top</h1><p>First <b>bold</b> para.</p><script>alert('x')</script>"
        "<h2>Sub</h2><ul><li>one</li><li>two</li></ul></body></html>"
    )
    doc = parse_bytes(html.encode(), "page.html", LIMITS)
    assert doc.title == "Page T"
    assert "alert" not in doc.text and "color" not in doc.text
    assert "First bold para." in doc.text
    assert [s.heading for s in doc.sections] == ["Top", "Top › Sub"]
    assert "one" in doc.text[doc.sections[1].start : doc.sections[1].end]


def test_docx_headings_and_tables() -> None:
    data = make_docx(
        [("Title", "Handbook"), ("Heading 1", "Intro"), ("", "Body one."), ("Heading 2", "Detail"), ("", "Body two.")],
        table=[["Model", "Port"], ["Ollama", "11434"]],
    )
    doc = parse_bytes(data, "h.docx", LIMITS)
    assert doc.title == "Handbook"
    assert [s.heading for s in doc.sections] == ["Handbook", "Handbook › Intro", "Handbook › Intro › Detail"]
    assert "Ollama | 11434" in doc.text


def test_pdf_pages_are_provenance() -> None:
    doc = parse_bytes(make_pdf(["Alpha page", "", "Gamma page"], title="Report"), "r.pdf", LIMITS)
    assert doc.title == "Report" and doc.pages == 3
    assert [(s.page, doc.text[s.start : s.end]) for s in doc.sections] == [(1, "Alpha page"), (3, "Gamma page")]


def test_pdf_with_empty_user_password_opens() -> None:
    assert "open text" in parse_bytes(make_encrypted_pdf(["open text"], ""), "e.pdf", LIMITS).text


@pytest.mark.parametrize(
    ("name", "data", "limits", "reason"),
    [
        ("e.pdf", make_encrypted_pdf(["secret"], "pw"), LIMITS, "encrypted PDF (a password is required)"),
        ("scan.pdf", make_pdf(["", ""]), LIMITS, "no extractable text; OCR is not supported"),
        ("bad.pdf", b"%PDF-1.4\nthis is not really a pdf", LIMITS, "corrupt or unreadable PDF"),
        ("none.pdf", make_pdf([]), LIMITS, "PDF has no pages"),
        ("long.pdf", make_pdf(["a", "b", "c"]), ParseLimits(max_pages=2), "PDF has 3 pages, over the limit of 2"),
        ("bad.docx", b"PK\x03\x04 definitely not a zip", LIMITS, "corrupt DOCX (not a valid ZIP archive)"),
        ("bomb.docx", make_zip_bomb_docx(3), ParseLimits(max_uncompressed_bytes=2 * 2**20), "zip bomb"),
        ("empty.md", b"", LIMITS, "empty file"),
        ("blank.txt", b"  \n\n \t", LIMITS, "only whitespace"),
        ("bin.txt", bytes(range(256)) * 40, LIMITS, "binary data, not text"),
        ("png.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(2000), LIMITS, "binary data"),
        ("big.txt", b"word " * 1000, ParseLimits(max_bytes=1000), "over the limit of"),
        ("x.exe", b"MZ", LIMITS, "unsupported file type '.exe'"),
    ],
)
def test_bad_documents_get_a_specific_reason(name: str, data: bytes, limits: ParseLimits, reason: str) -> None:
    with pytest.raises(UnsupportedDocument) as info:
        parse_bytes(data, name, limits)
    assert reason in info.value.reason


def test_docx_without_document_part_is_corrupt() -> None:
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(UnsupportedDocument, match="no word/document.xml"):
        parse_bytes(out.getvalue(), "x.docx", LIMITS)


FRENCH = "Café crème, naïve résumé, déjà vu à l'hôtel. " * 5


@pytest.mark.parametrize(
    ("encoding", "reported"),
    [
        ("latin-1", {"cp1252"}),  # cp1252 decodes Latin-1 text identically and is what Windows writes
        ("cp1252", {"cp1252"}),
        ("utf-16", {"utf-16-le", "utf-16-be"}),  # Python writes a BOM in the machine's byte order
        ("utf-16-le", {"utf-16-le"}),
        ("utf-16-be", {"utf-16-be"}),
        ("utf-8-sig", {"utf-8-sig"}),
    ],
)
def test_non_utf8_encodings_are_decoded(encoding: str, reported: set[str]) -> None:
    text, used = decode_text(FRENCH.encode(encoding))
    assert text == FRENCH
    assert used in reported


def test_latin1_markdown_file_is_served() -> None:
    doc = parse_bytes(("# Titre\n\n" + FRENCH).encode("latin-1"), "fr.md", LIMITS)
    assert doc.title == "Titre" and "crème" in doc.text


def test_utf8_text_keeps_its_characters() -> None:
    doc = parse_bytes("Ελληνικά και 中文 text".encode(), "u.txt", LIMITS)
    assert doc.text == "Ελληνικά και 中文 text"
    assert doc.encoding == "utf-8"


def test_cyrillic_code_page_is_still_detected() -> None:
    russian = "Привет, как дела? Это проверка кодировки документа. " * 3
    text, used = decode_text(russian.encode("cp1251"))
    assert text == russian and used == "cp1251"
