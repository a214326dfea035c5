//! Spring Cloud Config flags as the request path evaluates them: on/off with an optional
//! rollout, bucketed like native flags. Read from an Environment document by
//! `sluice_core::spring`.
use crate::bucket::{random_bucket, Salt, BUCKETS};
use crate::decision::FeatureOutcome;
use crate::engine::request::Request;
use crate::plan::Plan;

/// The flags of one Environment, sorted by name.
#[derive(Debug, Clone)]
pub struct SpringFlags {
    /// The Environment's `version` (e.g. a git commit), when it has one.
    pub version: Option<String>,
    pub flags: Vec<SpringFlag>,
}

#[derive(Debug, Clone)]
pub struct SpringFlag {
    pub name: String,
    pub enabled: bool,
    /// The rollout in buckets of 0.01% (10 000 = everyone).
    pub rollout: u32,
    salt: Salt,
}

impl SpringFlag {
    /// A flag as read: `rollout` in buckets of 0.01% (10 000 = everyone).
    pub fn new(name: String, enabled: bool, rollout: u32) -> SpringFlag {
        SpringFlag {
            enabled,
            rollout,
            salt: Salt::new(name.clone()),
            name,
        }
    }

    /// Whether the flag is on for a user (`key`: the identity key), or for a request without one
    /// (`entropy`: not sticky).
    pub fn is_on(&self, key: Option<&[u8]>, entropy: u64) -> bool {
        if !self.enabled {
            return false;
        }
        if self.rollout >= BUCKETS {
            return true;
        }
        let bucket = match key {
            Some(key) => self.salt.bucket(key),
            None => random_bucket(&self.salt, entropy),
        };
        bucket < self.rollout
    }
}

/// Appends the flags' answers for one request (`name=on|off`, after the Unleash features in the
/// flags header); a flag named like a native flag is skipped (native flags win).
#[inline(never)]
pub fn evaluate_into(
    flags: &SpringFlags,
    plan: &Plan,
    req: &Request,
    out: &mut Vec<FeatureOutcome>,
) {
    let key = plan
        .user_key
        .iter()
        .find_map(|s| req.value(s).filter(|v| !v.is_empty()));
    for flag in &flags.flags {
        if plan.flags.iter().any(|f| f.name == flag.name) {
            continue;
        }
        out.push(FeatureOutcome {
            name: flag.name.clone(),
            variant: if flag.is_on(key, req.entropy) {
                "on"
            } else {
                "off"
            }
            .to_string(),
            header: None,
            usage: None,
        });
    }
}
