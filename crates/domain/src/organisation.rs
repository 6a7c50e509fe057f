//! Inspected bodies: their kind and their slug id ("hertfordshire"). Slugs are
//! derived from the names reports use, so the same force imported from two
//! reports lands on the same organisation.

use std::fmt;
use std::str::FromStr;

use crate::DomainError;

/// The kind of body an inspectorate inspects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrganisationKind {
    PoliceForce,
    FireAndRescueService,
}

impl OrganisationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PoliceForce => "police-force",
            Self::FireAndRescueService => "fire-and-rescue-service",
        }
    }
}

impl fmt::Display for OrganisationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest allowed slug; long enough for any real body's name.
pub const MAX_SLUG_LEN: usize = 64;

/// An organisation's id: a slug of lowercase ASCII letters, digits and hyphens,
/// 1 to 64 characters (it appears in event subjects, so no dots or spaces).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrganisationId(String);

impl OrganisationId {
    /// Validates a slug exactly as given (no trimming or lowercasing, so an id
    /// never silently means something else).
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let invalid = |reason| DomainError::InvalidOrganisationId {
            value: value.to_string(),
            reason,
        };
        if value.is_empty() {
            return Err(invalid("empty"));
        }
        if value.len() > MAX_SLUG_LEN {
            return Err(invalid("longer than 64 characters"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "only lowercase ASCII letters, digits and hyphens are allowed",
            ));
        }
        if value.starts_with('-') || value.ends_with('-') || value.contains("--") {
            return Err(invalid(
                "hyphens only between letters or digits (no leading, trailing or doubled hyphen)",
            ));
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrganisationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for OrganisationId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for OrganisationId {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<OrganisationId> for String {
    fn from(id: OrganisationId) -> Self {
        id.0
    }
}

impl AsRef<str> for OrganisationId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Suffixes that name the kind of body rather than the body; longest first so
/// "Police Service" wins over "Police".
const SUFFIXES: &[&str] = &[
    "fire and rescue authority",
    "fire and rescue service",
    "fire & rescue authority",
    "fire & rescue service",
    "fire brigade",
    "police service",
    "police force",
    "constabulary",
    "police",
];

/// Derives the slug reports' names map to: "Avon and Somerset Constabulary" ->
/// "avon-and-somerset", "London Fire Brigade" -> "london". Never fails: a name
/// that is only a suffix ("Police") keeps it, and a name with no letters or
/// digits at all becomes "unnamed".
pub fn slug_from_name(name: &str) -> OrganisationId {
    // Look-alikes collide: NFKC, with zero-width and bidi controls removed.
    let mut base = crate::text::normalise_name(name).trim().to_lowercase();
    base = base.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(rest) = base.strip_prefix("the ") {
        base = rest.to_string();
    }
    for suffix in SUFFIXES {
        let Some(rest) = base.strip_suffix(suffix) else {
            continue;
        };
        // Only a whole-word suffix: "Policeville" is not "ville" + "Police".
        if rest.is_empty() || rest.ends_with(' ') {
            let rest = rest.trim_end();
            if !slugify(rest).is_empty() {
                base = rest.to_string();
            }
            break;
        }
    }
    let slug = slugify(&base);
    let slug = if slug.is_empty() {
        "unnamed".to_string()
    } else {
        slug
    };
    // slugify only emits [a-z0-9-] and at most MAX_SLUG_LEN bytes.
    OrganisationId(slug)
}

/// Lowercase ASCII, "&" as "and", every other run of non-alphanumerics as one
/// hyphen, truncated to 64 characters without a trailing hyphen.
fn slugify(text: &str) -> String {
    let mut slug = String::new();
    let mut pending_hyphen = false;
    for ch in text.replace('&', " and ").chars() {
        if ch.is_ascii_alphanumeric() {
            if pending_hyphen && !slug.is_empty() {
                slug.push('-');
            }
            pending_hyphen = false;
            slug.push(ch.to_ascii_lowercase());
        } else {
            pending_hyphen = true;
        }
    }
    slug.truncate(MAX_SLUG_LEN);
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

/// The kind of body a name denotes, when the name says so.
pub fn kind_from_name(name: &str) -> Option<OrganisationKind> {
    let lower = name.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if words.contains(&"fire") {
        Some(OrganisationKind::FireAndRescueService)
    } else if words.contains(&"police") || words.contains(&"constabulary") {
        Some(OrganisationKind::PoliceForce)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_of_real_names() {
        for (name, slug) in [
            ("Hertfordshire Constabulary", "hertfordshire"),
            ("Avon and Somerset Constabulary", "avon-and-somerset"),
            ("Essex Police", "essex"),
            ("Metropolitan Police Service", "metropolitan"),
            ("City of London Police", "city-of-london"),
            ("Hampshire Fire and Rescue Service", "hampshire"),
            ("Hampshire Fire & Rescue Service", "hampshire"),
            ("London Fire Brigade", "london"),
            ("Devon & Cornwall Police", "devon-and-cornwall"),
            (
                "Hampshire and Isle of Wight Fire and Rescue Service",
                "hampshire-and-isle-of-wight",
            ),
            ("Dyfed-Powys Police", "dyfed-powys"),
            ("Greater Manchester  Police", "greater-manchester"),
            (
                "Royal Berkshire Fire and Rescue Authority",
                "royal-berkshire",
            ),
            (
                "Police Service of Northern Ireland",
                "police-service-of-northern-ireland",
            ),
            ("Police", "police"),
            ("  ", "unnamed"),
            ("Policeville Town", "policeville-town"),
        ] {
            assert_eq!(slug_from_name(name).as_str(), slug, "{name}");
            assert!(OrganisationId::parse(slug).is_ok());
        }
    }

    #[test]
    fn long_names_are_truncated_to_a_valid_slug() {
        let name = "a ".repeat(100);
        let slug = slug_from_name(&name);
        assert!(slug.as_str().len() <= MAX_SLUG_LEN);
        assert!(OrganisationId::parse(slug.as_str()).is_ok());
    }

    #[test]
    fn kinds_from_names() {
        assert_eq!(
            kind_from_name("Hampshire Fire and Rescue Service"),
            Some(OrganisationKind::FireAndRescueService)
        );
        assert_eq!(
            kind_from_name("London Fire Brigade"),
            Some(OrganisationKind::FireAndRescueService)
        );
        assert_eq!(
            kind_from_name("Hertfordshire Constabulary"),
            Some(OrganisationKind::PoliceForce)
        );
        assert_eq!(
            kind_from_name("Essex Police"),
            Some(OrganisationKind::PoliceForce)
        );
        assert_eq!(kind_from_name("Home Office"), None);
    }

    #[test]
    fn look_alike_names_collide() {
        let plain = slug_from_name("Hertfordshire Constabulary");
        assert_eq!(plain.as_str(), "hertfordshire");
        for name in [
            "Hertford\u{202E}shire Constabulary",
            "Hertford\u{200B}shire Constabulary",
            "\u{FEFF}Ｈｅｒｔｆｏｒｄｓｈｉｒｅ Constabulary",
        ] {
            assert_eq!(slug_from_name(name), plain, "{name:?}");
        }
    }

    #[test]
    fn id_validation() {
        assert!(OrganisationId::parse("avon-and-somerset").is_ok());
        assert!(OrganisationId::parse("a").is_ok());
        assert!(OrganisationId::parse(&"a".repeat(64)).is_ok());
        for bad in [
            "",
            "Essex",
            "essex police",
            "essex.police",
            "ésséx",
            "-",
            "a--b",
            "-a",
            "a-",
        ] {
            assert!(OrganisationId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(OrganisationId::parse(&"a".repeat(65)).is_err());
        let err = OrganisationId::parse("Essex").unwrap_err().to_string();
        assert!(err.contains("lowercase"), "{err}");
    }
}
