//! Statistics for warren's benchmarks: samples are taken interleaved
//! (A, B, C, A, B, C, ...) so that noise on a shared machine hits every side
//! alike, and each figure is reported next to its peer's, as a ratio.

use serde::Serialize;

pub mod floor;
pub mod node;
pub mod report;

/// min, median and p99 of a sample set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub p99: f64,
}

/// The value at quantile `q` (0..=1) of sorted samples, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    Some(Summary {
        n: s.len(),
        min: s[0],
        median: quantile(&s, 0.5),
        p99: quantile(&s, 0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = summarize(&v).unwrap();
        assert_eq!((s.min, s.median, s.p99, s.n), (1.0, 50.0, 99.0, 100));
        assert_eq!(summarize(&[3.0]).unwrap().p99, 3.0);
        assert!(summarize(&[]).is_none());
    }
}
