//! Documents as people have them — a plain-text export, a page saved from the
//! inspectorate's website, a PDF — turned into the text the report parser
//! (`closeout-report`) reads: one paragraph, list item (`- item`) or table
//! row (cells separated by tabs) per line, blocks separated by blank lines.
//! Pure: bytes in, text out; no files, no network, no clock, and no panics on
//! any bytes.
//!
//! ```
//! let html = b"<!doctype html><html><body><nav>Home</nav><main>\
//!              <h1>An inspection of Loamshire Constabulary</h1>\
//!              <ul><li>The force should improve.</li></ul></main></body></html>";
//! let text = closeout_document::to_text(html, "text/html").unwrap();
//! assert_eq!(text, "An inspection of Loamshire Constabulary\n\n- The force should improve.\n");
//! ```
//!
//! What each reader can and cannot do:
//! * `text/plain`: UTF-8 (a byte-order mark is kept for the parser, which
//!   ignores it); UTF-16 with a byte-order mark is converted; anything else
//!   that is not text (NUL bytes, invalid UTF-8) is refused.
//! * `text/html`: parsed with a real HTML5 parser (html5ever, through
//!   `scraper`), so malformed markup reads as a browser would read it.
//!   Headings and paragraphs become lines separated by blank lines, list
//!   items `- item` lines, table rows tab-separated cells. Site chrome —
//!   scripts, styles, navigation, site header and footer, cookie banners,
//!   breadcrumbs, skip links, share buttons, hidden elements — is dropped,
//!   except "Last updated" and "Published on" lines, which are kept wherever
//!   they stand because they date the report.
//! * `application/pdf`: text extraction (`pdf-extract`, over `lopdf`) with
//!   our own layout reading on top: glyphs are grouped into lines by
//!   baseline, lines into paragraphs by the vertical gap between them, wide
//!   horizontal gaps into table cells aligned on the columns of neighbouring
//!   rows, and lone page numbers at the top or bottom of a page are dropped.
//!   It cannot read: scanned pages (images of text: there is no text to
//!   extract, and the document is refused as having no text), multi-column
//!   page layouts (the columns' lines interleave), tables drawn without a
//!   gap between rows or with cells that span columns (rows and cells run
//!   together), text in figures and charts, and fonts without a Unicode
//!   mapping (their glyphs come out as the wrong letters). Encrypted PDFs are
//!   refused, and so are PDFs whose drawings draw themselves (the extractor
//!   would recurse without end). Compressed streams are inflated whole, so
//!   the size limit bounds the file, not what it inflates to.

mod html;
mod pdf;
mod plain;
mod writer;

use std::path::Path;

/// The largest document accepted, in bytes: a PDF of a long report with its
/// charts is a few megabytes; this bounds the work a hostile input can cause.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;

/// The media types this crate reads.
pub const TEXT_PLAIN: &str = "text/plain";
/// A saved web page.
pub const TEXT_HTML: &str = "text/html";
/// A PDF document.
pub const APPLICATION_PDF: &str = "application/pdf";

/// Why a document could not be turned into text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("the document is empty")]
    Empty,
    #[error("the document is {bytes} bytes, more than the limit of {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    #[error(
        "media type “{0}” is not supported (supported: text/plain, text/html, application/pdf)"
    )]
    UnsupportedMediaType(String),
    #[error("the document is not text: {0}")]
    NotText(String),
    #[error("the PDF could not be read: {0}")]
    Pdf(String),
    #[error("the document holds no readable text{0}")]
    NoText(&'static str),
}

/// The document's text, as the report parser reads it.
///
/// `media_type` is `text/plain`, `text/html` or `application/pdf` (parameters
/// such as `; charset=utf-8` and letter case are ignored; `application/xhtml+xml`
/// reads as HTML). An empty media type is sniffed from the bytes (see
/// [`sniff`]).
pub fn to_text(bytes: &[u8], media_type: &str) -> Result<String, DocumentError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::TooLarge {
            bytes: bytes.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    if bytes.is_empty() {
        return Err(DocumentError::Empty);
    }
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let kind = if essence.is_empty() {
        sniff(bytes)
    } else {
        essence.as_str()
    };
    let text = match kind {
        TEXT_PLAIN | "text/markdown" => plain::to_text(bytes)?,
        TEXT_HTML | "application/xhtml+xml" => {
            let markup = plain::decode(bytes);
            html::check_nesting(&markup)?;
            html::to_text(&markup)
        }
        APPLICATION_PDF => pdf::to_text(bytes)?,
        other => return Err(DocumentError::UnsupportedMediaType(other.to_string())),
    };
    if text.trim().is_empty() {
        let hint = match kind {
            APPLICATION_PDF => " (a scanned PDF holds images of text, not text)",
            TEXT_HTML => " (the page has no content outside navigation and scripts)",
            _ => "",
        };
        return Err(DocumentError::NoText(hint));
    }
    Ok(text)
}

/// The media type of a file, from its extension (`.txt`, `.text`, `.md`,
/// `.html`, `.htm`, `.xhtml`, `.pdf`), or `None` for any other file.
pub fn media_type_for_path(path: &Path) -> Option<&'static str> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "txt" | "text" | "md" => Some(TEXT_PLAIN),
        "html" | "htm" | "xhtml" => Some(TEXT_HTML),
        "pdf" => Some(APPLICATION_PDF),
        _ => None,
    }
}

/// The media type of a file from its extension, or else from its first bytes
/// (see [`sniff`]).
pub fn media_type_of(path: &Path, bytes: &[u8]) -> &'static str {
    media_type_for_path(path).unwrap_or_else(|| sniff(bytes))
}

/// The media type the bytes look like: `%PDF-` near the start is a PDF; a
/// start (after a byte-order mark and whitespace) of `<!doctype html`,
/// `<html`, `<head`, `<body` or an HTML comment is HTML; anything else is
/// plain text (which [`to_text`] then checks is text).
pub fn sniff(bytes: &[u8]) -> &'static str {
    let head = &bytes[..bytes.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") {
        return APPLICATION_PDF;
    }
    let start = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start: Vec<u8> = start
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(16)
        .map(u8::to_ascii_lowercase)
        .collect();
    let markers: [&[u8]; 5] = [b"<!doctype html", b"<html", b"<head", b"<body", b"<!--"];
    if markers.iter().any(|m| start.starts_with(m)) {
        TEXT_HTML
    } else {
        TEXT_PLAIN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_from_paths() {
        assert_eq!(media_type_for_path(Path::new("a/b.TXT")), Some(TEXT_PLAIN));
        assert_eq!(media_type_for_path(Path::new("page.htm")), Some(TEXT_HTML));
        assert_eq!(
            media_type_for_path(Path::new("r.pdf")),
            Some(APPLICATION_PDF)
        );
        assert_eq!(media_type_for_path(Path::new("r.docx")), None);
        assert_eq!(media_type_for_path(Path::new("README")), None);
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"%PDF-1.7\n..."), APPLICATION_PDF);
        assert_eq!(sniff(b"\xEF\xBB\xBF  <!DOCTYPE html><html>"), TEXT_HTML);
        assert_eq!(sniff(b"<html lang=en>"), TEXT_HTML);
        assert_eq!(sniff(b"PEEL\n\nAn inspection of"), TEXT_PLAIN);
        assert_eq!(
            media_type_of(Path::new("download"), b"%PDF-1.4"),
            APPLICATION_PDF
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        assert_eq!(to_text(b"", "text/plain"), Err(DocumentError::Empty));
        let err = to_text(b"x", "application/msword").unwrap_err();
        assert!(err.to_string().contains("application/msword"), "{err}");
        let err = to_text(b"abc\0def", "text/plain").unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
        let err = to_text(
            b"<html><body><script>x()</script></body></html>",
            "text/html",
        )
        .unwrap_err();
        assert!(matches!(err, DocumentError::NoText(_)), "{err}");
        let err = to_text(b"%PDF-1.4 nonsense", "application/pdf").unwrap_err();
        assert!(matches!(err, DocumentError::Pdf(_)), "{err}");
    }

    #[test]
    fn media_type_parameters_and_case_are_ignored() {
        assert_eq!(
            to_text(b"Hello", "Text/Plain; charset=UTF-8").as_deref(),
            Ok("Hello")
        );
        // A fragment that does not start like a page is sniffed as text.
        assert_eq!(to_text(b"<p>Hello</p>", "").as_deref(), Ok("<p>Hello</p>"));
        assert_eq!(
            to_text(b"<!doctype html><p>Hello</p>", "").as_deref(),
            Ok("Hello\n")
        );
    }
}
