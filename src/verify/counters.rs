//! What the verifier counts on every check: atomics only, read by
//! `metrics` when Prometheus scrapes (the counters live with what they
//! count, so the hot path imports nothing of the metrics module).

use super::Code;
use prometheus::core::Collector;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts};
use std::time::Duration;

/// Every refusal code, in a fixed order (their counters are indexed by it).
pub(super) const CODES: [Code; 17] = [
    Code::MissingKey,
    Code::Malformed,
    Code::NotFound,
    Code::ApiKeysDisabled,
    Code::Revoked,
    Code::Disabled,
    Code::Expired,
    Code::EnvironmentMismatch,
    Code::InsufficientPermission,
    Code::ResourceNotAllowed,
    Code::RateLimited,
    Code::Unavailable,
    Code::RepeatedHeader,
    Code::WrongWorkspace,
    Code::IpNotAllowed,
    Code::QuotaExceeded,
    Code::BadRequest,
];

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("valid metric")
}

/// What the verifier counts on every check.
pub struct VerifyMetrics {
    outcomes: IntCounterVec,
    valid: IntCounter,
    refused: Vec<IntCounter>,
    duration: Histogram,
    /// Lookups answered from the cache.
    pub cache_hits: IntCounter,
    /// Lookups that read the database.
    pub cache_misses: IntCounter,
    /// Keys refused by the digest index without a lookup.
    pub index_refusals: IntCounter,
}

impl Default for VerifyMetrics {
    fn default() -> Self {
        let outcomes = IntCounterVec::new(
            Opts::new(
                "keyward_verifications_total",
                "Key verifications by outcome (valid, or the refusal code).",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let valid = outcomes.with_label_values(&["valid"]);
        let refused = CODES
            .iter()
            .map(|c| outcomes.with_label_values(&[&c.as_str().to_ascii_lowercase()]))
            .collect();
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "keyward_verification_duration_seconds",
                "Time to verify one key, from the parsed request to the answer.",
            )
            .buckets(vec![
                0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.0025, 0.005,
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        )
        .expect("valid metric");
        VerifyMetrics {
            outcomes,
            valid,
            refused,
            duration,
            cache_hits: counter(
                "keyward_verify_cache_hits_total",
                "Key lookups answered from the in-memory cache.",
            ),
            cache_misses: counter(
                "keyward_verify_cache_misses_total",
                "Key lookups that read the database.",
            ),
            index_refusals: counter(
                "keyward_verify_index_refusals_total",
                "Unknown keys refused by the digest index without a lookup.",
            ),
        }
    }
}

impl VerifyMetrics {
    /// Count one check: a few atomic operations, no allocation.
    pub fn observe(&self, outcome: Option<Code>, took: Duration) {
        match outcome {
            None => self.valid.inc(),
            Some(code) => {
                if let Some(i) = CODES.iter().position(|c| *c == code) {
                    self.refused[i].inc();
                }
            }
        }
        self.duration.observe(took.as_secs_f64());
    }

    /// Count a refusal decided before a check started (no key sent).
    pub fn count_refusal(&self, code: Code) {
        if let Some(i) = CODES.iter().position(|c| *c == code) {
            self.refused[i].inc();
        }
    }

    /// Everything to register with the metrics registry.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.outcomes.clone()),
            Box::new(self.duration.clone()),
            Box::new(self.cache_hits.clone()),
            Box::new(self.cache_misses.clone()),
            Box::new(self.index_refusals.clone()),
        ]
    }
}
