//! Saved web pages: the inspectorate's publication pages and service
//! assessment pages, read with a real HTML5 parser (html5ever through
//! `scraper`, so unclosed tags and stray markup read as a browser reads them)
//! and written as the parser's lines.
//!
//! * `h1`–`h6`, `p` and other blocks: one line each, blank lines between;
//!   `br` ends a line.
//! * `li`: `- item` (`1. item` in an `ol`), one line each, the list set off
//!   by blank lines.
//! * `tr`: its `th`/`td` cells joined by tabs (empty cells kept, `colspan`
//!   repeated as empty cells), one line per row — the shape of the text
//!   export, where a tab marks a table row.
//! * `sup` holding a footnote number: a superscript digit, as in the text
//!   export ("cases¹").
//! * Dropped: scripts, styles, forms, images, navigation, the site header and
//!   footer (a `header`/`footer` inside `main` or `article` is content and
//!   kept), asides, cookie banners, breadcrumbs, skip links, share and print
//!   links, and anything hidden. A "Last updated …" or "Published on …" line
//!   inside something dropped is kept, because it dates the report.
//! * Kept although navigation: the publication's table of contents (a `nav`
//!   labelled or headed "Contents"), whose list names the report's
//!   questions as the text export's page-numbered contents does.

use ego_tree::NodeRef;
use scraper::{ElementRef, Html, Node};

use crate::writer::Writer;

/// Deeper than this, an element's text is written inline without looking at
/// its markup (html5ever builds any depth; the walk must not overflow the
/// stack on a hostile page).
const MAX_DEPTH: usize = 200;

/// Most empty cells one `colspan` adds.
const MAX_COLSPAN: usize = 32;

/// Most elements open inside each other that a page may have. Real pages
/// nest a few dozen deep; the HTML5 tree builder's work grows with the
/// depth for every tag, so a hostile page of deep nesting is refused first.
const MAX_NESTING: usize = 512;

/// Elements that never hold others (void) or that the next sibling closes
/// implicitly: they do not deepen a page however they are written.
const NOT_NESTING: [&str; 32] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param", "keygen", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup",
    "thead", "tbody", "tfoot", "colgroup", "caption", "html", "head", "body",
];

/// Refuses markup whose elements nest deeper than [`MAX_NESTING`], counted
/// from its tags without building the tree.
pub(crate) fn check_nesting(markup: &str) -> Result<(), crate::DocumentError> {
    let bytes = markup.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    let name_at = |start: usize| -> String {
        bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-' || **b == b':')
            .take(64)
            .map(|b| b.to_ascii_lowercase() as char)
            .collect()
    };
    let find = |from: usize, needle: &[u8]| -> Option<usize> {
        bytes
            .get(from..)?
            .windows(needle.len())
            .position(|w| w.eq_ignore_ascii_case(needle))
            .map(|p| from + p)
    };
    while let Some(offset) = bytes
        .get(i..)
        .and_then(|rest| rest.iter().position(|&b| b == b'<'))
    {
        let at = i + offset;
        let next = bytes.get(at + 1).copied().unwrap_or(b' ');
        if bytes[at..].starts_with(b"<!--") {
            i = find(at + 4, b"-->").map_or(bytes.len(), |end| end + 3);
            continue;
        }
        if next == b'/' {
            let name = name_at(at + 2);
            if !name.is_empty() && !NOT_NESTING.contains(&name.as_str()) {
                depth = depth.saturating_sub(1);
            }
            i = at + 2;
            continue;
        }
        if !next.is_ascii_alphabetic() {
            i = at + 1;
            continue;
        }
        let name = name_at(at + 1);
        let end = find(at + 1, b">").unwrap_or(bytes.len());
        let self_closing = end > 0 && bytes.get(end - 1) == Some(&b'/');
        if matches!(
            name.as_str(),
            "script" | "style" | "textarea" | "title" | "xmp"
        ) {
            // Raw text: skip to the closing tag.
            let close = format!("</{name}");
            i = find(end, close.as_bytes()).unwrap_or(bytes.len());
            continue;
        }
        if !self_closing && !NOT_NESTING.contains(&name.as_str()) {
            depth += 1;
            if depth > MAX_NESTING {
                return Err(crate::DocumentError::NotText(format!(
                    "the page nests elements more than {MAX_NESTING} deep; it is not a saved report page"
                )));
            }
        }
        i = end.max(at + 1);
    }
    Ok(())
}

/// The page's text as the parser reads it.
pub(crate) fn to_text(markup: &str) -> String {
    let document = Html::parse_document(markup);
    let mut walker = Walker {
        w: Writer::default(),
        keep_chrome: false,
    };
    walker.children(*document.root_element(), 0);
    walker.w.finish()
}

/// What an element is to the walk.
enum Role {
    /// Never text: scripts, styles, images, form controls.
    Silent,
    /// Site chrome: dropped, except its date lines.
    Chrome,
    Content,
}

struct Walker {
    w: Writer,
    /// Set while reading dropped chrome for its date lines.
    keep_chrome: bool,
}

impl Walker {
    fn children(&mut self, node: NodeRef<'_, Node>, depth: usize) {
        for child in node.children() {
            self.node(child, depth + 1);
        }
    }

    fn node(&mut self, node: NodeRef<'_, Node>, depth: usize) {
        match node.value() {
            Node::Text(text) => self.w.inline(text),
            Node::Element(_) => {
                if let Some(element) = ElementRef::wrap(node) {
                    self.element(element, depth);
                }
            }
            _ => {}
        }
    }

    fn element(&mut self, element: ElementRef<'_>, depth: usize) {
        match role(element) {
            Role::Silent => return,
            Role::Chrome if !self.keep_chrome => {
                self.rescue_dates(element, depth);
                return;
            }
            _ => {}
        }
        if depth > MAX_DEPTH {
            for text in element.text() {
                self.w.inline(text);
            }
            return;
        }
        let name = element.value().name();
        match name {
            "br" => self.w.flush(),
            "ul" | "ol" | "menu" => self.list(element, name == "ol", depth),
            "li" => {
                self.w.flush();
                self.item(element, "- ".to_string(), depth);
            }
            "table" => self.table(element, depth),
            "sup" => {
                let text: String = element.text().collect();
                match superscript(text.trim()) {
                    Some(digits) => self.w.inline(&digits),
                    None => self.children(*element, depth),
                }
            }
            _ if is_block(name) => {
                self.w.blank();
                self.children(*element, depth);
                self.w.blank();
            }
            _ => self.children(*element, depth),
        }
    }

    fn list(&mut self, list: ElementRef<'_>, ordered: bool, depth: usize) {
        self.w.blank();
        let mut number = 0usize;
        for child in list.children() {
            match ElementRef::wrap(child) {
                Some(item) if item.value().name() == "li" => {
                    if matches!(role(item), Role::Silent | Role::Chrome) && !self.keep_chrome {
                        continue;
                    }
                    number += 1;
                    let marker = if ordered {
                        format!("{number}. ")
                    } else {
                        "- ".to_string()
                    };
                    self.item(item, marker, depth + 1);
                }
                _ => self.node(child, depth + 1),
            }
        }
        self.w.blank();
    }

    /// A list item: its text on one line after the marker. Blocks inside it
    /// (a `p`, a nested list) end the line without a blank line.
    fn item(&mut self, item: ElementRef<'_>, marker: String, depth: usize) {
        self.w.flush();
        self.w.set_prefix(marker);
        let mut inner = Walker {
            w: Writer::default(),
            keep_chrome: self.keep_chrome,
        };
        inner.children(*item, depth);
        let text = inner.w.finish();
        let mut first = true;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if first {
                self.w.inline(line);
                self.w.flush();
                first = false;
            } else {
                self.w.raw_line(line);
            }
        }
        if first {
            // An empty item: no line, and no marker left waiting.
            self.w.set_prefix(String::new());
        }
    }

    fn table(&mut self, table: ElementRef<'_>, depth: usize) {
        self.w.blank();
        let mut rows = Vec::new();
        collect_rows(table, &mut rows, depth);
        for part in rows {
            match part {
                TablePart::Caption(caption) => {
                    let text = self.cell_text(caption, depth);
                    if !text.is_empty() {
                        self.w.raw_line(&text);
                        self.w.blank();
                    }
                }
                TablePart::Row(row) => {
                    let mut cells: Vec<String> = Vec::new();
                    for cell in row.child_elements() {
                        let name = cell.value().name();
                        if name != "td" && name != "th" {
                            continue;
                        }
                        if matches!(role(cell), Role::Silent) {
                            continue;
                        }
                        cells.push(self.cell_text(cell, depth));
                        let span = cell
                            .attr("colspan")
                            .and_then(|s| s.trim().parse::<usize>().ok())
                            .unwrap_or(1)
                            .clamp(1, MAX_COLSPAN);
                        cells.extend(std::iter::repeat_n(String::new(), span - 1));
                    }
                    if cells.iter().all(String::is_empty) {
                        continue;
                    }
                    if cells.len() == 1 {
                        // One cell is a line of prose, not a row.
                        self.w.raw_line(&cells[0]);
                    } else {
                        self.w.raw_line(&cells.join("\t"));
                    }
                }
            }
        }
        self.w.blank();
    }

    /// A cell's text on one line.
    fn cell_text(&self, cell: ElementRef<'_>, depth: usize) -> String {
        let mut inner = Walker {
            w: Writer::default(),
            keep_chrome: self.keep_chrome,
        };
        inner.children(*cell, depth + 1);
        let text = inner.w.finish();
        let words: Vec<&str> = text
            .lines()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect();
        words.join(" ").replace('\t', " ")
    }

    /// Writes the "Last updated …" and "Published on …" lines found inside
    /// dropped chrome.
    fn rescue_dates(&mut self, element: ElementRef<'_>, depth: usize) {
        let mut inner = Walker {
            w: Writer::default(),
            keep_chrome: true,
        };
        inner.element(element, depth);
        let text = inner.w.finish();
        let dates: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|line| is_date_line(line))
            .collect();
        if !dates.is_empty() {
            self.w.blank();
            for line in dates {
                self.w.raw_line(line.trim_start_matches("- "));
            }
            self.w.blank();
        }
    }
}

/// A table's caption or one of its rows, in document order (rows of nested
/// tables excluded: they are read as their cell's text).
enum TablePart<'a> {
    Caption(ElementRef<'a>),
    Row(ElementRef<'a>),
}

fn collect_rows<'a>(element: ElementRef<'a>, out: &mut Vec<TablePart<'a>>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    for child in element.child_elements() {
        match child.value().name() {
            "caption" => out.push(TablePart::Caption(child)),
            "tr" => out.push(TablePart::Row(child)),
            "thead" | "tbody" | "tfoot" => collect_rows(child, out, depth + 1),
            _ => {}
        }
    }
}

/// Whether a line dates the document.
fn is_date_line(line: &str) -> bool {
    let lower = line.trim_start_matches("- ").to_lowercase();
    [
        "last updated",
        "published on",
        "published:",
        "date published",
        "first published",
    ]
    .iter()
    .any(|start| lower.starts_with(start))
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "blockquote"
            | "body"
            | "caption"
            | "center"
            | "dd"
            | "details"
            | "div"
            | "dl"
            | "dt"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hgroup"
            | "hr"
            | "html"
            | "legend"
            | "main"
            | "p"
            | "pre"
            | "section"
            | "summary"
    )
}

/// Class and id fragments of site chrome.
const CHROME_MARKERS: [&str; 16] = [
    "cookie",
    "consent",
    "breadcrumb",
    "skip-link",
    "skiplink",
    "skip-to",
    "site-header",
    "site-footer",
    "navbar",
    "menu",
    "share",
    "social",
    "print-link",
    "back-to-top",
    "banner",
    "feedback",
];

fn role(element: ElementRef<'_>) -> Role {
    let e = element.value();
    match e.name() {
        "script" | "style" | "noscript" | "template" | "head" | "title" | "meta" | "link"
        | "svg" | "math" | "iframe" | "object" | "embed" | "canvas" | "img" | "picture"
        | "input" | "select" | "textarea" | "button" | "option" | "video" | "audio" | "map"
        | "source" | "track" => return Role::Silent,
        // A publication's own table of contents is content: it names the
        // report's questions, as the page-numbered contents of the text does.
        "nav" if is_contents(element) => {}
        "nav" | "aside" | "form" | "dialog" => return Role::Chrome,
        "header" | "footer" if !inside_content(element) => return Role::Chrome,
        _ => {}
    }
    if e.attr("hidden").is_some()
        || e.attr("aria-hidden")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return Role::Chrome;
    }
    if let Some(role) = e.attr("role") {
        let role = role.trim().to_ascii_lowercase();
        if matches!(
            role.as_str(),
            "navigation" | "banner" | "contentinfo" | "search" | "dialog" | "alertdialog"
        ) {
            return Role::Chrome;
        }
    }
    let marked = |value: &str| CHROME_MARKERS.iter().any(|m| marks(value, m));
    if e.id().is_some_and(marked) || e.classes().any(marked) {
        return Role::Chrome;
    }
    Role::Content
}

/// Whether a class or id names the marker: the marker's words appear in a
/// row among the value's words (split at `-` and `_`), the last one
/// possibly plural — "govuk-skip-link", "cookie-banner__accept" and
/// "breadcrumbs" are chrome; "shared-content" is not "share".
fn marks(value: &str, marker: &str) -> bool {
    let value = value.to_ascii_lowercase();
    let words: Vec<&str> = value.split(['-', '_']).filter(|w| !w.is_empty()).collect();
    let wanted: Vec<&str> = marker.split('-').collect();
    if wanted.is_empty() || words.len() < wanted.len() {
        return false;
    }
    words.windows(wanted.len()).any(|window| {
        window
            .iter()
            .zip(&wanted)
            .enumerate()
            .all(|(i, (word, want))| {
                *word == *want || (i + 1 == wanted.len() && word.strip_suffix('s') == Some(*want))
            })
    })
}

/// Whether a `nav` is the publication's table of contents: labelled
/// "Contents" (`aria-label`) or headed by a "Contents" heading.
fn is_contents(element: ElementRef<'_>) -> bool {
    let named = |text: &str| {
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        text.eq_ignore_ascii_case("contents") || text.eq_ignore_ascii_case("table of contents")
    };
    element.value().attr("aria-label").is_some_and(named)
        || element
            .children()
            .find_map(ElementRef::wrap)
            .is_some_and(|first| {
                matches!(first.value().name(), "h2" | "h3" | "h4" | "h5" | "h6")
                    && named(&first.text().collect::<String>())
            })
}

/// Whether an element sits inside the page's content (`main`, `article` or
/// an element with `role="main"`).
fn inside_content(element: ElementRef<'_>) -> bool {
    element.ancestors().any(|node| {
        node.value().as_element().is_some_and(|e| {
            matches!(e.name(), "main" | "article")
                || e.attr("role")
                    .is_some_and(|r| r.trim().eq_ignore_ascii_case("main"))
        })
    })
}

/// A footnote number as superscript digits (`"1"` → `"¹"`).
fn superscript(text: &str) -> Option<String> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        text.chars()
            .map(|c| match c {
                '1' => '¹',
                '2' => '²',
                '3' => '³',
                '0' => '⁰',
                '4' => '⁴',
                '5' => '⁵',
                '6' => '⁶',
                '7' => '⁷',
                '8' => '⁸',
                _ => '⁹',
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_paragraphs_lists_and_tables() {
        let page = r##"<!DOCTYPE html><html><head><title>x</title><style>p{}</style></head>
<body>
<a class="govuk-skip-link" href="#main">Skip to main content</a>
<div id="cookie-banner"><p>We use cookies.</p><button>Accept</button></div>
<header class="site-header"><nav><ul><li><a href="/">Home</a></li></ul></nav></header>
<ol class="breadcrumbs"><li>Home</li><li>Publications</li></ol>
<main id="main"><article>
<h1>PEEL: Police effectiveness,
   efficiency and legitimacy 2018/19</h1>
<p>Investigating   crime</p><p class="grade">Good</p>
<h2>Areas for improvement</h2>
<ul><li>The force needs to develop a <a href="#">cyber strategy</a>.</li>
<li><p>The force should refresh guidance.</p></li></ul>
<ol><li>One</li><li>Two</li></ol>
<table><thead><tr><td></td><th>Effectiveness</th><td></td><th>Last inspected</th></tr></thead>
<tbody><tr><td>Investigating crime</td><td>Good</td><td></td><td>2018/19</td></tr>
<tr><td colspan="2">Spanned</td><td>x</td></tr></tbody></table>
<p>Cases<sup>1</sup> and<br>a new line</p>
</article></main>
<footer class="site-footer"><p>© Crown copyright</p><p>Last updated: 20/12/2018</p></footer>
<script>alert(1)</script>
</body></html>"##;
        let text = to_text(page);
        assert_eq!(
            text,
            "PEEL: Police effectiveness, efficiency and legitimacy 2018/19\n\n\
             Investigating crime\n\nGood\n\nAreas for improvement\n\n\
             - The force needs to develop a cyber strategy.\n\
             - The force should refresh guidance.\n\n\
             1. One\n2. Two\n\n\
             \tEffectiveness\t\tLast inspected\n\
             Investigating crime\tGood\t\t2018/19\n\
             Spanned\t\tx\n\n\
             Cases¹ and\na new line\n\n\
             Last updated: 20/12/2018\n"
        );
    }

    #[test]
    fn a_publication_contents_nav_is_kept_and_other_navigation_is_not() {
        let page = "<body><nav><ul><li><a href=\"/\">Home</a></li></ul></nav>\
                    <nav aria-label=\"Contents\"><h2>Contents</h2><ol>\
                    <li><a href=\"#a\">Armed policing</a></li></ol></nav>\
                    <nav><h2>Table of contents</h2><ul><li>Summary</li></ul></nav>\
                    <main><h2 id=\"a\">Armed policing</h2></main></body>";
        assert_eq!(
            to_text(page),
            "Contents\n\n1. Armed policing\n\nTable of contents\n\n- Summary\n\nArmed policing\n"
        );
    }

    #[test]
    fn content_headers_are_kept_and_hidden_text_is_not() {
        let page = "<body><article><header><h1>Title</h1><p>Published on: 14 June 2023</p></header>\
                    <p hidden>secret</p><p aria-hidden=\"true\">icon</p><p>Body</p></article></body>";
        assert_eq!(
            to_text(page),
            "Title\n\nPublished on: 14 June 2023\n\nBody\n"
        );
    }

    #[test]
    fn malformed_markup_reads_as_a_browser_reads_it() {
        let text = to_text("<p>One<p>Two<ul><li>a<li>b</ul><table><tr><td>x<td>y</table>");
        assert_eq!(text, "One\n\nTwo\n\n- a\n- b\n\nx\ty\n");
    }

    #[test]
    fn chrome_is_told_by_whole_words() {
        assert!(marks("govuk-skip-link", "skip-link"));
        assert!(marks("cookie-banner__accept", "cookie"));
        assert!(marks("breadcrumbs", "breadcrumb"));
        assert!(marks("Site-Header", "site-header"));
        assert!(!marks("shared-content", "share"));
        assert!(!marks("menus-and-more", "menu-and"));
        assert_eq!(
            to_text(
                "<main><div class=\"shared-content\"><p>Kept</p></div><div class=\"share-links\">Share</div></main>"
            ),
            "Kept\n"
        );
    }

    #[test]
    fn nesting_is_counted_from_the_tags() {
        let deep = format!("{}x{}", "<div>".repeat(600), "</div>".repeat(600));
        let err = check_nesting(&deep).unwrap_err();
        assert!(err.to_string().contains("512"), "{err}");
        // Siblings, void and implicitly closed elements, comments and
        // scripts do not deepen a page.
        let wide = "<div>x</div>".repeat(5_000)
            + &"<p>a<br><li>b<img src=x><td>c".repeat(5_000)
            + &"<span/>".repeat(5_000)
            + "<!-- <div><div><div> -->"
            + &format!("<script>{}</script>", "<div>".repeat(5_000));
        assert!(check_nesting(&wide).is_ok());
        assert!(check_nesting("<div><div></div></div>< notatag <<<").is_ok());
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let depth = 1_000;
        let page = format!("{}deep{}", "<div>".repeat(depth), "</div>".repeat(depth));
        assert_eq!(to_text(&page), "deep\n");
        let page = format!("{}deep", "<span><ul><li>".repeat(500));
        assert!(to_text(&page).contains("deep"));
    }
}
