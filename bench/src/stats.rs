//! Median and spread of a set of samples: what every figure in the report is.

use serde_json::{Value, json};

/// The samples of one measurement, one per round, and their median and range.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// One value per round, in the order they were taken.
    pub samples: Vec<f64>,
}

impl Summary {
    /// Adds one round's value.
    pub fn push(&mut self, value: f64) {
        self.samples.push(value);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        sorted
    }

    /// The median (the mean of the middle two for an even count); NaN when empty.
    pub fn median(&self) -> f64 {
        let sorted = self.sorted();
        let n = sorted.len();
        match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => sorted[n / 2],
            _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }

    /// The smallest sample; NaN when empty.
    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    /// The largest sample; NaN when empty.
    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }

    /// `median (min–max)` with `decimals` decimals.
    pub fn show(&self, decimals: usize) -> String {
        format!(
            "{:.d$} ({:.d$}–{:.d$})",
            self.median(),
            self.min(),
            self.max(),
            d = decimals
        )
    }

    /// `{"median": …, "min": …, "max": …, "samples": […]}`.
    pub fn to_json(&self) -> Value {
        json!({
            "median": finite(self.median()),
            "min": finite(self.min()),
            "max": finite(self.max()),
            "samples": self.samples,
        })
    }
}

/// JSON has no NaN: a measurement without samples is `null`.
fn finite(value: f64) -> Value {
    if value.is_finite() {
        json!(value)
    } else {
        Value::Null
    }
}

#[cfg(test)]
mod tests {
    use super::Summary;

    #[test]
    fn median_of_odd_and_even_counts_and_the_range() {
        let mut s = Summary::default();
        for v in [5.0, 1.0, 3.0] {
            s.push(v);
        }
        assert_eq!((s.median(), s.min(), s.max()), (3.0, 1.0, 5.0));
        s.push(4.0);
        assert_eq!(s.median(), 3.5);
        assert!(Summary::default().median().is_nan());
    }
}
