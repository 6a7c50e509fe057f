//! Small order statistics over day counts.
//!
//! * median: the middle value, or the mean of the two middle values for an
//!   even count;
//! * percentile: nearest rank, the smallest value with at least `p`% of the
//!   values at or below it (so the 90th percentile of 1..=10 is 9).
//!
//! Both are 0 for no values, so an empty organisation reads as zeros.

/// The median of `values` (any order); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let sorted = sorted(values);
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The nearest-rank `p`th percentile (0 < p ≤ 100) of `values`; 0 when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let sorted = sorted(values);
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// [`median`] of values given as (value, how many times), any order.
pub fn median_counted(values: &[(f64, u64)]) -> f64 {
    let sorted = sorted_counted(values);
    let n: u64 = sorted.iter().map(|(_, c)| c).sum();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => nth(&sorted, n / 2),
        _ => (nth(&sorted, n / 2 - 1) + nth(&sorted, n / 2)) / 2.0,
    }
}

/// [`percentile`] of values given as (value, how many times), any order.
pub fn percentile_counted(values: &[(f64, u64)], p: f64) -> f64 {
    let sorted = sorted_counted(values);
    let n: u64 = sorted.iter().map(|(_, c)| c).sum();
    if n == 0 {
        return 0.0;
    }
    let rank = ((p / 100.0) * n as f64).ceil() as u64;
    nth(&sorted, rank.clamp(1, n) - 1)
}

fn sorted_counted(values: &[(f64, u64)]) -> Vec<(f64, u64)> {
    let mut sorted: Vec<(f64, u64)> = values.iter().filter(|(_, c)| *c > 0).copied().collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    sorted
}

/// The value at 0-based position `index` of the expanded sorted list.
fn nth(sorted: &[(f64, u64)], index: u64) -> f64 {
    let mut seen = 0u64;
    for (value, count) in sorted {
        seen += count;
        if index < seen {
            return *value;
        }
    }
    sorted.last().map_or(0.0, |(v, _)| *v)
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[5.0]), 5.0);
        assert_eq!(median(&[9.0, 1.0, 5.0]), 5.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let one_to_ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&one_to_ten, 90.0), 9.0);
        assert_eq!(percentile(&one_to_ten, 100.0), 10.0);
        assert_eq!(percentile(&one_to_ten, 1.0), 1.0);
        assert_eq!(percentile(&[7.0, 3.0], 90.0), 7.0);
        assert_eq!(percentile(&[], 90.0), 0.0);
    }

    #[test]
    fn counted_values_give_the_same_order_statistics() {
        let cases: [&[f64]; 5] = [
            &[],
            &[5.0],
            &[9.0, 1.0, 5.0, 5.0],
            &[4.0, 1.0, 3.0, 2.0, 2.0, 2.0, 7.0],
            &[3.0, 3.0, 1.0, 1.0, 8.0, 8.0, 8.0, 8.0, 0.0, 2.0],
        ];
        for values in cases {
            let mut counted: Vec<(f64, u64)> = Vec::new();
            for v in values {
                match counted.iter_mut().find(|(x, _)| x == v) {
                    Some((_, n)) => *n += 1,
                    None => counted.push((*v, 1)),
                }
            }
            counted.push((42.0, 0));
            assert_eq!(median_counted(&counted), median(values), "{values:?}");
            for p in [1.0, 50.0, 90.0, 100.0] {
                assert_eq!(percentile_counted(&counted, p), percentile(values, p));
            }
        }
    }
}
