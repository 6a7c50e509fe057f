//! Deadline clauses as the parser records them: the domain finds the clause
//! (`closeout_domain::find_deadline_clause`: "immediately", "within six
//! months", "by July 2018", "no later than 30 June 2022"), and the parser
//! stores it with its first letter lowercased ("Within six months, the force
//! should:" → "within six months"), the form `closeout_domain::due_date`
//! turns into a due date against the publication date.

use crate::text;

/// The first deadline clause in `text`, if any.
pub(crate) fn find(text: &str) -> Option<String> {
    closeout_domain::find_deadline_clause(text).map(text::decapitalise)
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn clauses_are_quoted_lowercase() {
        assert_eq!(
            find("Within six months, the force should:").as_deref(),
            Some("within six months")
        );
        assert_eq!(
            find("By 31 March 2020, all forces should:").as_deref(),
            Some("by 31 March 2020")
        );
        assert_eq!(
            find("publish the analysis and the action by July 2018.").as_deref(),
            Some("by July 2018")
        );
        assert_eq!(
            find("The force should improve by working with partners."),
            None
        );
    }
}
