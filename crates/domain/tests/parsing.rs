//! Parsers never panic on arbitrary input, and their outputs keep their
//! promises: slugs are valid ids, a found deadline clause is a slice of the
//! text that `due_date` recognises.

use closeout_domain::{
    DeadlineError, FindingKind, Grade, GradeScale, OrganisationId, PublishedDate, due_date,
    find_deadline_clause, kind_from_name, slug_from_name,
};
use proptest::prelude::*;

/// Arbitrary text, biased towards the words the parsers look for.
fn texty() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        any::<String>(),
        prop::sample::select(vec![
            "by",
            "within",
            "immediately",
            "the",
            "end",
            "of",
            "March",
            "2020",
            "31st",
            "six",
            "months",
            "no",
            "later",
            "than",
            "winter",
            "2020/21",
            "should",
            ".",
            ",",
            "Police",
            "Fire",
            "&",
            "Constabulary",
            "é",
            "2019-09",
            "financial",
            "year",
        ])
        .prop_map(String::from),
    ];
    prop::collection::vec(word, 0..12).prop_map(|words| words.join(" "))
}

proptest! {
    #[test]
    fn parsers_never_panic(text in texty()) {
        let _ = Grade::parse(&text);
        let _ = GradeScale::for_inspection(kind_from_name(&text), &text, false);
        let _ = closeout_domain::period::first_year(&text);
        let _ = FindingKind::parse(&text);
        let _ = kind_from_name(&text);
        let _ = OrganisationId::parse(&text);
        if let Ok(published) = PublishedDate::parse(&text) {
            prop_assert_eq!(PublishedDate::parse(&published.to_string()), Ok(published));
        }
        let published = PublishedDate::parse("2019-09").unwrap();
        let _ = due_date(&text, published);
    }

    #[test]
    fn slugs_are_valid_ids(name in texty()) {
        let slug = slug_from_name(&name);
        prop_assert_eq!(OrganisationId::parse(slug.as_str()), Ok(slug.clone()));
    }

    #[test]
    fn found_clauses_are_recognised(text in texty()) {
        if let Some(clause) = find_deadline_clause(&text) {
            let start = clause.as_ptr() as usize - text.as_ptr() as usize;
            prop_assert_eq!(&text[start..start + clause.len()], clause);
            let published = PublishedDate::parse("2019-09").unwrap();
            let recognised = !matches!(
                due_date(clause, published),
                Err(DeadlineError::Unrecognised(_)) | Ok(None)
            );
            prop_assert!(recognised, "{:?} found in {:?}", clause, text);
        }
    }
}
