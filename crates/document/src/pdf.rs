//! PDF: the glyphs and their positions come from `pdf-extract` (over
//! `lopdf`); reading them as a report is ours, because a PDF has no
//! paragraphs, lists or tables, only glyphs placed on pages.
//!
//! 1. Glyphs are grouped into lines by baseline, and within a line into
//!    segments wherever the horizontal gap is wider than a font size (a
//!    table's column gap; a word gap is a third of that). A list marker
//!    standing apart from its item (`•`, `1.`) stays with it.
//! 2. A page number alone at the top or bottom of a page is dropped.
//! 3. Lines become blocks: a new block starts where the gap between
//!    baselines is wider than 1.7 font sizes (paragraph spacing; ordinary
//!    leading is 1.2–1.5), where the font size changes (a heading), and at a
//!    list marker.
//! 4. A block whose lines all hold one segment is prose: its lines are joined
//!    with spaces (a line ending in `-` before a lower-case letter is joined
//!    without one). A prose block cut by a page break (the last on its page,
//!    eight words or more, no closing punctuation) continues on the next.
//! 5. A block with a line of several segments is a table row; consecutive
//!    rows form a table whose columns are the left edges its segments share,
//!    and each segment (a wrapped cell's later lines too) goes to its column,
//!    so empty cells stay empty and each row is one line of tab-separated
//!    cells, as in the text export.
//!
//! Limits (also in the crate documentation): no text in scanned pages,
//! multi-column page layouts interleave, tables need a gap between rows and
//! left-aligned columns, text in figures is read as loose lines, and glyphs
//! of fonts without a Unicode mapping come out wrong. `pdf-extract` may
//! panic on malformed files; that is caught and reported as an unreadable
//! PDF. It follows drawings (form XObjects) by recursion, so a PDF whose
//! drawings draw themselves, or nest deeper than 32, is refused before
//! extraction ([`check_drawings`]). Compressed streams are inflated whole:
//! the input limit bounds the file, not what its streams inflate to.

use std::panic::{AssertUnwindSafe, catch_unwind};

use pdf_extract::{MediaBox, OutputDev, OutputError, Transform};

use crate::DocumentError;

/// Most glyphs read from one document (a 100-page report has about 300,000).
const MAX_GLYPHS: usize = 20_000_000;

/// The document's text as the parser reads it.
pub(crate) fn to_text(bytes: &[u8]) -> Result<String, DocumentError> {
    let pages = catch_unwind(AssertUnwindSafe(|| glyphs(bytes))).map_err(|panic| {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the extractor failed".to_string());
        DocumentError::Pdf(format!("malformed PDF ({reason})"))
    })??;
    Ok(layout(pages))
}

/// One glyph, in points from the page's top-left corner.
#[derive(Debug, Clone)]
struct Glyph {
    x: f64,
    /// Baseline, growing downwards.
    y: f64,
    /// Where the glyph's advance ends.
    end: f64,
    size: f64,
    text: String,
}

#[derive(Debug, Default)]
struct Page {
    height: f64,
    glyphs: Vec<Glyph>,
}

/// The glyphs of every page.
fn glyphs(bytes: &[u8]) -> Result<Vec<Page>, DocumentError> {
    let document = pdf_extract::Document::load_mem(bytes)
        .map_err(|e| DocumentError::Pdf(format!("not a readable PDF ({e})")))?;
    if document.is_encrypted() {
        return Err(DocumentError::Pdf(
            "the PDF is encrypted; save an unprotected copy".to_string(),
        ));
    }
    check_drawings(&document)?;
    let mut collector = Collector::default();
    match pdf_extract::output_doc(&document, &mut collector) {
        Ok(()) => {}
        Err(_) if collector.overflow => {
            return Err(DocumentError::Pdf(format!(
                "more than {MAX_GLYPHS} characters of text"
            )));
        }
        Err(e) => return Err(DocumentError::Pdf(e.to_string())),
    }
    Ok(collector.pages)
}

/// Deepest nesting of drawings (form XObjects) accepted.
const MAX_FORM_DEPTH: usize = 32;

/// Refuses a PDF whose drawings (form XObjects) draw themselves, directly or
/// through others, or nest deeper than [`MAX_FORM_DEPTH`]: the extractor
/// follows them by recursion, which would never end. A form without its own
/// resources uses those of whatever draws it, so it may draw anything listed
/// beside it; that is counted as drawing them.
fn check_drawings(document: &pdf_extract::Document) -> Result<(), DocumentError> {
    use pdf_extract::{Object, ObjectId};
    use std::collections::{BTreeMap, BTreeSet};

    let resolve = |object: &Object| -> Option<Object> {
        match object {
            Object::Reference(id) => document.objects.get(id).cloned(),
            other => Some(other.clone()),
        }
    };
    // The XObjects a resources dictionary lists.
    let listed = |resources: &Object| -> Vec<ObjectId> {
        let Some(Object::Dictionary(resources)) = resolve(resources) else {
            return Vec::new();
        };
        let Some(xobjects) = resources.get(b"XObject").ok().and_then(resolve) else {
            return Vec::new();
        };
        let Object::Dictionary(xobjects) = xobjects else {
            return Vec::new();
        };
        xobjects
            .iter()
            .filter_map(|(_, v)| v.as_reference().ok())
            .collect()
    };
    let mut own: BTreeMap<ObjectId, Vec<ObjectId>> = BTreeMap::new();
    let mut inheriting: BTreeSet<ObjectId> = BTreeSet::new();
    let mut siblings: Vec<Vec<ObjectId>> = Vec::new();
    for (id, object) in &document.objects {
        let dict = match object {
            Object::Stream(stream) => &stream.dict,
            Object::Dictionary(dict) => dict,
            _ => continue,
        };
        let is_form = dict
            .get(b"Subtype")
            .ok()
            .and_then(|s| s.as_name().ok())
            .is_some_and(|s| s == b"Form");
        let draws = match object {
            Object::Stream(stream) if is_form => draws_anything(stream),
            _ => false,
        };
        if is_form && !draws {
            // A form whose content uses no `Do` draws no other drawing.
            siblings.push(Vec::new());
            continue;
        }
        match dict.get(b"Resources") {
            Ok(resources) => {
                let refs = listed(resources);
                if is_form {
                    own.insert(*id, refs.clone());
                }
                siblings.push(refs);
            }
            Err(_) if is_form => {
                inheriting.insert(*id);
            }
            Err(_) => {}
        }
    }
    if own.is_empty() && inheriting.is_empty() {
        return Ok(());
    }
    let mut edges: BTreeMap<ObjectId, BTreeSet<ObjectId>> = BTreeMap::new();
    for (id, refs) in &own {
        edges.entry(*id).or_default().extend(refs);
    }
    for refs in &siblings {
        for id in refs.iter().filter(|r| inheriting.contains(r)) {
            edges.entry(*id).or_default().extend(refs);
        }
    }
    // Depth-first, without recursion: colour 1 = on the path, 2 = done.
    let mut colour: BTreeMap<ObjectId, u8> = BTreeMap::new();
    for start in edges.keys() {
        if colour.contains_key(start) {
            continue;
        }
        let mut stack: Vec<(ObjectId, Vec<ObjectId>)> =
            vec![(*start, edges[start].iter().copied().collect())];
        colour.insert(*start, 1);
        while let Some((node, pending)) = stack.last_mut() {
            let node = *node;
            match pending.pop() {
                Some(next) => match colour.get(&next) {
                    Some(1) => {
                        return Err(DocumentError::Pdf(
                            "its drawings refer to themselves in a loop; it cannot be read"
                                .to_string(),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        colour.insert(next, 1);
                        let children = edges
                            .get(&next)
                            .map(|e| e.iter().copied().collect())
                            .unwrap_or_default();
                        stack.push((next, children));
                        if stack.len() > MAX_FORM_DEPTH {
                            return Err(DocumentError::Pdf(format!(
                                "its drawings nest more than {MAX_FORM_DEPTH} deep; it cannot be read"
                            )));
                        }
                    }
                },
                None => {
                    colour.insert(node, 2);
                    stack.pop();
                }
            }
        }
    }
    Ok(())
}

/// Whether a content stream uses the `Do` operator (draws an XObject).
/// Content that cannot be decompressed counts as drawing.
fn draws_anything(stream: &pdf_extract::Stream) -> bool {
    let content = stream
        .decompressed_content()
        .unwrap_or_else(|_| stream.content.clone());
    content
        .split(|b| {
            b.is_ascii_whitespace() || matches!(b, b'/' | b'[' | b']' | b'(' | b')' | b'<' | b'>')
        })
        .any(|token| token == b"Do")
}

#[derive(Default)]
struct Collector {
    pages: Vec<Page>,
    count: usize,
    overflow: bool,
}

impl OutputDev for Collector {
    fn begin_page(
        &mut self,
        _page_num: u32,
        media_box: &MediaBox,
        _art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        let height = media_box.ury - media_box.lly;
        self.pages.push(Page {
            height: if height.is_finite() {
                height.abs()
            } else {
                0.0
            },
            glyphs: Vec::new(),
        });
        Ok(())
    }

    fn end_page(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        _spacing: f64,
        font_size: f64,
        text: &str,
    ) -> Result<(), OutputError> {
        self.count += 1;
        if self.count > MAX_GLYPHS {
            self.overflow = true;
            return Err(OutputError::FormatError(std::fmt::Error));
        }
        if self.pages.is_empty() {
            self.pages.push(Page::default());
        }
        let Some(page) = self.pages.last_mut() else {
            return Ok(());
        };
        let scale = (trm.m11 * trm.m22 - trm.m12 * trm.m21).abs().sqrt();
        let size = font_size * scale;
        let x = trm.m31;
        let y = page.height - trm.m32;
        let end = x + width * size;
        if [size, x, y, end].iter().all(|v| v.is_finite()) && size > 0.0 && !text.is_empty() {
            page.glyphs.push(Glyph {
                x,
                y,
                end,
                size,
                text: text.to_string(),
            });
        }
        Ok(())
    }

    fn begin_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

/// A run of glyphs on one line with no wide gap in it.
#[derive(Debug, Clone)]
struct Segment {
    x: f64,
    text: String,
}

#[derive(Debug, Clone)]
struct Line {
    y: f64,
    size: f64,
    segments: Vec<Segment>,
}

impl Line {
    fn starts_item(&self) -> bool {
        self.segments
            .first()
            .is_some_and(|s| is_item_start(&s.text))
    }
}

#[derive(Debug, Clone)]
struct Block {
    page: usize,
    lines: Vec<Line>,
}

impl Block {
    fn is_row(&self) -> bool {
        self.lines.iter().any(|l| l.segments.len() > 1)
    }

    fn prose(&self) -> String {
        let mut text = String::new();
        for line in &self.lines {
            for segment in &line.segments {
                join_prose(&mut text, &segment.text);
            }
        }
        text
    }
}

/// Appends `next` to running prose: a space between, none after a
/// hyphen that ends a line before a lower-case letter.
fn join_prose(text: &mut String, next: &str) {
    let next = next.trim();
    if next.is_empty() {
        return;
    }
    if !text.is_empty() {
        let hyphenated = text.ends_with('-') && next.chars().next().is_some_and(char::is_lowercase);
        if !hyphenated {
            text.push(' ');
        }
    }
    text.push_str(next);
}

/// The pages' glyphs as the parser's text (see the module documentation).
fn layout(pages: Vec<Page>) -> String {
    let mut blocks: Vec<Block> = Vec::new();
    for (index, page) in pages.into_iter().enumerate() {
        let lines = drop_page_numbers(lines(page.glyphs), page.height);
        let mut current: Option<Block> = None;
        for line in lines {
            let starts_new = match current.as_ref().and_then(|b| b.lines.last()) {
                None => true,
                Some(previous) => {
                    let size = previous.size.max(line.size);
                    line.y - previous.y > 1.7 * size
                        || (line.size - previous.size).abs() > 0.15 * size
                        || line.starts_item()
                }
            };
            if starts_new {
                if let Some(block) = current.take() {
                    blocks.push(block);
                }
                current = Some(Block {
                    page: index,
                    lines: vec![line],
                });
            } else if let Some(block) = current.as_mut() {
                block.lines.push(line);
            }
        }
        if let Some(block) = current {
            blocks.push(block);
        }
    }
    let blocks = join_across_pages(blocks);
    write(&blocks)
}

/// Groups a page's glyphs into lines and segments.
fn lines(mut glyphs: Vec<Glyph>) -> Vec<Line> {
    glyphs.sort_by(|a, b| a.y.total_cmp(&b.y).then(a.x.total_cmp(&b.x)));
    let mut rows: Vec<Vec<Glyph>> = Vec::new();
    for glyph in glyphs {
        match rows.last_mut() {
            Some(row)
                if row
                    .first()
                    .is_some_and(|first| (glyph.y - first.y).abs() <= 0.4 * first.size) =>
            {
                row.push(glyph);
            }
            _ => rows.push(vec![glyph]),
        }
    }
    rows.into_iter()
        .filter_map(|mut row| {
            row.sort_by(|a, b| a.x.total_cmp(&b.x));
            let y = row.first()?.y;
            let size = row.iter().map(|g| g.size).fold(0.0, f64::max);
            let segments = segments(&row, size);
            (!segments.is_empty()).then_some(Line { y, size, segments })
        })
        .collect()
}

/// Splits a line's glyphs (sorted by x) at wide gaps.
fn segments(row: &[Glyph], size: f64) -> Vec<Segment> {
    let mut segments: Vec<Segment> = Vec::new();
    let mut end = f64::NEG_INFINITY;
    let mut last_x = f64::NEG_INFINITY;
    let mut last_text = "";
    let mut pending_space = false;
    for glyph in row {
        if glyph.text.trim().is_empty() {
            pending_space = true;
            continue;
        }
        // Fake bold: the same glyph printed twice at nearly one place.
        if glyph.text == last_text && (glyph.x - last_x).abs() < 0.1 * size {
            continue;
        }
        let gap = glyph.x - end;
        match segments.last_mut() {
            Some(segment) if gap <= size => {
                if pending_space || gap > 0.15 * size {
                    segment.text.push(' ');
                }
                segment.text.push_str(&glyph.text);
            }
            _ => segments.push(Segment {
                x: glyph.x,
                text: glyph.text.clone(),
            }),
        }
        pending_space = false;
        end = glyph.end.max(glyph.x);
        last_x = glyph.x;
        last_text = &glyph.text;
    }
    // A list marker set apart from its item stays with it.
    if segments.len() > 1 && is_marker(&segments[0].text) {
        let item = segments.remove(1);
        segments[0].text.push(' ');
        segments[0].text.push_str(&item.text);
    }
    for segment in &mut segments {
        let trimmed = segment.text.trim();
        if trimmed.len() != segment.text.len() {
            segment.text = trimmed.to_string();
        }
    }
    segments
}

/// A bullet or a list number on its own: `•`, `-`, `1.`, `a)`.
fn is_marker(text: &str) -> bool {
    let text = text.trim();
    if matches!(text, "•" | "▪" | "◦" | "·" | "–" | "-" | "*") {
        return true;
    }
    let body = text.strip_suffix(['.', ')']).unwrap_or("");
    !body.is_empty()
        && body.len() <= 3
        && (body.bytes().all(|b| b.is_ascii_digit())
            || body.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Whether a line's text starts a list item: a bullet or a list number, then
/// text. (A dash is not enough: wrapped prose can start a line with one.)
fn is_item_start(text: &str) -> bool {
    let mut words = text.split_whitespace();
    words
        .next()
        .is_some_and(|w| is_marker(w) && !matches!(w, "–" | "-" | "*"))
        && words.next().is_some()
}

/// Drops a page number standing alone at the top or bottom of a page.
fn drop_page_numbers(mut lines: Vec<Line>, height: f64) -> Vec<Line> {
    let is_number = |line: &Line| {
        let [segment] = line.segments.as_slice() else {
            return false;
        };
        let lower = segment.text.to_lowercase();
        let rest = lower.strip_prefix("page ").unwrap_or(&lower);
        let number = rest.split(" of ").next().unwrap_or(rest);
        !number.is_empty() && number.len() <= 4 && number.bytes().all(|b| b.is_ascii_digit())
    };
    if height > 0.0 {
        if lines
            .last()
            .is_some_and(|l| l.y > 0.85 * height && is_number(l))
        {
            lines.pop();
        }
        if lines
            .first()
            .is_some_and(|l| l.y < 0.15 * height && is_number(l))
        {
            lines.remove(0);
        }
    }
    lines
}

/// Joins a prose block cut by a page break to its continuation.
fn join_across_pages(blocks: Vec<Block>) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::with_capacity(blocks.len());
    for block in blocks {
        if let Some(previous) = out.last_mut() {
            let cut = previous.page + 1 == block.page
                && !previous.is_row()
                && !block.is_row()
                && !block.lines.first().is_some_and(Line::starts_item)
                && {
                    let text = previous.prose();
                    text.split_whitespace().count() >= 8
                        && !text.ends_with(['.', ':', ';', '?', '!'])
                };
            let first_on_page = previous.page != block.page;
            if cut && first_on_page {
                previous.lines.extend(block.lines);
                // Later blocks of this page must not join it again.
                previous.page = block.page;
                continue;
            }
        }
        out.push(block);
    }
    out
}

/// Writes blocks: prose one line each with blank lines between, list items
/// and table rows on consecutive lines.
fn write(blocks: &[Block]) -> String {
    let mut out = String::new();
    let mut index = 0;
    let mut previous_item = false;
    let rows: Vec<bool> = (0..blocks.len()).map(|i| row_like(blocks, i)).collect();
    while index < blocks.len() {
        let block = &blocks[index];
        if rows[index] {
            let start = index;
            while index < blocks.len() && rows[index] {
                index += 1;
            }
            separate(&mut out);
            for row in table(&blocks[start..index]) {
                out.push_str(&row);
                out.push('\n');
            }
            previous_item = false;
            continue;
        }
        let text = block.prose();
        let item = block.lines.first().is_some_and(Line::starts_item);
        if !(item && previous_item) {
            separate(&mut out);
        }
        if item {
            let mut words = text.splitn(2, char::is_whitespace);
            let marker = words.next().unwrap_or_default();
            let rest = words.next().unwrap_or_default().trim_start();
            if marker.ends_with(['.', ')']) {
                out.push_str(marker);
                out.push(' ');
            } else {
                out.push_str("- ");
            }
            out.push_str(rest);
        } else {
            out.push_str(&text);
        }
        out.push('\n');
        previous_item = item;
        index += 1;
    }
    out
}

/// Whether block `i` is a table row: it has a line of several cells, or it
/// is one short line next to such a row, indented to one of its later
/// columns (a heading cell over an empty first column).
fn row_like(blocks: &[Block], i: usize) -> bool {
    let Some(block) = blocks.get(i) else {
        return false;
    };
    if block.is_row() {
        return true;
    }
    let [line] = block.lines.as_slice() else {
        return false;
    };
    let Some(x) = line.segments.first().map(|s| s.x) else {
        return false;
    };
    let neighbours = [i.checked_sub(1), i.checked_add(1)];
    neighbours.into_iter().flatten().any(|n| {
        blocks.get(n).is_some_and(|other| {
            other.is_row() && {
                let left = other
                    .lines
                    .iter()
                    .flat_map(|l| l.segments.iter().map(|s| s.x))
                    .fold(f64::INFINITY, f64::min);
                x > left + 2.0 * line.size
            }
        })
    })
}

/// A blank line before the next block (none at the start).
fn separate(out: &mut String) {
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
}

/// Consecutive row blocks as tab-separated lines, cells placed in the
/// columns the rows share.
fn table(rows: &[Block]) -> Vec<String> {
    let tolerance = rows
        .iter()
        .flat_map(|b| b.lines.iter().map(|l| l.size))
        .fold(0.0, f64::max)
        * 0.6;
    let mut starts: Vec<f64> = rows
        .iter()
        .flat_map(|b| b.lines.iter().flat_map(|l| l.segments.iter().map(|s| s.x)))
        .collect();
    starts.sort_by(f64::total_cmp);
    let mut columns: Vec<f64> = Vec::new();
    for x in starts {
        if columns.last().is_none_or(|&c| x > c + tolerance) {
            columns.push(x);
        }
    }
    rows.iter()
        .map(|block| {
            let mut cells = vec![String::new(); columns.len().max(1)];
            for line in &block.lines {
                for segment in &line.segments {
                    let column = columns
                        .iter()
                        .rposition(|&c| c <= segment.x + tolerance)
                        .unwrap_or(0);
                    if let Some(cell) = cells.get_mut(column) {
                        join_prose(cell, &segment.text);
                    }
                }
            }
            while cells.len() > 1 && cells.last().is_some_and(String::is_empty) {
                cells.pop();
            }
            cells.join("\t")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glyph_run(x: f64, y: f64, text: &str, size: f64) -> Vec<Glyph> {
        let advance = 0.5 * size;
        let mut glyphs = Vec::new();
        let mut at = x;
        for c in text.chars() {
            glyphs.push(Glyph {
                x: at,
                y,
                end: at + advance,
                size,
                text: c.to_string(),
            });
            at += advance;
        }
        glyphs
    }

    #[test]
    fn paragraphs_items_rows_and_page_numbers() {
        let mut glyphs = Vec::new();
        glyphs.extend(glyph_run(50.0, 100.0, "Areas for improvement", 12.0));
        glyphs.extend(glyph_run(
            50.0,
            130.0,
            "The force needs to develop a cyber",
            10.0,
        ));
        glyphs.extend(glyph_run(50.0, 144.0, "strategy and Delivery plan.", 10.0));
        glyphs.extend(glyph_run(55.0, 170.0, "•", 10.0));
        glyphs.extend(glyph_run(72.0, 170.0, "One item", 10.0));
        glyphs.extend(glyph_run(55.0, 184.0, "•", 10.0));
        glyphs.extend(glyph_run(72.0, 184.0, "Two", 10.0));
        glyphs.extend(glyph_run(200.0, 210.0, "Effectiveness", 9.0));
        glyphs.extend(glyph_run(50.0, 230.0, "Investigating crime", 9.0));
        glyphs.extend(glyph_run(200.0, 230.0, "Good", 9.0));
        glyphs.extend(glyph_run(50.0, 243.0, "and more", 9.0));
        glyphs.extend(glyph_run(300.0, 800.0, "3", 9.0));
        let text = layout(vec![Page {
            height: 842.0,
            glyphs,
        }]);
        assert_eq!(
            text,
            "Areas for improvement\n\n\
             The force needs to develop a cyber strategy and Delivery plan.\n\n\
             - One item\n- Two\n\n\
             \tEffectiveness\n\
             Investigating crime and more\tGood\n"
        );
    }

    #[test]
    fn a_paragraph_cut_by_a_page_break_continues() {
        let first = glyph_run(
            50.0,
            700.0,
            "The force has since made investments and it can now",
            10.0,
        );
        let second = glyph_run(50.0, 80.0, "Comprehensively analyse data.", 10.0);
        let heading = glyph_run(50.0, 760.0, "Investigating crime", 12.0);
        let text = layout(vec![
            Page {
                height: 842.0,
                glyphs: [first, heading].concat(),
            },
            Page {
                height: 842.0,
                glyphs: second,
            },
        ]);
        assert_eq!(
            text,
            "The force has since made investments and it can now\n\nInvestigating crime\n\nComprehensively analyse data.\n"
        );
        let text = layout(vec![
            Page {
                height: 842.0,
                glyphs: glyph_run(
                    50.0,
                    700.0,
                    "The force has since made investments and it can now",
                    10.0,
                ),
            },
            Page {
                height: 842.0,
                glyphs: glyph_run(50.0, 80.0, "Comprehensively analyse data.", 10.0),
            },
        ]);
        assert_eq!(
            text,
            "The force has since made investments and it can now Comprehensively analyse data.\n"
        );
    }

    /// A one-page PDF whose page draws form `F1`; `form` makes the form's
    /// content and resources.
    fn pdf_with_form(self_referencing: bool) -> Vec<u8> {
        use pdf_extract::{Dictionary, Document, Object, Stream};
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let form_id = doc.new_object_id();
        let mut xobjects = Dictionary::new();
        xobjects.set("F1", Object::Reference(form_id));
        let mut resources = Dictionary::new();
        resources.set("XObject", Object::Dictionary(xobjects));
        let mut form = Dictionary::new();
        form.set("Type", Object::Name(b"XObject".to_vec()));
        form.set("Subtype", Object::Name(b"Form".to_vec()));
        form.set(
            "BBox",
            Object::Array(vec![0.into(), 0.into(), 100.into(), 100.into()]),
        );
        let form_content: &[u8] = if self_referencing {
            form.set("Resources", Object::Dictionary(resources.clone()));
            b"/F1 Do"
        } else {
            b""
        };
        doc.objects.insert(
            form_id,
            Object::Stream(Stream::new(form, form_content.to_vec())),
        );
        let content_id = doc.add_object(Stream::new(Dictionary::new(), b"/F1 Do".to_vec()));
        let mut page = Dictionary::new();
        page.set("Type", Object::Name(b"Page".to_vec()));
        page.set("Parent", Object::Reference(pages_id));
        page.set("Resources", Object::Dictionary(resources));
        page.set("Contents", Object::Reference(content_id));
        page.set(
            "MediaBox",
            Object::Array(vec![0.into(), 0.into(), 612.into(), 792.into()]),
        );
        let page_id = doc.add_object(page);
        let mut pages = Dictionary::new();
        pages.set("Type", Object::Name(b"Pages".to_vec()));
        pages.set("Kids", Object::Array(vec![Object::Reference(page_id)]));
        pages.set("Count", Object::Integer(1));
        doc.objects.insert(pages_id, Object::Dictionary(pages));
        let mut catalog = Dictionary::new();
        catalog.set("Type", Object::Name(b"Catalog".to_vec()));
        catalog.set("Pages", Object::Reference(pages_id));
        let catalog_id = doc.add_object(catalog);
        doc.trailer.set("Root", Object::Reference(catalog_id));
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).expect("saves");
        bytes
    }

    #[test]
    fn a_drawing_that_draws_itself_is_refused_not_followed_forever() {
        let err = to_text(&pdf_with_form(true)).unwrap_err();
        assert!(err.to_string().contains("loop"), "{err}");
        // The same page with a form that draws nothing reads (no text).
        assert_eq!(to_text(&pdf_with_form(false)).unwrap(), "");
    }

    #[test]
    fn markers() {
        assert!(is_marker("•"));
        assert!(is_marker("12."));
        assert!(is_marker("a)"));
        assert!(!is_marker("2019."));
        assert!(!is_marker("Good"));
        assert!(is_item_start("• The force"));
        assert!(!is_item_start("•"));
    }
}
