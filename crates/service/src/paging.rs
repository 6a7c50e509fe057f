//! Page tokens for List calls, shared by every service. A token is the
//! offset of the next page, opaque to clients; a token that does not parse
//! is INVALID_ARGUMENT naming `page_token`.

use crate::error::ApiError;

/// Default page size when the request leaves it at 0.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest page a client may ask for; larger requests get this many.
pub const MAX_PAGE_SIZE: i64 = 500;

/// Longest page token: this service's tokens are `o` and a number.
pub const MAX_PAGE_TOKEN: usize = 24;

/// A validated page request: how many rows, from which offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// Rows in this page.
    pub limit: i64,
    /// Rows skipped before this page.
    pub offset: i64,
}

impl Page {
    /// Validates `page_size` (0: the default) and `page_token` ("": first page).
    pub fn parse(page_size: i32, page_token: &str) -> Result<Page, ApiError> {
        let limit = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => {
                return Err(ApiError::invalid(
                    "page_size",
                    format!("must not be negative (got {n})"),
                ));
            }
            n => i64::from(n).min(MAX_PAGE_SIZE),
        };
        if page_token.len() > MAX_PAGE_TOKEN {
            return Err(ApiError::invalid(
                "page_token",
                format!("must be at most {MAX_PAGE_TOKEN} characters"),
            ));
        }
        let offset = if page_token.is_empty() {
            0
        } else {
            page_token
                .strip_prefix('o')
                .and_then(|n| n.parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::invalid("page_token", "not a token returned by this service")
                })?
        };
        Ok(Page { limit, offset })
    }

    /// Rows to fetch: one more than the page, to learn whether more follow.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Trims the extra row and returns the next token ("" at the end).
    pub fn finish<T>(&self, rows: &mut Vec<T>) -> String {
        if rows.len() as i64 > self.limit {
            rows.truncate(self.limit as usize);
            format!("o{}", self.offset + self.limit)
        } else {
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_through_with_tokens() {
        let page = Page::parse(2, "").unwrap();
        let mut rows = vec![1, 2, 3];
        assert_eq!(page.finish(&mut rows), "o2");
        assert_eq!(rows, vec![1, 2]);
        let next = Page::parse(2, "o2").unwrap();
        assert_eq!(next.offset, 2);
        let mut rows = vec![3];
        assert_eq!(next.finish(&mut rows), "");
    }

    #[test]
    fn refuses_bad_sizes_and_tokens() {
        assert!(Page::parse(-1, "").is_err());
        assert!(Page::parse(10, "garbage").is_err());
        assert!(Page::parse(10, "o-5").is_err());
        assert_eq!(Page::parse(10_000, "").unwrap().limit, MAX_PAGE_SIZE);
        let long = format!("o{}", "1".repeat(MAX_PAGE_TOKEN));
        assert!(Page::parse(10, &long).is_err());
        assert!(Page::parse(10, "o\u{202e}1").is_err());
        assert!(Page::parse(10, &format!("o{}", i64::MAX)).is_ok());
    }
}
