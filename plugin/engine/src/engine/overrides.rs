//! Tester overrides: `x-sluice-override: reviews=v2;checkout=on`, honoured
//! only with the secret (SHA-256 compared in constant time) or from an
//! allowed source range.
use super::request::Request;
use crate::decision::OverrideStatus;
use crate::plan::{FlagPlan, Plan, ReleasePlan, RoutePlan};
use sluice_primitives::sha256::{ct_eq, sha256};

pub(super) struct Overrides<'a> {
    /// `(name, value)` pairs, only when authorised.
    pairs: Vec<(&'a [u8], &'a [u8])>,
    status: OverrideStatus,
}

impl<'a> Overrides<'a> {
    pub(super) fn read(plan: &Plan, req: &Request<'a>) -> Overrides<'a> {
        let absent = Overrides {
            pairs: Vec::new(),
            status: OverrideStatus::Absent,
        };
        let Some(o) = &plan.overrides else {
            return absent;
        };
        let Some(value) = req.headers.get(o.header).copied().flatten() else {
            return absent;
        };
        Self::from_header(plan, req, value)
    }

    /// The override header is there: honoured when the request is authorised.
    #[inline(never)]
    fn from_header(plan: &Plan, req: &Request<'a>, value: &'a [u8]) -> Overrides<'a> {
        if !authorised(plan, req) {
            return Overrides {
                pairs: Vec::new(),
                status: OverrideStatus::Refused,
            };
        }
        let pairs = value
            .split(|b| *b == b';' || *b == b',')
            .filter_map(|pair| {
                let at = pair.iter().position(|b| *b == b'=')?;
                Some((pair[..at].trim_ascii(), pair[at + 1..].trim_ascii()))
            })
            .collect();
        Overrides {
            pairs,
            status: OverrideStatus::Honoured,
        }
    }

    /// No override applies to anything.
    pub(super) fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    fn lookup(&self, name: &str) -> Option<&'a [u8]> {
        self.pairs
            .iter()
            .find(|(k, _)| *k == name.as_bytes())
            .map(|(_, v)| *v)
    }

    pub(super) fn flag(&self, flag: &FlagPlan) -> Option<usize> {
        let want = self.lookup(&flag.name)?;
        flag.variant_names.iter().position(|v| v.as_bytes() == want)
    }

    pub(super) fn route(&self, route: &RoutePlan) -> Option<usize> {
        let want = self.lookup(&route.name)?;
        route.versions.iter().position(|v| v.as_bytes() == want)
    }

    /// `checkout-2=in` / `checkout-2=out`.
    #[inline(never)]
    pub(super) fn release(&self, release: &ReleasePlan) -> Option<bool> {
        match self.lookup(&release.name)? {
            b"in" => Some(true),
            b"out" => Some(false),
            _ => None,
        }
    }

    pub(super) fn status(&self) -> OverrideStatus {
        self.status
    }
}

/// Whether this request may use tester powers (overrides, debug header).
#[inline(never)]
pub(crate) fn authorised(plan: &Plan, req: &Request) -> bool {
    let Some(o) = &plan.overrides else {
        return false;
    };
    if let (Some(want), Some(secret)) = (
        &o.secret_sha256,
        req.headers.get(o.secret_header).copied().flatten(),
    ) {
        if secret_matches(secret, want) {
            return true;
        }
    }
    !o.allow_sources.is_empty()
        && req
            .source_ip()
            .is_some_and(|ip| o.allow_sources.iter().any(|c| c.contains(ip)))
}

#[inline(never)]
fn secret_matches(secret: &[u8], want_sha256: &[u8; 32]) -> bool {
    ct_eq(&sha256(secret), want_sha256)
}
