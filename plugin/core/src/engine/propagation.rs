//! Decisions made upstream: from a trusted peer (an earlier hop running
//! Sluice), the incoming flags header, or failing that the `sluice.*`
//! baggage members, are kept rather than re-rolled, so a call chain agrees.
use super::request::Request;
use crate::plan::{FlagPlan, Plan};

pub(super) struct Propagated<'a> {
    /// `name=variant` pairs from the trusted decision, empty when untrusted.
    pairs: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> Propagated<'a> {
    pub(super) fn read(plan: &Plan, req: &Request<'a>) -> Propagated<'a> {
        let none = Propagated { pairs: Vec::new() };
        if plan.trusted_peers.is_empty() {
            return none;
        }
        let trusted = req
            .source_ip()
            .is_some_and(|ip| plan.trusted_peers.iter().any(|c| c.contains(ip)));
        if !trusted {
            return none;
        }
        if let Some(header) = plan
            .incoming_flags_header
            .and_then(|i| req.headers.get(i).copied().flatten())
        {
            return Propagated {
                pairs: split_pairs(header, b';', None),
            };
        }
        match (
            &plan.baggage_prefix,
            plan.baggage_header
                .and_then(|i| req.headers.get(i).copied().flatten()),
        ) {
            (Some(prefix), Some(baggage)) => Propagated {
                pairs: split_pairs(baggage, b',', Some(prefix.as_bytes())),
            },
            _ => none,
        }
    }

    /// The variant the trusted peer chose for this flag, if it names one of ours.
    pub(super) fn variant(&self, flag: &FlagPlan) -> Option<usize> {
        let (_, want) = self
            .pairs
            .iter()
            .find(|(name, _)| *name == flag.name.as_bytes())?;
        flag.variant_names
            .iter()
            .position(|v| v.as_bytes() == *want)
    }
}

/// `a=1;b=2` (or baggage `p.a=1,p.b=2;prop`) → pairs, names without `prefix`.
fn split_pairs<'a>(
    value: &'a [u8],
    separator: u8,
    prefix: Option<&[u8]>,
) -> Vec<(&'a [u8], &'a [u8])> {
    value
        .split(|b| *b == separator)
        .filter_map(|member| {
            // Baggage members may carry `;properties` after the value.
            let member = member
                .split(|b| *b == b';')
                .next()
                .unwrap_or(member)
                .trim_ascii();
            let at = member.iter().position(|b| *b == b'=')?;
            let (name, value) = (member[..at].trim_ascii(), member[at + 1..].trim_ascii());
            match prefix {
                Some(p) => name.strip_prefix(p).map(|n| (n, value)),
                None => Some((name, value)),
            }
        })
        .collect()
}
