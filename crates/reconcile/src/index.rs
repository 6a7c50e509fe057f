//! A small TF-IDF index: inverse document frequencies learnt from a corpus
//! of term lists (the later report's sentences, the follow-up clauses, the new
//! findings and the open items), sparse L2-normalised vectors with
//! sub-linear term frequency, cosine similarity, and the per-term
//! contributions to a cosine, which the matcher uses to tell whether two items
//! match a clause on the same words or on different ones.
//!
//! Cosine is used rather than BM25 because it is bounded to `0..=1`, which
//! keeps the matcher's thresholds meaningful across reports of any length.

use std::collections::{BTreeMap, HashMap};

/// Document frequencies over a corpus.
#[derive(Debug, Clone, Default)]
pub struct Index {
    df: HashMap<String, u32>,
    docs: u32,
}

/// A sparse, L2-normalised TF-IDF vector (terms in lexical order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vector {
    weights: BTreeMap<String, f64>,
}

impl Index {
    /// Learns document frequencies from `docs` (each a list of terms).
    pub fn new<'a, I>(docs: I) -> Index
    where
        I: IntoIterator<Item = &'a [String]>,
    {
        let mut index = Index::default();
        for doc in docs {
            index.add(doc);
        }
        index
    }

    pub fn add(&mut self, doc: &[String]) {
        self.docs = self.docs.saturating_add(1);
        let mut seen: Vec<&String> = doc.iter().collect();
        seen.sort();
        seen.dedup();
        for t in seen {
            *self.df.entry(t.clone()).or_insert(0) += 1;
        }
    }

    pub fn len(&self) -> u32 {
        self.docs
    }

    pub fn is_empty(&self) -> bool {
        self.docs == 0
    }

    /// Smoothed inverse document frequency, `ln((N + 1) / (df + 1)) + 1`:
    /// always positive, highest for unseen terms.
    pub fn idf(&self, term: &str) -> f64 {
        let df = f64::from(self.df.get(term).copied().unwrap_or(0));
        let n = f64::from(self.docs);
        ((n + 1.0) / (df + 1.0)).ln() + 1.0
    }

    /// The vector of a term list: `(1 + ln tf) × idf`, L2-normalised.
    pub fn vector(&self, terms: &[String]) -> Vector {
        let mut tf: BTreeMap<String, f64> = BTreeMap::new();
        for t in terms {
            *tf.entry(t.clone()).or_insert(0.0) += 1.0;
        }
        let mut weights: BTreeMap<String, f64> = tf
            .into_iter()
            .map(|(t, f)| {
                let w = (1.0 + f.ln()) * self.idf(&t);
                (t, w)
            })
            .collect();
        let norm = weights.values().map(|w| w * w).sum::<f64>().sqrt();
        if norm > 0.0 && norm.is_finite() {
            for w in weights.values_mut() {
                *w /= norm;
            }
        } else {
            weights.clear();
        }
        Vector { weights }
    }
}

impl Vector {
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    pub fn weight(&self, term: &str) -> f64 {
        self.weights.get(term).copied().unwrap_or(0.0)
    }

    /// Cosine similarity, in `0..=1`.
    pub fn cosine(&self, other: &Vector) -> f64 {
        self.contributions(other)
            .iter()
            .map(|(_, c)| c)
            .sum::<f64>()
            .clamp(0.0, 1.0)
    }

    /// Each shared term with its contribution to the cosine, largest first.
    pub fn contributions(&self, other: &Vector) -> Vec<(String, f64)> {
        let (small, large) = if self.weights.len() <= other.weights.len() {
            (self, other)
        } else {
            (other, self)
        };
        let mut out: Vec<(String, f64)> = small
            .weights
            .iter()
            .filter_map(|(t, w)| large.weights.get(t).map(|v| (t.clone(), w * v)))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn rare_terms_weigh_more() {
        let docs = [
            terms("crime victim code"),
            terms("crime bail"),
            terms("crime video"),
        ];
        let index = Index::new(docs.iter().map(Vec::as_slice));
        assert_eq!(index.len(), 3);
        assert!(index.idf("code") > index.idf("crime"));
        assert!(index.idf("unseen") > index.idf("code"));
        assert!(index.idf("crime") > 0.0);
    }

    #[test]
    fn cosine_is_bounded_and_symmetric() {
        let docs = [terms("a b c"), terms("a d"), terms("e f")];
        let index = Index::new(docs.iter().map(Vec::as_slice));
        let x = index.vector(&terms("a b c"));
        let y = index.vector(&terms("a d"));
        let same = x.cosine(&x);
        assert!((same - 1.0).abs() < 1e-9);
        let c = x.cosine(&y);
        assert!(c > 0.0 && c < 1.0);
        assert!((c - y.cosine(&x)).abs() < 1e-12);
        assert_eq!(x.cosine(&index.vector(&terms("e f"))), 0.0);
    }

    #[test]
    fn empty_inputs_are_harmless() {
        let index = Index::new(std::iter::empty());
        assert!(index.is_empty());
        let v = index.vector(&[]);
        assert!(v.is_empty());
        assert_eq!(v.cosine(&index.vector(&terms("a"))), 0.0);
    }

    #[test]
    fn contributions_sum_to_the_cosine() {
        let docs = [
            terms("body worn video review"),
            terms("risk assess"),
            terms("video"),
        ];
        let index = Index::new(docs.iter().map(Vec::as_slice));
        let x = index.vector(&terms("review body worn video domest"));
        let y = index.vector(&terms("review use body worn video"));
        let parts = x.contributions(&y);
        assert_eq!(parts.len(), 4);
        let total: f64 = parts.iter().map(|(_, c)| c).sum();
        assert!((total - x.cosine(&y)).abs() < 1e-12);
        assert!(parts.windows(2).all(|w| w[0].1 >= w[1].1));
    }
}
