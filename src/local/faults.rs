//! Fault injection and timing (`--faults FILE`, `PUT /_idlab/faults`, or the library
//! config). Seeded, so a run is reproducible. Defaults: no faults and no added latency.
//!
//! Schema (YAML or JSON; every field optional):
//!
//! ```yaml
//! seed: 42                   # RNG seed for every probabilistic fault
//! time_scale: 1.0            # multiplies every delay below (0.01 in tests)
//! latency_ms: 0              # added to every ARM request
//! lro_ms: 0                  # how long a long-running operation reports InProgress
//! throttle_rate: 0.0         # fraction of ARM requests answered 429 TooManyRequests
//! retry_after_s: 1           # Retry-After on 429s and long-running operations (≥ 1)
//! error_500_rate: 0.0        # fraction answered 500 InternalServerError
//! error_503_rate: 0.0        # fraction answered 503 ServiceUnavailable
//! drop_rate: 0.0             # fraction of connections closed without an answer
//! data_drop_rate: 0.0        # the same, for the data planes and the identity endpoints
//! replication_ms: 0          # a new principal is unknown to RBAC writes for this long
//! propagation_ms: 0          # a new role assignment takes effect after this long
//! crash_after_writes: null   # `local serve` only: exit right after the Nth acknowledged write
//! per_type:                  # overrides by ARM type (case-insensitive)
//!   Microsoft.Compute/virtualMachines: { latency_ms: 50, lro_ms: 2000 }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Per-type overrides.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TypeFaults {
    #[serde(default)]
    pub latency_ms: Option<u64>,
    #[serde(default)]
    pub lro_ms: Option<u64>,
}

/// The fault and timing configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    pub seed: u64,
    pub time_scale: f64,
    pub latency_ms: u64,
    pub lro_ms: u64,
    pub throttle_rate: f64,
    pub retry_after_s: u64,
    pub error_500_rate: f64,
    pub error_503_rate: f64,
    pub drop_rate: f64,
    /// Like `drop_rate`, for every request to the data planes (blob, dfs, WebHDFS, Key Vault)
    /// and the VMs' identity endpoints, which `drop_rate` leaves alone.
    pub data_drop_rate: f64,
    pub replication_ms: u64,
    pub propagation_ms: u64,
    pub crash_after_writes: Option<u64>,
    pub per_type: BTreeMap<String, TypeFaults>,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            seed: 0,
            time_scale: 1.0,
            latency_ms: 0,
            lro_ms: 0,
            throttle_rate: 0.0,
            retry_after_s: 1,
            error_500_rate: 0.0,
            error_503_rate: 0.0,
            drop_rate: 0.0,
            data_drop_rate: 0.0,
            replication_ms: 0,
            propagation_ms: 0,
            crash_after_writes: None,
            per_type: BTreeMap::new(),
        }
    }
}

impl Faults {
    /// Parse a faults file (YAML, which includes JSON).
    ///
    /// # Errors
    /// A message naming the line and column of the problem.
    pub fn parse(text: &str) -> Result<Faults, String> {
        let f: Faults = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        f.check()?;
        Ok(f)
    }

    /// Check ranges.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn check(&self) -> Result<(), String> {
        for (name, rate) in [
            ("throttle_rate", self.throttle_rate),
            ("error_500_rate", self.error_500_rate),
            ("error_503_rate", self.error_503_rate),
            ("drop_rate", self.drop_rate),
            ("data_drop_rate", self.data_drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, not {rate}"));
            }
        }
        if !(self.time_scale >= 0.0 && self.time_scale.is_finite()) {
            return Err(format!("time_scale must be a finite number ≥ 0, not {}", self.time_scale));
        }
        Ok(())
    }

    /// A configured delay after the time scale.
    pub fn scaled(&self, ms: u64) -> Duration {
        Duration::from_secs_f64((ms as f64 * self.time_scale).max(0.0) / 1000.0)
    }

    fn per(&self, type_lower: &str) -> Option<&TypeFaults> {
        self.per_type.iter().find(|(k, _)| k.eq_ignore_ascii_case(type_lower)).map(|(_, v)| v)
    }

    /// Added latency for a request on this type.
    pub fn latency(&self, type_lower: &str) -> Duration {
        self.scaled(self.per(type_lower).and_then(|t| t.latency_ms).unwrap_or(self.latency_ms))
    }

    /// How long a long-running operation on this type stays in progress.
    pub fn lro(&self, type_lower: &str) -> Duration {
        self.scaled(self.per(type_lower).and_then(|t| t.lro_ms).unwrap_or(self.lro_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_scales() {
        let f = Faults::parse("seed: 7\ntime_scale: 0.5\nlro_ms: 2000\nper_type:\n  Microsoft.Compute/virtualMachines: { lro_ms: 4000 }\n").expect("valid");
        assert_eq!(f.lro("microsoft.compute/virtualmachines"), Duration::from_secs(2));
        assert_eq!(f.lro("microsoft.network/networkinterfaces"), Duration::from_secs(1));
        assert!(Faults::parse("drop_rate: 2").is_err());
        assert!(Faults::parse("data_drop_rate: -0.1").is_err());
        assert_eq!(Faults::parse("data_drop_rate: 0.2").expect("valid").data_drop_rate, 0.2);
        assert!(Faults::parse("bogus: 1").is_err());
    }
}
