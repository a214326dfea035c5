//! Decisions made upstream, kept rather than re-rolled so a call chain agrees:
//! a verified decision token (signed by an earlier Sluice), or, for meshes
//! without keys, the flags header or `sluice.*` baggage members from a trusted
//! peer address.
use super::request::Request;
use crate::decision::TokenStatus;
use crate::plan::{FlagPlan, Plan, ReleasePlan, RoutePlan};
use crate::token::{self, Claims, Kind};

pub(super) struct Propagated<'a> {
    /// `name=variant` pairs from a trusted peer, empty when untrusted.
    pairs: Vec<(&'a [u8], &'a [u8])>,
    /// A verified token's decisions.
    claims: Option<Claims>,
}

impl<'a> Propagated<'a> {
    /// Reads what the request carries; `user` is the key its decisions are
    /// bucketed by, which a token must have been signed for.
    pub(super) fn read(
        plan: &Plan,
        req: &Request<'a>,
        user: Option<&[u8]>,
    ) -> (Propagated<'a>, TokenStatus) {
        let (claims, status) = read_token(plan, req, user);
        let pairs = if claims.is_some() {
            Vec::new()
        } else {
            trusted_pairs(plan, req)
        };
        (Propagated { pairs, claims }, status)
    }

    pub(super) fn subject(&self) -> Option<[u8; 8]> {
        self.claims.as_ref().map(|c| c.subject)
    }

    pub(super) fn expires_s(&self) -> Option<u32> {
        self.claims.as_ref().map(|c| c.expires_s)
    }

    /// Nothing was decided upstream.
    pub(super) fn is_empty(&self) -> bool {
        self.claims.is_none() && self.pairs.is_empty()
    }

    fn chosen(&self, kind: Kind, name: &str) -> Option<&[u8]> {
        if let Some(claims) = &self.claims {
            return claims.get(kind, name).map(str::as_bytes);
        }
        if kind != Kind::Flag {
            return None;
        }
        self.pairs
            .iter()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| *v)
    }

    /// The variant decided upstream for this flag, if it names one of ours.
    pub(super) fn variant(&self, flag: &FlagPlan) -> Option<usize> {
        let want = self.chosen(Kind::Flag, &flag.name)?;
        flag.variant_names.iter().position(|v| v.as_bytes() == want)
    }

    /// The version decided upstream for this route, if it names one of ours.
    pub(super) fn version(&self, route: &RoutePlan) -> Option<usize> {
        let want = self.chosen(Kind::Route, &route.name)?;
        route.versions.iter().position(|v| v.as_bytes() == want)
    }

    /// Whether the user was put in this release upstream.
    #[inline(never)]
    pub(super) fn release(&self, release: &ReleasePlan) -> Option<bool> {
        match self.chosen(Kind::Release, &release.name)? {
            b"in" => Some(true),
            b"out" => Some(false),
            _ => None,
        }
    }
}

fn read_token(plan: &Plan, req: &Request, user: Option<&[u8]>) -> (Option<Claims>, TokenStatus) {
    let Some(t) = &plan.chain.token else {
        return (None, TokenStatus::Off);
    };
    let Some(text) = req.token else {
        return (None, TokenStatus::Absent);
    };
    let now_s = (req.now_ms.max(0) / 1000).min(u32::MAX as i64) as u32;
    match token::verify(text, t.max_bytes, &t.keys, now_s, &t.revisions) {
        // A token for another user is a replay, whatever its signature.
        Ok(claims) if user.is_some() && claims.subject != token::subject_of(user) => {
            (None, TokenStatus::Rejected(token::Rejection::Subject))
        }
        Ok(claims) => (Some(claims), TokenStatus::Accepted),
        Err(why) => (None, TokenStatus::Rejected(why)),
    }
}

fn trusted_pairs<'a>(plan: &Plan, req: &Request<'a>) -> Vec<(&'a [u8], &'a [u8])> {
    if plan.trusted_peers.is_empty() {
        return Vec::new();
    }
    pairs_from_trusted_peer(plan, req)
}

/// The flags header or our baggage members, when the peer is a trusted one.
#[inline(never)]
fn pairs_from_trusted_peer<'a>(plan: &Plan, req: &Request<'a>) -> Vec<(&'a [u8], &'a [u8])> {
    let trusted = req
        .source_ip()
        .is_some_and(|ip| plan.trusted_peers.iter().any(|c| c.contains(ip)));
    if !trusted {
        return Vec::new();
    }
    if let Some(header) = plan
        .incoming_flags_header
        .and_then(|i| req.headers.get(i).copied().flatten())
    {
        return split_pairs(header, b';', None);
    }
    match (
        &plan.baggage_prefix,
        plan.baggage_header
            .and_then(|i| req.headers.get(i).copied().flatten()),
    ) {
        (Some(prefix), Some(baggage)) => split_pairs(baggage, b',', Some(prefix.as_bytes())),
        _ => Vec::new(),
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
