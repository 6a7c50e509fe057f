//! Who was inspected and which inspection this is: the organisation (name, slug,
//! kind), the programme and period, the title, the publication date, and the
//! most similar group of peer forces the report names.
//!
//! Rules:
//! * **Title block**: the first run of up to four heading-like lines at the top
//!   (leading sentences, such as a fixture's "synthetic" notice, are skipped;
//!   "Contents", a letter's "Letter information" or a "Published" line ends
//!   it; a "Last updated" line is not heading-like, so it ends it too). The
//!   title is those lines joined with " – ", except that a line that is only
//!   the programme's name is joined with ": ". The sample's block `PEEL` / `Police effectiveness, efficiency
//!   and legitimacy 2018/19` / `An inspection of Hertfordshire Constabulary`
//!   gives "PEEL: Police effectiveness, efficiency and legitimacy 2018/19 – An
//!   inspection of Hertfordshire Constabulary".
//! * **Organisation**: the name after "An inspection of" in the title block;
//!   else the name before "'s MSG forces are"; else the body name (words ending
//!   "Constabulary", "Police", "Police Service", "Fire and Rescue Service", …)
//!   mentioned most often. The id follows `closeout_domain::slug_from_name`
//!   (lowercase, "&" as "and", the kind suffix dropped, and a fire and rescue
//!   service marked "-fire" so it never takes the id of the police force of
//!   the same place: "Hampshire and Isle of Wight Fire and Rescue Service" →
//!   "hampshire-and-isle-of-wight-fire", "Hampshire and Isle of Wight
//!   Constabulary" → "hampshire-and-isle-of-wight"); the kind comes from the
//!   name (a word "fire" → fire and rescue service; "police" or
//!   "constabulary" → police force).
//! * **Programme**: "PEEL" when the title says PEEL or "police effectiveness,
//!   efficiency and legitimacy"; [`FRS_PROGRAMME`] when it names a fire and
//!   rescue service or "effectiveness, efficiency and people"; otherwise "PEEL"
//!   if the word PEEL appears near the top.
//! * **Period**: the first period in the title block ("2018/19", "2021/22",
//!   "2023–25"), else the first in a line near the top that says PEEL.
//! * **Published**: a "Published on: 9 June 2023" line gives "2023-06-09";
//!   otherwise the closing "September 2019 | ©HMICFRS 2019" line gives
//!   "2019-09". A page's "Last updated 20/12/2018" and a letter's date are
//!   read in [`crate::dating`], where the layout is known.

use std::collections::HashMap;

use closeout_proto::{OrganisationKind, ParsedInspection, ParsedOrganisation};

use crate::text::{self, fold};
use crate::units::{Kind, Unit};

/// Programme name of the police effectiveness, efficiency and legitimacy
/// inspections.
pub(crate) const PEEL_PROGRAMME: &str = "PEEL";
/// Programme name given to the inspectorate's fire and rescue service
/// inspections ("effectiveness, efficiency and people").
pub(crate) const FRS_PROGRAMME: &str = "FRS";

/// How far from the top the programme and period are looked for when the
/// title block does not give them.
const NEAR_TOP_UNITS: usize = 80;

/// What [`identify`] found.
#[derive(Debug, Default)]
pub(crate) struct Identity {
    pub organisation: Option<ParsedOrganisation>,
    pub inspection: ParsedInspection,
    pub most_similar_group: Vec<String>,
}

/// Finds the organisation, inspection and most similar group (see the module
/// documentation).
pub(crate) fn identify(units: &[Unit]) -> Identity {
    let block = title_block(units);
    let parts: Vec<&str> = block.iter().map(|&i| units[i].text.as_str()).collect();
    let joined = parts.join(" ");
    let folded = fold(&joined);

    let name = parts
        .iter()
        .find_map(|part| after_inspection_of(part))
        .or_else(|| units.iter().find_map(|u| msg_owner(&u.text)))
        .or_else(|| most_mentioned_name(units));
    let organisation = name.map(|name| {
        let kind = closeout_domain::kind_from_name(&name);
        ParsedOrganisation {
            id: closeout_domain::slug_from_name(&name).to_string(),
            name,
            kind: closeout_domain::wire::organisation_kind_to_wire(kind) as i32,
        }
    });
    let kind = organisation
        .as_ref()
        .map_or(OrganisationKind::Unspecified, |o| o.kind());

    let programme = programme(&joined, &folded, units, kind);
    let period = text::periods_in(&joined)
        .first()
        .map(|w| w.of(&joined).to_string())
        .or_else(|| period_near_top(units))
        .unwrap_or_default();
    let title = compose_title(&parts, &programme);
    let published = published(units).unwrap_or_default();

    Identity {
        organisation,
        inspection: ParsedInspection {
            programme,
            period,
            title,
            published,
        },
        most_similar_group: units
            .iter()
            .find_map(|u| most_similar_group(&u.text))
            .unwrap_or_default(),
    }
}

/// Indices of the title block's units.
fn title_block(units: &[Unit]) -> Vec<usize> {
    let mut block = Vec::new();
    for (i, unit) in units.iter().enumerate().take(12) {
        let lower = fold(&unit.text);
        let ends_block = unit.kind != Kind::Text
            || lower == "contents"
            || lower == "letter information"
            || lower.starts_with("published")
            || !unit.is_heading();
        if ends_block {
            if block.is_empty() {
                continue;
            }
            break;
        }
        block.push(i);
        // "An inspection of …" closes the title.
        if block.len() == 4 || lower.contains("an inspection of ") {
            break;
        }
    }
    block
}

/// The title from the title block's lines.
fn compose_title(parts: &[&str], programme: &str) -> String {
    let mut title = String::new();
    for part in parts {
        if title.is_empty() {
            title.push_str(part);
        } else if !programme.is_empty() && title == programme {
            title.push_str(": ");
            title.push_str(part);
        } else {
            title.push_str(" – ");
            title.push_str(part);
        }
    }
    title
}

fn programme(joined: &str, folded: &str, units: &[Unit], kind: OrganisationKind) -> String {
    let says_peel = |t: &str| t.split(|c: char| !c.is_alphanumeric()).any(|w| w == "PEEL");
    let frs_words = [
        "fire and rescue",
        "fire & rescue",
        "effectiveness, efficiency and people",
    ];
    if says_peel(joined) || folded.contains("police effectiveness, efficiency and legitimacy") {
        return PEEL_PROGRAMME.to_string();
    }
    if frs_words.iter().any(|w| folded.contains(w)) {
        return FRS_PROGRAMME.to_string();
    }
    let top = &units[..units.len().min(NEAR_TOP_UNITS)];
    if top.iter().any(|u| says_peel(&u.text)) {
        return PEEL_PROGRAMME.to_string();
    }
    if kind == OrganisationKind::FireAndRescueService
        || top
            .iter()
            .any(|u| fold(&u.text).contains("effectiveness, efficiency and people"))
    {
        return FRS_PROGRAMME.to_string();
    }
    String::new()
}

/// The first period in a line near the top that names PEEL or an inspection.
fn period_near_top(units: &[Unit]) -> Option<String> {
    units.iter().take(NEAR_TOP_UNITS).find_map(|u| {
        let lower = u.text.to_ascii_lowercase();
        if !(u.text.contains("PEEL") || lower.contains("inspection")) {
            return None;
        }
        text::periods_in(&u.text)
            .into_iter()
            .map(|w| w.of(&u.text))
            .find(|p| p.len() > 4)
            .map(str::to_string)
    })
}

/// "2023-06-09" from a "Published on: 9 June 2023" line, else "2019-09" from
/// the last "September 2019 | ©HMICFRS 2019" line.
fn published(units: &[Unit]) -> Option<String> {
    let first_date = |t: &str| {
        let all = text::words(t);
        (0..all.len()).find_map(|i| text::date_at(t, &all, i))
    };
    let stated = units.iter().find_map(|u| {
        if u.text.len() > 80 {
            return None;
        }
        let lower = u.text.to_ascii_lowercase();
        let says = lower.starts_with("published") || lower.starts_with("publication date");
        if says { first_date(&u.text) } else { None }
    });
    let closing = || {
        units.iter().rev().find_map(|u| {
            let closing_line =
                u.text.contains('©') && (u.text.contains("HMICFRS") || u.text.contains("HMIC"));
            if closing_line {
                first_date(&u.text)
            } else {
                None
            }
        })
    };
    stated
        .or_else(closing)
        .map(|(year, month, day, _)| text::iso(year, month, day))
}

/// The name after "An inspection of" in a title line.
fn after_inspection_of(part: &str) -> Option<String> {
    const LEAD: &str = "an inspection of ";
    let lower = part.to_ascii_lowercase();
    let at = lower.find(LEAD)?;
    let rest = part.get(at + LEAD.len()..)?;
    clean_name(rest)
}

/// The owner in "Hertfordshire Constabulary's MSG forces are …".
fn msg_owner(text: &str) -> Option<String> {
    for marker in [
        "'s MSG forces are",
        "’s MSG forces are",
        "'s most similar group",
        "’s most similar group",
    ] {
        if let Some(at) = text.find(marker) {
            let before = &text[..at];
            let sentence_start = text::sentences(before)
                .last()
                .map_or(0, |&(start, _)| start);
            return clean_name(&before[sentence_start..]);
        }
    }
    None
}

/// A name trimmed of surrounding punctuation and a leading "the".
fn clean_name(raw: &str) -> Option<String> {
    let trimmed = raw
        .trim()
        .trim_end_matches(['.', ',', ';', ':', '!', '?'])
        .trim();
    let trimmed = trimmed
        .strip_prefix("the ")
        .or_else(|| trimmed.strip_prefix("The "))
        .unwrap_or(trimmed)
        .trim();
    let ok = !trimmed.is_empty()
        && trimmed.chars().count() <= 100
        && trimmed.chars().next().is_some_and(char::is_uppercase);
    ok.then(|| trimmed.to_string())
}

/// The peer forces in "…'s MSG forces are A, B, … and G." (or "…'s most
/// similar group … are …").
fn most_similar_group(text: &str) -> Option<Vec<String>> {
    let lower = text.to_ascii_lowercase();
    let marker = [
        "msg forces are ",
        "most similar group are ",
        "most similar group (msg) are ",
    ]
    .iter()
    .find_map(|m| lower.find(m).map(|at| at + m.len()))?;
    let rest = text.get(marker..)?;
    let end = text::sentences(rest)
        .first()
        .map_or(rest.len(), |&(_, end)| end);
    let list = rest[..end].trim_end_matches('.');
    let mut names = Vec::new();
    for part in list.split(", ") {
        let part = part.strip_prefix("and ").unwrap_or(part);
        names.extend(split_and(part));
    }
    names.retain(|n| !n.is_empty());
    (!names.is_empty()).then_some(names)
}

/// Splits "Staffordshire Police and Thames Valley Police" into two names, but
/// not "Avon and Somerset Constabulary": only at an " and " that follows a
/// kind word (Police, Constabulary, Service, Brigade, Authority).
fn split_and(part: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = part;
    loop {
        let found = rest.match_indices(" and ").find(|&(at, _)| {
            let left = &rest[..at];
            KIND_WORDS.iter().any(|k| left.ends_with(k))
        });
        match found {
            Some((at, _)) => {
                out.push(rest[..at].trim().to_string());
                rest = &rest[at + " and ".len()..];
            }
            None => {
                out.push(rest.trim().to_string());
                return out;
            }
        }
    }
}

const KIND_WORDS: &[&str] = &["Police", "Constabulary", "Service", "Brigade", "Authority"];

/// Name suffixes, as words, longest first.
const NAME_SUFFIXES: &[&[&str]] = &[
    &["Fire", "and", "Rescue", "Service"],
    &["Fire", "&", "Rescue", "Service"],
    &["Fire", "and", "Rescue", "Authority"],
    &["Fire", "&", "Rescue", "Authority"],
    &["Fire", "Brigade"],
    &["Police", "Service"],
    &["Constabulary"],
    &["Police"],
];

/// Capitalised words that start sentences rather than names.
const NOT_NAME_WORDS: &[&str] = &[
    "The", "In", "A", "An", "This", "That", "These", "Those", "However", "Our", "We", "It", "Its",
    "As", "At", "By", "For", "From", "On", "With", "All", "Each", "Every", "Both", "While",
];

/// The body name mentioned most often (ties: the first mentioned).
fn most_mentioned_name(units: &[Unit]) -> Option<String> {
    let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
    let mut order = 0usize;
    for unit in units.iter().filter(|u| u.is_prose()) {
        for name in names_in(&unit.text) {
            order += 1;
            counts.entry(name).or_insert((0, order)).0 += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|(_, (count_a, first_a)), (_, (count_b, first_b))| {
            count_a.cmp(count_b).then(first_b.cmp(first_a))
        })
        .map(|(name, _)| name)
}

/// Body names in a text: capitalised words ending with a kind suffix.
fn names_in(text: &str) -> Vec<String> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let bare = |t: &str| -> String {
        let t = t
            .strip_suffix("'s")
            .or_else(|| t.strip_suffix("’s"))
            .unwrap_or(t);
        t.trim_matches(|c: char| !c.is_alphanumeric() && c != '&')
            .to_string()
    };
    let mut names = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let suffix = NAME_SUFFIXES.iter().find(|suffix| {
            suffix.iter().enumerate().all(|(k, word)| {
                tokens.get(i + k).is_some_and(|t| {
                    let t = if k + 1 == suffix.len() {
                        bare(t)
                    } else {
                        (*t).to_string()
                    };
                    t == *word
                })
            })
        });
        let Some(suffix) = suffix else {
            i += 1;
            continue;
        };
        let mut start = i;
        while start > 0 {
            let previous = tokens[start - 1];
            let ends_phrase = previous.ends_with([',', '.', ';', ':', '(', ')']);
            let capitalised = previous.chars().next().is_some_and(char::is_uppercase)
                && !NOT_NAME_WORDS.contains(&previous)
                && !KIND_WORDS.contains(&previous);
            let connector = matches!(previous, "and" | "of" | "&");
            if ends_phrase || !(capitalised || connector) {
                break;
            }
            start -= 1;
        }
        while start < i && matches!(tokens[start], "and" | "of" | "&") {
            start += 1;
        }
        if start < i {
            let words: Vec<String> = tokens[start..i + suffix.len()]
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    if start + k + 1 == i + suffix.len() {
                        bare(t)
                    } else {
                        (*t).to_string()
                    }
                })
                .collect();
            names.push(words.join(" "));
        }
        i += suffix.len();
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_lists_split_only_between_names() {
        let text = "Hertfordshire Constabulary's MSG forces are Hampshire Constabulary, \
                    Avon and Somerset Constabulary, Staffordshire Police and Thames Valley Police. \
                    We haven't yet inspected them.";
        assert_eq!(
            most_similar_group(text),
            Some(vec![
                "Hampshire Constabulary".to_string(),
                "Avon and Somerset Constabulary".to_string(),
                "Staffordshire Police".to_string(),
                "Thames Valley Police".to_string(),
            ])
        );
        assert_eq!(
            msg_owner(text),
            Some("Hertfordshire Constabulary".to_string())
        );
    }

    #[test]
    fn names_in_prose() {
        assert_eq!(
            names_in(
                "Hertfordshire Constabulary works with Bedfordshire Police and Cambridgeshire Constabulary."
            ),
            vec![
                "Hertfordshire Constabulary".to_string(),
                "Bedfordshire Police".to_string(),
                "Cambridgeshire Constabulary".to_string()
            ]
        );
        assert!(names_in("on the Police National Computer").is_empty());
        assert_eq!(
            names_in("The Hampshire and Isle of Wight Fire and Rescue Service's plans"),
            vec!["Hampshire and Isle of Wight Fire and Rescue Service".to_string()]
        );
    }
}
