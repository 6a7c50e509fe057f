//! Why a text could not be parsed at all. Anything short of these gives a
//! (possibly partial) [`ParsedReport`](closeout_proto::ParsedReport) whose
//! `warnings` say what was expected and not found: a truncated report is still
//! worth reading, a photograph of one is not.

/// The one error type of the parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but whitespace (or a byte-order mark).
    #[error("the text is empty")]
    Empty,
    /// NUL bytes, or mostly control or replacement characters: not text.
    #[error("the input is not text ({reason})")]
    Binary { reason: String },
    /// Larger than any report the inspectorate publishes.
    #[error("the text is {bytes} bytes, more than the parser's limit of {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    /// Text, but nothing in it looks like an inspection report.
    #[error(
        "not an inspection report: found {found}; expected at least two of an inspected \
         organisation, an inspection programme, graded judgments, and findings or follow-up \
         statements"
    )]
    NotAReport { found: String },
    /// A value supplied alongside the text (`--published`, `--period`,
    /// `--organisation`) is malformed.
    #[error("the supplied {option} is not usable: {reason}")]
    BadOption {
        option: &'static str,
        reason: String,
    },
}
