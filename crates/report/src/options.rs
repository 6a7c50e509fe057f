//! What the person importing a report knows that the document does not say:
//! the publication date, the inspection period, the inspected organisation
//! (`--published`, `--period`, `--organisation`). A supplied value fills a gap
//! with a warning saying it was supplied; where the document states a
//! different value, the document wins and a warning says so. Never refuse
//! what a person can read.

use closeout_proto::{OrganisationKind, ParsedInspection, ParsedOrganisation};

use crate::error::ParseError;

/// Values supplied alongside the text, each used only where the document is
/// silent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Publication date, "YYYY-MM-DD" or "YYYY-MM".
    pub published: Option<String>,
    /// Inspection period, e.g. "2018/19" or "2024".
    pub period: Option<String>,
    /// The inspected organisation's slug, e.g. "avon".
    pub organisation: Option<String>,
}

/// Checks the supplied values before any parsing.
pub(crate) fn check(options: &ParseOptions) -> Result<(), ParseError> {
    if let Some(published) = non_empty(&options.published)
        && !is_date(published)
    {
        return Err(ParseError::BadOption {
            option: "published",
            reason: format!("“{published}” is not a date written YYYY-MM-DD or YYYY-MM"),
        });
    }
    if let Some(period) = non_empty(&options.period)
        && !is_period(period)
    {
        return Err(ParseError::BadOption {
            option: "period",
            reason: format!("“{period}” is not a period written like 2018/19 or 2024"),
        });
    }
    if let Some(organisation) = non_empty(&options.organisation)
        && !is_slug(organisation)
    {
        return Err(ParseError::BadOption {
            option: "organisation",
            reason: format!(
                "“{organisation}” is not an organisation id (lower-case words joined by hyphens, e.g. avon-and-somerset)"
            ),
        });
    }
    Ok(())
}

/// Fills what the document did not state from `options`, with warnings.
pub(crate) fn apply(
    organisation: &mut Option<ParsedOrganisation>,
    inspection: &mut ParsedInspection,
    warnings: &mut Vec<String>,
    options: &ParseOptions,
) {
    if let Some(published) = non_empty(&options.published) {
        if inspection.published.is_empty() {
            inspection.published = published.to_string();
            warnings.push(format!(
                "publication date {published} supplied (--published); the document does not state it"
            ));
        } else if inspection.published != published
            && !inspection.published.starts_with(published)
            && !published.starts_with(inspection.published.as_str())
        {
            warnings.push(format!(
                "the document states publication date {}; the supplied {published} (--published) was not used",
                inspection.published
            ));
        }
    }
    if let Some(period) = non_empty(&options.period) {
        if inspection.period.is_empty() {
            inspection.period = period.to_string();
            warnings.push(format!(
                "inspection period {period} supplied (--period); the document does not state it"
            ));
        } else if inspection.period != period {
            warnings.push(format!(
                "the document states inspection period {}; the supplied {period} (--period) was not used",
                inspection.period
            ));
        }
    }
    if let Some(slug) = non_empty(&options.organisation) {
        match organisation {
            Some(found) if !found.id.is_empty() => {
                if found.id != slug {
                    warnings.push(format!(
                        "the document names {} ({}); the supplied organisation {slug} (--organisation) was not used",
                        found.name, found.id
                    ));
                }
            }
            _ => {
                let kind = match inspection.programme.as_str() {
                    "PEEL" => OrganisationKind::PoliceForce,
                    "FRS" => OrganisationKind::FireAndRescueService,
                    _ => OrganisationKind::Unspecified,
                };
                *organisation = Some(ParsedOrganisation {
                    id: slug.to_string(),
                    name: slug.to_string(),
                    kind: kind as i32,
                });
                warnings.push(format!(
                    "organisation {slug} supplied (--organisation); the document does not name the inspected organisation"
                ));
            }
        }
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// "YYYY-MM" or "YYYY-MM-DD" with a real month and day.
fn is_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let number = |s: &str, len: usize| {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    match parts.as_slice() {
        [y, m] => number(y, 4).is_some() && number(m, 2).is_some_and(|m| (1..=12).contains(&m)),
        [y, m, d] => {
            number(y, 4).is_some()
                && number(m, 2).is_some_and(|m| (1..=12).contains(&m))
                && number(d, 2).is_some_and(|d| (1..=31).contains(&d))
        }
        _ => false,
    }
}

/// "2018/19", "2021–22" style or a single year.
fn is_period(text: &str) -> bool {
    let digits = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
    match text.split_once('/') {
        Some((a, b)) => digits(a, 4) && digits(b, 2),
        None => digits(text, 4),
    }
}

fn is_slug(text: &str) -> bool {
    text.split('-').all(|w| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_periods_and_slugs() {
        assert!(is_date("2018-12-20"));
        assert!(is_date("2018-12"));
        assert!(!is_date("2018-13"));
        assert!(!is_date("20/12/2018"));
        assert!(is_period("2018/19"));
        assert!(is_period("2024"));
        assert!(!is_period("18/19"));
        assert!(is_slug("avon-and-somerset"));
        assert!(!is_slug("Avon"));
        assert!(!is_slug("avon--somerset"));
    }

    #[test]
    fn bad_options_are_named() {
        let options = ParseOptions {
            published: Some("20/12/2018".into()),
            ..Default::default()
        };
        let err = check(&options).unwrap_err();
        assert!(err.to_string().contains("published"), "{err}");
    }
}
