//! The text the parser reads, built line by line: inline text with its
//! whitespace collapsed as a browser collapses it, lines ended where a block
//! ends, blank lines between blocks (never two in a row), list markers and
//! table rows written whole.

/// Builds the parser's text.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    out: String,
    line: String,
    pending_space: bool,
    prefix: Option<String>,
}

impl Writer {
    /// Appends inline text, collapsing runs of whitespace (no-break spaces
    /// included) to one space and dropping it at the start of a line.
    pub fn inline(&mut self, text: &str) {
        for c in text.chars() {
            if c.is_whitespace() || c == '\u{200b}' {
                self.pending_space = true;
            } else if c.is_control() {
                // Control characters never belong in the parser's text.
                self.pending_space = true;
            } else {
                if self.pending_space && !self.line.is_empty() {
                    self.line.push(' ');
                }
                self.pending_space = false;
                self.line.push(c);
            }
        }
    }

    /// The marker (e.g. `"- "`) written before the next line.
    pub fn set_prefix(&mut self, prefix: String) {
        self.prefix = Some(prefix);
    }

    /// Ends the current line, if it holds text.
    pub fn flush(&mut self) {
        if !self.line.is_empty() {
            if let Some(prefix) = self.prefix.take() {
                self.out.push_str(&prefix);
            }
            self.out.push_str(self.line.trim_end());
            self.out.push('\n');
            self.line.clear();
        }
        self.pending_space = false;
    }

    /// Ends the current line and leaves one blank line after it.
    pub fn blank(&mut self) {
        self.flush();
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    /// Writes `line` as it is, on its own line.
    pub fn raw_line(&mut self, line: &str) {
        self.flush();
        self.out.push_str(line);
        self.out.push('\n');
    }

    /// The text written so far, ending in one line break (or empty).
    pub fn finish(mut self) -> String {
        self.flush();
        let end = self.out.trim_end_matches('\n').len();
        self.out.truncate(end);
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_collapses_and_blocks_separate() {
        let mut w = Writer::default();
        w.blank();
        w.inline("  Investigating \n crime ");
        w.blank();
        w.blank();
        w.set_prefix("- ".into());
        w.inline("The force\u{a0}should");
        w.flush();
        w.raw_line("\tGood\t2017");
        assert_eq!(
            w.finish(),
            "Investigating crime\n\n- The force should\n\tGood\t2017\n"
        );
    }
}
