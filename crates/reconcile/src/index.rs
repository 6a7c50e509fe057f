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
        self.add_times(doc, 1);
    }

    /// Adds `times` documents with the same terms (as `times` calls of
    /// [`Index::add`] would).
    pub fn add_times(&mut self, doc: &[String], times: u32) {
        if times == 0 {
            return;
        }
        self.docs = self.docs.saturating_add(times);
        let mut seen: Vec<&String> = doc.iter().collect();
        seen.sort();
        seen.dedup();
        for t in seen {
            let df = self.df.entry(t.clone()).or_insert(0);
            *df = df.saturating_add(times);
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

    /// The terms with their weights, in lexical order.
    pub fn terms(&self) -> impl Iterator<Item = (&str, f64)> {
        self.weights.iter().map(|(t, w)| (t.as_str(), *w))
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

/// An inverted index over a list of vectors (term → the vectors holding it),
/// to find the vectors whose cosine with a query can reach a threshold
/// without comparing the query with every one of them.
///
/// It uses prefix filtering: a query term `t` can add at most
/// `query(t) × max weight of t in the list` to any cosine. The query's most
/// common terms (longest posting lists) whose bounds together stay below the
/// threshold cannot make a cosine reach it on their own, so a vector at or
/// above the threshold shares at least one of the query's other terms, and
/// only those terms' postings are looked at. Every candidate's cosine is then
/// computed with [`Vector::cosine`], so the figures are exactly those of the
/// full comparison.
#[derive(Debug, Clone, Default)]
pub struct Postings {
    lists: HashMap<String, (f64, Vec<usize>)>,
}

/// Bounds are sums of products in another order than the cosine's; this
/// keeps rounding from ever dropping a vector at the threshold.
const BOUND_SLACK: f64 = 1e-9;

impl Postings {
    pub fn new(vectors: &[&Vector]) -> Postings {
        let mut lists: HashMap<String, (f64, Vec<usize>)> = HashMap::new();
        for (i, v) in vectors.iter().enumerate() {
            for (t, w) in v.terms() {
                let entry = lists.entry(t.to_string()).or_insert((0.0, Vec::new()));
                entry.0 = entry.0.max(w);
                entry.1.push(i);
            }
        }
        Postings { lists }
    }

    /// Every vector of `vectors` (the list the postings were built from)
    /// whose cosine with `query` is positive and could reach `threshold`,
    /// as (index, cosine) in index order. None with a cosine at or above
    /// `threshold` is left out; some below it may be in. A threshold that is
    /// not positive (or not a number) gives every vector sharing a term.
    pub fn search(&self, vectors: &[&Vector], query: &Vector, threshold: f64) -> Vec<(usize, f64)> {
        let mut terms: Vec<(f64, &Vec<usize>)> = query
            .terms()
            .filter_map(|(t, w)| self.lists.get(t).map(|(max, list)| (w * max, list)))
            .collect();
        // Most common first: those are the ones worth leaving out.
        terms.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.total_cmp(&b.0)));
        let limit = if threshold.is_nan() {
            0.0
        } else {
            threshold - BOUND_SLACK
        };
        let mut bound = 0.0;
        let mut candidates: Vec<usize> = Vec::new();
        for (b, list) in terms {
            if bound + b < limit {
                bound += b;
            } else {
                candidates.extend(list.iter().copied());
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .filter_map(|i| {
                let c = vectors.get(i)?.cosine(query);
                (c > 0.0).then_some((i, c))
            })
            .collect()
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
    fn postings_find_every_vector_at_or_above_the_threshold() {
        // Reproducible pseudo-random term lists over a small vocabulary, so
        // that vectors share common and rare terms alike.
        let mut state: u64 = 0x1234_5678_9abc_def1;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let vocabulary: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
        // Skewed towards the first terms, as real wording is.
        let mut doc = |len: u64| -> Vec<String> {
            let n = 1 + next(len);
            (0..n)
                .map(|_| {
                    let spread = next(40) + 1;
                    vocabulary[next(spread) as usize].clone()
                })
                .collect()
        };
        let docs: Vec<Vec<String>> = (0..300).map(|_| doc(10)).collect();
        let queries: Vec<Vec<String>> = (0..60).map(|_| doc(14)).collect();
        let index = Index::new(docs.iter().chain(&queries).map(Vec::as_slice));
        let vectors: Vec<Vector> = docs.iter().map(|d| index.vector(d)).collect();
        let refs: Vec<&Vector> = vectors.iter().collect();
        let postings = Postings::new(&refs);
        let mut pruned = 0;
        for q in &queries {
            let query = index.vector(q);
            for threshold in [0.0, 0.1, 0.2, 0.3, 0.5, 0.9, f64::NAN] {
                let found = postings.search(&refs, &query, threshold);
                assert!(found.windows(2).all(|w| w[0].0 < w[1].0), "index order");
                let all: Vec<(usize, f64)> = vectors
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i, v.cosine(&query)))
                    .filter(|(_, c)| *c > 0.0)
                    .collect();
                for (i, c) in &all {
                    // NaN means "no threshold": every vector sharing a term.
                    if threshold.is_nan() || *c >= threshold {
                        assert!(
                            found.contains(&(*i, *c)),
                            "vector {i} (cosine {c}) missed at threshold {threshold}"
                        );
                    }
                }
                assert!(found.iter().all(|f| all.contains(f)), "exact cosines");
                pruned += all.len() - found.len();
            }
        }
        assert!(pruned > 0, "the bound never left anything out");
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
