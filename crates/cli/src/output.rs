//! Output for people (aligned tables) and for programs (canonical JSON).

use crate::error::CliError;

/// A plain text table with a header row; columns sized to their content.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headings.
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells print empty.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Renders the table, widest cell per column, two spaces between.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                if i + 1 == columns {
                    out.push_str(cell);
                } else {
                    out.push_str(&format!("{cell:<width$}  "));
                }
            }
            out.trim_end().to_string()
        };
        let mut out = line(&self.header);
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }
}

/// Prints `message` (proto type `closeout.v1.<type_name>`) as canonical JSON.
pub fn print_json<M: prost::Message>(type_name: &str, message: &M) -> Result<(), CliError> {
    let text = closeout_proto::json::to_json_pretty(type_name, message)
        .map_err(|e| CliError::Other(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// Human name of a proto enum value: `FINDING_KIND_AREA_FOR_IMPROVEMENT`
/// with prefix `FINDING_KIND_` becomes `area for improvement`.
pub fn enum_words(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_ascii_lowercase()
        .replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut table = Table::new(&["a", "long header"]);
        table.row(vec!["wide cell".into(), "x".into()]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "a          long header");
        assert_eq!(lines[1], "wide cell  x");
    }

    #[test]
    fn enum_words_strips_prefix() {
        assert_eq!(
            enum_words("FINDING_KIND_AREA_FOR_IMPROVEMENT", "FINDING_KIND_"),
            "area for improvement"
        );
    }
}
