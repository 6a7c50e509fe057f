//! Years, months, days and inspection periods as the inspectorate writes them
//! ("2018/19", "2023–25", "September 2019", "31st March 2020"). One rule for
//! each, so that the parser, the deadline rules, the grade scales and the
//! reconciliation all read a period the same way.

/// The earliest year read as a year (anything earlier is a number, not a date).
pub const EARLIEST_YEAR: i32 = 1900;
/// The latest year read as a year (anything later is a typo, not a date).
pub const LATEST_YEAR: i32 = 2199;

/// A year written as exactly four ASCII digits, from [`EARLIEST_YEAR`] to
/// [`LATEST_YEAR`]: "2019" → 2019; "19", "20189" and "1066" are not years.
pub fn year(word: &str) -> Option<i32> {
    if word.len() != 4 || !word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    word.parse::<i32>()
        .ok()
        .filter(|y| (EARLIEST_YEAR..=LATEST_YEAR).contains(y))
}

/// Every year in `text`, in order: each run of exactly four digits (not part
/// of a longer number) that is a [`year`]. "PEEL 2018/19 and 2021/22" gives
/// 2018 and 2021 (the two-digit tails are not years).
pub fn years(text: &str) -> Vec<i32> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter_map(year)
        .collect()
}

/// The first year of a period or of any text that mentions one: "2018/19" →
/// 2018, "2023–25" → 2023, "PEEL 2021/22" → 2021, "November 2017" → 2017;
/// None when the text names no year.
pub fn first_year(text: &str) -> Option<i32> {
    text.split(|c: char| !c.is_ascii_digit()).find_map(year)
}

/// The month number (1..=12) of a month name or its three-letter abbreviation
/// ("Sept" too), case-insensitive, ignoring a trailing full stop: "March",
/// "mar", "Sept." → 3, 3, 9.
pub fn month_number(word: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let word = word.trim_end_matches('.').to_ascii_lowercase();
    let abbreviation = word.len() == 3 || word == "sept";
    MONTHS
        .iter()
        .position(|m| *m == word || (abbreviation && m.starts_with(word.as_str())))
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// A day of the month as written: "31", "31st", "1st", "2nd", "3rd", "4th";
/// 1..=31 (whether the month has that day is the caller's question).
pub fn day_of_month(word: &str) -> Option<u32> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    let well_formed = matches!(suffix, "" | "st" | "nd" | "rd" | "th")
        && !digits.is_empty()
        && digits.len() <= 2
        && digits.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return None;
    }
    digits.parse().ok().filter(|d| (1..=31).contains(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_and_first_years() {
        assert_eq!(year("2019"), Some(2019));
        assert_eq!(year("2199"), Some(2199));
        for word in ["19", "20189", "1066", "2200", "２０１９", ""] {
            assert_eq!(year(word), None, "{word:?}");
        }
        assert_eq!(first_year("2018/19"), Some(2018));
        assert_eq!(first_year("2021/22"), Some(2021));
        assert_eq!(first_year("2023–25"), Some(2023));
        assert_eq!(first_year("2023-2025"), Some(2023));
        assert_eq!(first_year("PEEL 2018/19"), Some(2018));
        assert_eq!(first_year("November 2017"), Some(2017));
        assert_eq!(first_year("12345"), None);
        assert_eq!(first_year("18/19"), None);
        assert_eq!(first_year(""), None);
        assert_eq!(years("PEEL 2018/19 and 2021/22"), vec![2018, 2021]);
    }

    #[test]
    fn months() {
        assert_eq!(month_number("March"), Some(3));
        assert_eq!(month_number("mar"), Some(3));
        assert_eq!(month_number("SEPT."), Some(9));
        assert_eq!(month_number("may"), Some(5));
        for word in ["", "ma", "marc", "Smarch", "septem"] {
            assert_eq!(month_number(word), None, "{word:?}");
        }
    }

    #[test]
    fn days() {
        assert_eq!(day_of_month("31"), Some(31));
        assert_eq!(day_of_month("31st"), Some(31));
        assert_eq!(day_of_month("2nd"), Some(2));
        for word in ["0", "32", "123", "st", "1x", "", "٣"] {
            assert_eq!(day_of_month(word), None, "{word:?}");
        }
    }
}
