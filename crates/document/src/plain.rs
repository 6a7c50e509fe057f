//! Plain text: UTF-8 (with or without a byte-order mark) or UTF-16 with a
//! byte-order mark. Text that is not text — NUL bytes, invalid UTF-8, mostly
//! control characters — is refused with the reason, because parsing it would
//! only produce nonsense.

use std::borrow::Cow;

use crate::DocumentError;

/// The text of a `text/plain` document, byte-order mark removed (the first
/// line stays the first line, so line numbers are unchanged).
pub(crate) fn to_text(bytes: &[u8]) -> Result<String, DocumentError> {
    let text = match utf16(bytes) {
        Some(text) => text,
        None => {
            if let Some(at) = bytes.iter().position(|&b| b == 0) {
                return Err(DocumentError::NotText(format!(
                    "it contains NUL bytes (the first at byte {at}); is it a word-processor or binary file?"
                )));
            }
            let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            match std::str::from_utf8(body) {
                Ok(text) => text.to_string(),
                Err(e) => {
                    return Err(DocumentError::NotText(format!(
                        "it is not UTF-8 (invalid byte at offset {}); save it as UTF-8 text",
                        e.valid_up_to() + (bytes.len() - body.len())
                    )));
                }
            }
        }
    };
    check_mostly_text(&text)?;
    Ok(text)
}

/// The characters of a page of markup: UTF-16 by its byte-order mark, else
/// UTF-8, with invalid bytes replaced (a page saved in an older encoding
/// loses only its few non-ASCII letters).
pub(crate) fn decode(bytes: &[u8]) -> String {
    if let Some(text) = utf16(bytes) {
        return text;
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match String::from_utf8_lossy(body) {
        Cow::Borrowed(text) => text.to_string(),
        Cow::Owned(text) => text,
    }
}

/// UTF-16 text by its byte-order mark, decoded (unpaired surrogates
/// replaced), or `None` without one.
fn utf16(bytes: &[u8]) -> Option<String> {
    let (body, little) = if let Some(body) = bytes.strip_prefix(b"\xFF\xFE") {
        (body, true)
    } else if let Some(body) = bytes.strip_prefix(b"\xFE\xFF") {
        (body, false)
    } else {
        return None;
    };
    let units = body.chunks_exact(2).map(|pair| {
        let pair = [pair[0], pair[1]];
        if little {
            u16::from_le_bytes(pair)
        } else {
            u16::from_be_bytes(pair)
        }
    });
    Some(
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
    )
}

/// Refuses text in which more than one character in ten is a control
/// character (other than tab, line breaks and form feed) or a NUL.
fn check_mostly_text(text: &str) -> Result<(), DocumentError> {
    let (mut total, mut odd) = (0usize, 0usize);
    for c in text.chars() {
        total += 1;
        if c == '\0' || (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}')) {
            odd += 1;
        }
    }
    if odd.saturating_mul(10) > total {
        return Err(DocumentError::NotText(format!(
            "{odd} of its {total} characters are control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_with_and_without_bom() {
        assert_eq!(to_text(b"\xEF\xBB\xBFPEEL\n").unwrap(), "PEEL\n");
        assert_eq!(to_text("Zoë – £162".as_bytes()).unwrap(), "Zoë – £162");
    }

    #[test]
    fn utf16_with_bom() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in "Zoë\n".encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(to_text(&bytes).unwrap(), "Zoë\n");
    }

    #[test]
    fn binary_is_refused_with_the_reason() {
        let err = to_text(b"PK\x03\x04\0\0word/document.xml").unwrap_err();
        assert!(err.to_string().contains("NUL bytes"), "{err}");
        let err = to_text(b"caf\xE9 au lait").unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        assert!(err.to_string().contains("offset 3"), "{err}");
        let err = to_text(b"\x01\x02\x03\x04\x05\x06\x07\x08ab").unwrap_err();
        assert!(err.to_string().contains("control characters"), "{err}");
    }

    #[test]
    fn markup_decoding_is_lossy() {
        assert_eq!(decode(b"caf\xE9"), "caf\u{fffd}");
        assert_eq!(decode(b"\xEF\xBB\xBF<p>"), "<p>");
    }
}
