//! No bytes make the reader panic: random bytes under every media type, and
//! damaged copies of the real fixtures (bytes overwritten, cut short), end
//! in text or in a `DocumentError`.

use std::path::Path;

use proptest::prelude::*;

const MEDIA_TYPES: [&str; 4] = ["text/plain", "text/html", "application/pdf", ""];

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `bytes` with some bytes overwritten and possibly cut short.
fn damaged(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let len = bytes.len();
    if len == 0 {
        return bytes;
    }
    for &(at, value) in edits {
        bytes[at % len] = value;
    }
    if let Some(cut) = cut {
        bytes.truncate(cut % len);
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096), kind in 0usize..4) {
        let _ = closeout_document::to_text(&bytes, MEDIA_TYPES[kind]);
    }

    #[test]
    fn random_markup(text in "(<(p|li|ul|ol|table|tr|td|th|nav|h2|br|sup|div)( hidden| colspan=\"[0-9]{1,3}\")?>|</(p|li|ul|ol|table|tr|td|nav|div)>|[A-Za-z \t\n]{0,12}|Last updated 20/12/2018){0,60}") {
        let _ = closeout_document::to_text(text.as_bytes(), "text/html");
    }

    #[test]
    fn pdf_headers_then_random_bytes(tail in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut bytes = b"%PDF-1.7\n".to_vec();
        bytes.extend(tail);
        let _ = closeout_document::to_text(&bytes, "application/pdf");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn damaged_pdf(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..16), cut in proptest::option::of(any::<usize>())) {
        let bytes = damaged(fixture("peel-2018-19-hertfordshire.pdf"), &edits, cut);
        let _ = closeout_document::to_text(&bytes, "application/pdf");
    }

    #[test]
    fn damaged_html(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..64), cut in proptest::option::of(any::<usize>())) {
        let bytes = damaged(fixture("peel-2018-19-hertfordshire.html"), &edits, cut);
        let _ = closeout_document::to_text(&bytes, "text/html");
    }
}

#[test]
fn too_large_is_refused_before_reading() {
    let bytes = vec![b'a'; closeout_document::MAX_DOCUMENT_BYTES + 1];
    for media_type in MEDIA_TYPES {
        let err = closeout_document::to_text(&bytes, media_type).unwrap_err();
        assert!(err.to_string().contains("more than the limit"), "{err}");
    }
}
