//! Text handling: sentence splitting with line numbers, normalisation,
//! tokenising, a Porter stemmer, the domain's stop words, and the small
//! normalisers used to compare question names, report types and years.
//!
//! Everything here is pure and total: any `&str` is accepted (non-ASCII words
//! are kept but never stemmed) and nothing panics.

use std::collections::HashSet;

/// A sentence of a source document, verbatim, with its 1-based inclusive line span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    /// The sentence exactly as written (markup kept), with runs of whitespace
    /// that crossed a line break joined by one space.
    pub text: String,
    pub line_start: u32,
    pub line_end: u32,
}

/// A document split into sentences.
///
/// Each non-blank line starts a new paragraph unless it continues a sentence
/// broken by a page break (the previous paragraph did not end with
/// punctuation and this line starts with a lower-case letter). Bullet lines
/// (`- …`) are always paragraphs of their own.
#[derive(Debug, Clone, Default)]
pub struct Document {
    pub sentences: Vec<Sentence>,
}

impl Document {
    pub fn parse(text: &str) -> Document {
        let mut sentences = Vec::new();
        // The paragraph being built: its text and, for each byte offset where a
        // line's text begins, the line number.
        let mut buf = String::new();
        let mut starts: Vec<(usize, u32)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let is_bullet = line.starts_with("- ") || line.starts_with("• ");
            let continues = !buf.is_empty()
                && !is_bullet
                && !buf.ends_with(['.', '!', '?', ':', ';'])
                && line.chars().next().is_some_and(|c| c.is_lowercase());
            if continues {
                buf.push(' ');
            } else {
                flush(&buf, &starts, &mut sentences);
                buf.clear();
                starts.clear();
            }
            starts.push((buf.len(), line_no));
            buf.push_str(line);
        }
        flush(&buf, &starts, &mut sentences);
        Document { sentences }
    }
}

fn flush(buf: &str, starts: &[(usize, u32)], out: &mut Vec<Sentence>) {
    let line_at = |offset: usize| -> u32 {
        starts
            .iter()
            .take_while(|(o, _)| *o <= offset)
            .last()
            .map(|(_, l)| *l)
            .unwrap_or(0)
    };
    for (a, b) in sentence_spans(buf) {
        let text = buf[a..b].trim();
        if text.is_empty() {
            continue;
        }
        out.push(Sentence {
            text: text.to_string(),
            line_start: line_at(a),
            line_end: line_at(b.saturating_sub(1).max(a)),
        });
    }
}

const ABBREVIATIONS: &[&str] = &[
    "e.g", "i.e", "eg", "ie", "etc", "mr", "mrs", "ms", "dr", "no", "st", "vs", "cf", "para",
];

/// Byte spans of the sentences of `text` (a single paragraph).
///
/// A sentence ends at `.`, `!` or `?` followed by white space and then an
/// upper-case letter, a digit, an opening bracket or quote, a bullet, or the
/// end of the text; common abbreviations do not end a sentence.
pub fn sentence_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (k, &(i, c)) in chars.iter().enumerate() {
        if !matches!(c, '.' | '!' | '?') {
            continue;
        }
        let end = i + c.len_utf8();
        // What follows: white space then the next visible character.
        let mut j = k + 1;
        // Allow a closing quote or bracket straight after the stop.
        while j < chars.len() && matches!(chars[j].1, '"' | '\'' | ')' | '’' | '”') {
            j += 1;
        }
        let end = if j > k + 1 {
            chars[j - 1].0 + chars[j - 1].1.len_utf8()
        } else {
            end
        };
        let mut saw_space = false;
        while j < chars.len() && chars[j].1.is_whitespace() {
            saw_space = true;
            j += 1;
        }
        let boundary = if j >= chars.len() {
            true
        } else {
            let n = chars[j].1;
            saw_space
                && (n.is_uppercase()
                    || n.is_ascii_digit()
                    || matches!(n, '[' | '(' | '"' | '‘' | '“' | '-' | '•' | '£'))
        };
        if !boundary || c != '.' {
            if boundary {
                spans.push((start, end));
                start = end;
            }
            continue;
        }
        // Is the word before the full stop an abbreviation?
        let before = &text[start..i];
        let word = before
            .rsplit(|ch: char| ch.is_whitespace() || ch == '(')
            .next()
            .unwrap_or("")
            .to_lowercase();
        if ABBREVIATIONS.contains(&word.as_str()) {
            continue;
        }
        spans.push((start, end));
        start = end;
    }
    if start < text.len() && !text[start..].trim().is_empty() {
        spans.push((start, text.len()));
    }
    spans
}

/// Splits free text (possibly several lines) into verbatim sentences.
pub fn split_sentences(text: &str) -> Vec<String> {
    Document::parse(text)
        .sentences
        .into_iter()
        .map(|s| s.text)
        .collect()
}

/// Replaces Markdown links `[label](target)` by their label.
pub fn strip_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find("](") {
            Some(close) if !after[..close].contains('[') => {
                let label = &after[..close];
                let tail = &after[close + 2..];
                match tail.find(')') {
                    Some(end) => {
                        out.push_str(label);
                        rest = &tail[end + 1..];
                    }
                    None => {
                        out.push('[');
                        rest = after;
                    }
                }
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Lower-cases, removes markup, normalises apostrophes and collapses every
/// run of non-alphanumeric characters to one space. Used to compare
/// sentences whatever their layout.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in strip_markup(text).chars() {
        if c.is_alphanumeric() {
            for l in c.to_lowercase() {
                out.push(l);
            }
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    out.trim_end().to_string()
}

/// Drops the type of an earlier report where a sentence cites it ("our 2017
/// effectiveness report", "the 2016 effectiveness inspection", "our Crime Data
/// Integrity inspection report"), so that "effectiveness" there does not
/// count as a word about the item.
pub fn remove_report_references(text: &str) -> String {
    const KINDS: &[&str] = &[
        "effectiveness",
        "efficiency",
        "legitimacy",
        "peel",
        "integrity",
    ];
    const NOUNS: &[&str] = &["report", "reports", "inspection", "inspections"];
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let bare = |t: &str| {
        strip_markup(t)
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase()
    };
    let mut keep = vec![true; tokens.len()];
    for i in 0..tokens.len() {
        let word = bare(tokens[i]);
        let next = tokens.get(i + 1).map(|t| bare(t)).unwrap_or_default();
        let next2 = tokens.get(i + 2).map(|t| bare(t)).unwrap_or_default();
        if KINDS.contains(&word.as_str())
            && (NOUNS.contains(&next.as_str()) || NOUNS.contains(&next2.as_str()))
        {
            keep[i] = false;
            if word == "integrity" {
                for back in 1..=2 {
                    if i >= back && matches!(bare(tokens[i - back]).as_str(), "crime" | "data") {
                        keep[i - back] = false;
                    }
                }
            }
        }
    }
    tokens
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(t, _)| *t)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lower-case word tokens: markup removed, possessive `'s` dropped, hyphenated
/// words split ("body-worn" → "body", "worn"), numbers and one-letter tokens
/// dropped.
pub fn tokenize(text: &str) -> Vec<String> {
    let cleaned = strip_markup(text).replace(['’', '‘'], "'");
    let mut out = Vec::new();
    for raw in cleaned.split(|c: char| !(c.is_alphanumeric() || c == '\'')) {
        let mut w = raw.trim_matches('\'').to_lowercase();
        if let Some(stripped) = w.strip_suffix("'s") {
            w = stripped.to_string();
        }
        let w: String = w.chars().filter(|c| *c != '\'').collect();
        if w.chars().count() < 2 || w.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        out.push(w);
    }
    out
}

/// English function words plus the words every inspection report uses about
/// every item, which say nothing about what an item is about.
pub const STOP_WORDS: &[&str] = &[
    // English
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "don",
    "down",
    "during",
    "each",
    "either",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "however",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "may",
    "me",
    "might",
    "more",
    "most",
    "much",
    "must",
    "my",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "out",
    "over",
    "own",
    "same",
    "she",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "upon",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "within",
    "would",
    "you",
    "your",
    "yet",
    "still",
    "since",
    "well",
    "whether",
    "doesn",
    "didn",
    "isn",
    "wasn",
    "hasn",
    "haven",
    "won",
    "shouldn",
    "wouldn",
    "aren",
    "weren",
    "via",
    "per",
    "including",
    "particularly",
    "especially",
    "already",
    // months
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    // the inspected body and the inspectorate, generically
    "force",
    "forces",
    "police",
    "policing",
    "constabulary",
    "service",
    "services",
    "fire",
    "rescue",
    "organisation",
    "hmicfrs",
    "hmic",
    "inspectorate",
    "we",
    "us",
    // the language of findings and follow-ups themselves
    "should",
    "ensure",
    "ensuring",
    "ensures",
    "improve",
    "improves",
    "improved",
    "improving",
    "improvement",
    "improvements",
    "need",
    "needs",
    "needed",
    "make",
    "makes",
    "making",
    "sure",
    "area",
    "areas",
    "said",
    "say",
    "says",
    "report",
    "reports",
    "inspection",
    "inspections",
    "inspected",
    "recommend",
    "recommended",
    "recommendation",
    "recommendations",
    "year",
    "years",
    "last",
    "previous",
    "concern",
    "cause",
    "causes",
    "found",
    "find",
    "identified",
    "noted",
    "set",
    "judged",
    "progress",
    "made",
    "now",
    "take",
    "takes",
    "taken",
    "steps",
    "continue",
    "continues",
    "first",
    "second",
];

/// Tokeniser, stop-word filter and stemmer, with optional extra stop words
/// (the organisation's own name, for instance).
#[derive(Debug, Clone)]
pub struct Analyzer {
    stop: HashSet<String>,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer::new(std::iter::empty::<&str>())
    }
}

impl Analyzer {
    /// `extra` words are tokenised, so "Hertfordshire Constabulary" adds both words.
    pub fn new<I, S>(extra: I) -> Analyzer
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut stop: HashSet<String> = STOP_WORDS.iter().map(|w| w.to_string()).collect();
        for phrase in extra {
            for w in tokenize(phrase.as_ref()) {
                stop.insert(w);
            }
        }
        let stemmed: Vec<String> = stop.iter().map(|w| stem(w)).collect();
        stop.extend(stemmed);
        Analyzer { stop }
    }

    pub fn is_stop(&self, word: &str) -> bool {
        self.stop.contains(&word.to_lowercase())
    }

    /// Content terms: tokens that are not stop words, stemmed.
    pub fn terms(&self, text: &str) -> Vec<String> {
        tokenize(text)
            .into_iter()
            .filter(|w| !self.stop.contains(w))
            .map(|w| stem(&w))
            .filter(|s| s.chars().count() >= 2 && !self.stop.contains(s))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Porter stemmer (M.F. Porter, 1980), for ASCII lower-case words.

/// Stems one lower-case word with the Porter algorithm. Words that are not
/// plain ASCII lower-case letters, or are shorter than three letters, are
/// returned unchanged.
pub fn stem(word: &str) -> String {
    if word.len() <= 2 || !word.bytes().all(|b| b.is_ascii_lowercase()) {
        return word.to_string();
    }
    let mut s = Porter {
        b: word.as_bytes().to_vec(),
    };
    s.step1a();
    s.step1b();
    s.step1c();
    s.step2();
    s.step3();
    s.step4();
    s.step5();
    String::from_utf8(s.b).unwrap_or_else(|_| word.to_string())
}

struct Porter {
    b: Vec<u8>,
}

impl Porter {
    fn is_cons(&self, i: usize) -> bool {
        match self.b[i] {
            b'a' | b'e' | b'i' | b'o' | b'u' => false,
            b'y' => i == 0 || !self.is_cons(i - 1),
            _ => true,
        }
    }

    /// The measure m of `b[..len]`: the number of VC sequences.
    fn measure(&self, len: usize) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < len && self.is_cons(i) {
            i += 1;
        }
        loop {
            while i < len && !self.is_cons(i) {
                i += 1;
            }
            if i >= len {
                return n;
            }
            while i < len && self.is_cons(i) {
                i += 1;
            }
            n += 1;
            if i >= len {
                return n;
            }
        }
    }

    fn vowel_in(&self, len: usize) -> bool {
        (0..len).any(|i| !self.is_cons(i))
    }

    fn double_cons(&self, len: usize) -> bool {
        len >= 2 && self.b[len - 1] == self.b[len - 2] && self.is_cons(len - 1)
    }

    fn cvc(&self, len: usize) -> bool {
        len >= 3
            && self.is_cons(len - 3)
            && !self.is_cons(len - 2)
            && self.is_cons(len - 1)
            && !matches!(self.b[len - 1], b'w' | b'x' | b'y')
    }

    fn ends(&self, suffix: &str) -> bool {
        self.b.ends_with(suffix.as_bytes())
    }

    /// Length of the stem left if `suffix` were removed.
    fn stem_len(&self, suffix: &str) -> usize {
        self.b.len().saturating_sub(suffix.len())
    }

    fn set_to(&mut self, suffix: &str, replacement: &str) {
        let len = self.stem_len(suffix);
        self.b.truncate(len);
        self.b.extend_from_slice(replacement.as_bytes());
    }

    fn step1a(&mut self) {
        if self.ends("sses") {
            self.set_to("sses", "ss");
        } else if self.ends("ies") {
            self.set_to("ies", "i");
        } else if self.ends("ss") {
        } else if self.ends("s") {
            self.set_to("s", "");
        }
    }

    fn step1b(&mut self) {
        if self.ends("eed") {
            if self.measure(self.stem_len("eed")) > 0 {
                self.set_to("eed", "ee");
            }
            return;
        }
        let removed = if self.ends("ed") && self.vowel_in(self.stem_len("ed")) {
            self.set_to("ed", "");
            true
        } else if self.ends("ing") && self.vowel_in(self.stem_len("ing")) {
            self.set_to("ing", "");
            true
        } else {
            false
        };
        if !removed {
            return;
        }
        let len = self.b.len();
        if self.ends("at") || self.ends("bl") || self.ends("iz") {
            self.b.push(b'e');
        } else if self.double_cons(len) && !matches!(self.b[len - 1], b'l' | b's' | b'z') {
            self.b.truncate(len - 1);
        } else if self.measure(len) == 1 && self.cvc(len) {
            self.b.push(b'e');
        }
    }

    fn step1c(&mut self) {
        if self.ends("y") && self.vowel_in(self.stem_len("y")) {
            self.set_to("y", "i");
        }
    }

    fn apply(&mut self, rules: &[(&str, &str)], min_measure: usize) {
        for (suffix, replacement) in rules {
            if self.ends(suffix) {
                if self.measure(self.stem_len(suffix)) > min_measure {
                    self.set_to(suffix, replacement);
                }
                return;
            }
        }
    }

    fn step2(&mut self) {
        const RULES: &[(&str, &str)] = &[
            ("ational", "ate"),
            ("tional", "tion"),
            ("enci", "ence"),
            ("anci", "ance"),
            ("izer", "ize"),
            ("abli", "able"),
            ("alli", "al"),
            ("entli", "ent"),
            ("eli", "e"),
            ("ousli", "ous"),
            ("ization", "ize"),
            ("ation", "ate"),
            ("ator", "ate"),
            ("alism", "al"),
            ("iveness", "ive"),
            ("fulness", "ful"),
            ("ousness", "ous"),
            ("aliti", "al"),
            ("iviti", "ive"),
            ("biliti", "ble"),
        ];
        self.apply(RULES, 0);
    }

    fn step3(&mut self) {
        const RULES: &[(&str, &str)] = &[
            ("icate", "ic"),
            ("ative", ""),
            ("alize", "al"),
            ("iciti", "ic"),
            ("ical", "ic"),
            ("ful", ""),
            ("ness", ""),
        ];
        self.apply(RULES, 0);
    }

    fn step4(&mut self) {
        const SUFFIXES: &[&str] = &[
            "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion",
            "ou", "ism", "ate", "iti", "ous", "ive", "ize",
        ];
        // Longest matching suffix first, as in Porter's switch on the
        // penultimate letter.
        let mut best: Option<&str> = None;
        for s in SUFFIXES {
            if self.ends(s) && best.is_none_or(|b| s.len() > b.len()) {
                best = Some(s);
            }
        }
        let Some(suffix) = best else { return };
        let len = self.stem_len(suffix);
        if suffix == "ion" && !(len > 0 && matches!(self.b[len - 1], b's' | b't')) {
            return;
        }
        if self.measure(len) > 1 {
            self.b.truncate(len);
        }
    }

    fn step5(&mut self) {
        if self.ends("e") {
            let len = self.stem_len("e");
            let m = self.measure(len);
            if m > 1 || (m == 1 && !self.cvc(len)) {
                self.b.truncate(len);
            }
        }
        let len = self.b.len();
        if self.b.ends_with(b"ll") && self.measure(len) > 1 {
            self.b.truncate(len - 1);
        }
    }
}

// ---------------------------------------------------------------------------
// Comparing metadata.

/// The first year in `text` ("2017", "2018/19" → 2018, "November 2017"):
/// the domain's one rule (`closeout_domain::period`), as an unsigned year.
pub fn first_year(text: &str) -> Option<u32> {
    closeout_domain::period::first_year(text).and_then(|y| u32::try_from(y).ok())
}

/// Every year in `text`, in order: the domain's one rule
/// (`closeout_domain::period`).
pub fn years(text: &str) -> Vec<u32> {
    closeout_domain::period::years(text)
        .into_iter()
        .filter_map(|y| u32::try_from(y).ok())
        .collect()
}

/// Canonical name of an inspected report type: "effectiveness", "efficiency",
/// "legitimacy", "crime data integrity", or "" when unknown or generic (PEEL).
pub fn canonical_report(report: &str) -> String {
    let r = normalise(report);
    if r.contains("crime data") || r == "cdi" || r.contains("crime recording") {
        "crime data integrity".into()
    } else if r.contains("effectiveness") {
        "effectiveness".into()
    } else if r.contains("efficiency") {
        "efficiency".into()
    } else if r.contains("legitimacy") {
        "legitimacy".into()
    } else if r.is_empty() || r.contains("peel") || r.contains("integrated") {
        String::new()
    } else {
        r
    }
}

/// Canonical name of an inspection question. The names of PEEL questions
/// change between years ("Armed response capability", "Firearms capability",
/// "Armed policing"; "Fair treatment of the public", "Treating the public
/// fairly"), so known PEEL questions are recognised by their key words; any
/// other name becomes its sorted stemmed content words.
pub fn canonical_question(question: &str) -> String {
    let q = normalise(question);
    if q.is_empty() {
        return String::new();
    }
    let has = |w: &str| q.contains(w);
    let fair = has("fair") || has("treat");
    let key = if has("prevent") {
        "preventing crime"
    } else if has("organised crime") {
        "serious and organised crime"
    } else if has("investigat") {
        "investigating crime"
    } else if has("vulnerab") {
        "protecting vulnerable people"
    } else if has("armed") || has("firearm") {
        "armed policing"
    } else if has("current demand") {
        "meeting current demands"
    } else if has("future") {
        "planning for the future"
    } else if has("ethical") || has("lawful") {
        "ethical and lawful workforce behaviour"
    } else if has("public") && fair {
        "treating the public fairly"
    } else if has("workforce") && fair {
        "treating the workforce fairly"
    } else {
        ""
    };
    if !key.is_empty() {
        return key.to_string();
    }
    let analyzer = Analyzer::default();
    let mut terms = analyzer.terms(&q);
    terms.sort();
    terms.dedup();
    if terms.is_empty() { q } else { terms.join(" ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porter_reference_words() {
        let cases = [
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("ties", "ti"),
            ("caress", "caress"),
            ("cats", "cat"),
            ("feed", "feed"),
            ("agreed", "agre"),
            ("plastered", "plaster"),
            ("bled", "bled"),
            ("motoring", "motor"),
            ("sing", "sing"),
            ("conflated", "conflat"),
            ("troubled", "troubl"),
            ("sized", "size"),
            ("hopping", "hop"),
            ("tanned", "tan"),
            ("falling", "fall"),
            ("hissing", "hiss"),
            ("fizzed", "fizz"),
            ("failing", "fail"),
            ("filing", "file"),
            ("happy", "happi"),
            ("sky", "sky"),
            ("relational", "relat"),
            ("conditional", "condit"),
            ("rational", "ration"),
            ("digitizer", "digit"),
            ("differentli", "differ"),
            ("vietnamization", "vietnam"),
            ("predication", "predic"),
            ("operator", "oper"),
            ("feudalism", "feudal"),
            ("decisiveness", "decis"),
            ("hopefulness", "hope"),
            ("callousness", "callous"),
            ("formaliti", "formal"),
            ("sensitiviti", "sensit"),
            ("sensibiliti", "sensibl"),
            ("triplicate", "triplic"),
            ("formative", "form"),
            ("formalize", "formal"),
            ("electrical", "electr"),
            ("hopeful", "hope"),
            ("goodness", "good"),
            ("revival", "reviv"),
            ("allowance", "allow"),
            ("inference", "infer"),
            ("airliner", "airlin"),
            ("adjustable", "adjust"),
            ("defensible", "defens"),
            ("irritant", "irrit"),
            ("replacement", "replac"),
            ("adjustment", "adjust"),
            ("dependent", "depend"),
            ("adoption", "adopt"),
            ("communism", "commun"),
            ("activate", "activ"),
            ("effective", "effect"),
            ("bowdlerize", "bowdler"),
            ("probate", "probat"),
            ("rate", "rate"),
            ("cease", "ceas"),
            ("controll", "control"),
            ("roll", "roll"),
            ("generalizations", "gener"),
            ("oscillators", "oscil"),
        ];
        for (word, expected) in cases {
            assert_eq!(stem(word), expected, "stem({word})");
        }
    }

    #[test]
    fn stemming_conflates_the_domains_variants() {
        assert_eq!(stem("complies"), stem("comply"));
        assert_eq!(stem("complying"), stem("comply"));
        assert_eq!(stem("assessments"), stem("assessment"));
        assert_eq!(stem("investigations"), stem("investigation"));
        assert_eq!(stem("recording"), stem("recorded"));
        // Non-ASCII and short words are left alone.
        assert_eq!(stem("zoë"), "zoë");
        assert_eq!(stem("is"), "is");
    }

    #[test]
    fn stop_words_and_organisation_names_are_dropped() {
        let a = Analyzer::new(["Hertfordshire Constabulary"]);
        let terms = a.terms(
            "The force should ensure that Hertfordshire Constabulary fully complies with the \
             [Code of Practice](#) for Victims of Crime.",
        );
        assert_eq!(
            terms,
            vec!["fulli", "compli", "code", "practic", "victim", "crime"]
        );
        assert!(a.is_stop("Police"));
        assert!(a.is_stop("hertfordshire"));
        assert!(!a.is_stop("video"));
    }

    #[test]
    fn tokens_split_hyphens_and_possessives() {
        assert_eq!(
            tokenize("the force's body-worn video, in 2017 (APSTRA)"),
            vec!["the", "force", "body", "worn", "video", "in", "apstra"]
        );
        assert_eq!(tokenize("Clare’s Law"), vec!["clare", "law"]);
    }

    #[test]
    fn report_references_are_not_content() {
        assert_eq!(
            remove_report_references("In our [2017 effectiveness report](#), we said it needed"),
            "In our [2017 report](#), we said it needed"
        );
        assert_eq!(
            remove_report_references("we published our Crime Data Integrity inspection report."),
            "we published our inspection report."
        );
        assert_eq!(
            remove_report_references("the effectiveness of body-worn video"),
            "the effectiveness of body-worn video"
        );
    }

    #[test]
    fn markup_is_removed() {
        assert_eq!(
            strip_markup("In our [2017 effectiveness report](#), we said"),
            "In our 2017 effectiveness report, we said"
        );
        assert_eq!(strip_markup("a [b] c [d"), "a [b] c [d");
        assert_eq!(normalise("It’s [the](#)  Code!"), "it s the code");
    }

    #[test]
    fn sentences_keep_line_numbers_across_page_breaks() {
        let text = "Heading\n\nIn 2017, we said it needed to act. It has made these improvements.\n\
                    \nThe force has since made investments and can now\n\ncomprehensively analyse \
                    data compliance. Internal audits show 99 percent.\n\n- monitor data;\n- act.\n";
        let doc = Document::parse(text);
        let texts: Vec<&str> = doc.sentences.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "Heading",
                "In 2017, we said it needed to act.",
                "It has made these improvements.",
                "The force has since made investments and can now comprehensively analyse data compliance.",
                "Internal audits show 99 percent.",
                "- monitor data;",
                "- act.",
            ]
        );
        assert_eq!(
            (doc.sentences[3].line_start, doc.sentences[3].line_end),
            (5, 7)
        );
        assert_eq!(
            (doc.sentences[4].line_start, doc.sentences[4].line_end),
            (7, 7)
        );
    }

    #[test]
    fn abbreviations_and_decimals_do_not_split() {
        let s = split_sentences("It spent £3.36m, e.g. on staff. Then it stopped.");
        assert_eq!(
            s,
            vec!["It spent £3.36m, e.g. on staff.", "Then it stopped."]
        );
    }

    #[test]
    fn questions_are_compared_by_meaning() {
        assert_eq!(
            canonical_question("Armed response capability"),
            "armed policing"
        );
        assert_eq!(canonical_question("Firearms capability"), "armed policing");
        assert_eq!(
            canonical_question("Fair treatment of the public"),
            canonical_question("Treating the public fairly")
        );
        assert_ne!(
            canonical_question("Treating the workforce fairly"),
            canonical_question("Treating the public fairly")
        );
        assert_eq!(
            canonical_question("Meeting current demands and using resources"),
            canonical_question("Meeting current demands")
        );
        assert_eq!(canonical_question(""), "");
    }

    #[test]
    fn years_and_reports() {
        assert_eq!(first_year("2018/19"), Some(2018));
        assert_eq!(first_year("November 2017"), Some(2017));
        assert_eq!(first_year("12345"), None);
        assert_eq!(first_year(""), None);
        assert_eq!(
            canonical_report("Crime Data Integrity"),
            "crime data integrity"
        );
        assert_eq!(
            canonical_report("2017 effectiveness report"),
            "effectiveness"
        );
        assert_eq!(canonical_report("PEEL"), "");
    }
}
