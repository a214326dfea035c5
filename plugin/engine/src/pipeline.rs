//! The request pipeline, written once: the request's facts in, a header patch out. The filter
//! applies the patch with hostcalls; the tests, the benches and the CLI call the same function.
//!
//! The decision and the patch are kept by the caller between requests (`Scratch`), so a request
//! reuses their buffers instead of allocating: header names are the plan's, values are written
//! into one text buffer.
use crate::decision::{Decision, FlagCounts, FlagOutcome, Reason, TokenStatus};
use crate::engine::{self, Headers, OwnedHeaders, OwnedSeen, Request, RouteControl};
use crate::plan::{PieceGroup, Plan, TokenPlan};
use crate::salt_table::Buckets;
use crate::slots::Slots;
use crate::token::{self, Claims, Kind};
use std::ops::Range;

/// What the host knows about one request, as the filter gathered it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    pub headers: Headers<'a>,
    /// The peer address (`ip:port`), read only when `plan.reads_source_address`.
    pub source: Option<&'a [u8]>,
    /// The proxy's clock in Unix millis (the filter reads it when the plan has routes or reads the clock).
    pub now_ms: i64,
    /// Per-request randomness (random rollouts, minted sticky-cookie keys).
    pub entropy: u64,
}

/// What Sluice's state outside the config says about this request: the guards' verdicts and the
/// Unleash payload in force.
#[derive(Clone, Copy, Default)]
pub struct Live<'a> {
    /// Per route, indexed like `plan.routes`; missing entries are `Normal`.
    pub controls: &'a [RouteControl],
    /// The Unleash payload in force, if the config has an `unleash` source and one arrived.
    pub unleash: Option<&'a sluice_unleash::Engine>,
    /// The Spring Cloud Config flags in force, if the config has `sources.spring` and one arrived.
    pub spring: Option<&'a crate::spring_flags::SpringFlags>,
}

/// A response header the patch adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseHeader {
    SetCookie,
    /// The config's `overrides.debug_header`.
    Debug,
}

/// The changes to make to the request and its response. Only real changes: an owned header is
/// removed only when the request carries it, a header is set only when its value differs.
/// Names are indices into `plan.owned_headers`; values are ranges of `text`.
#[derive(Debug, Default, Clone)]
pub struct Patch {
    text: String,
    remove: Vec<usize>,
    set: Vec<(usize, Range<usize>)>,
    response: Vec<(ResponseHeader, Range<usize>)>,
    /// This hop signed a new decision token.
    signed: bool,
}

impl Patch {
    pub fn clear(&mut self) {
        self.text.clear();
        self.remove.clear();
        self.set.clear();
        self.response.clear();
        self.signed = false;
    }

    /// Whether this request got a newly signed decision token.
    pub fn signed_token(&self) -> bool {
        self.signed
    }

    /// Request headers to remove (incoming copies of headers Sluice owns).
    pub fn removals<'p>(&'p self, plan: &'p Plan) -> impl Iterator<Item = &'p str> + 'p {
        self.remove
            .iter()
            .filter_map(|i| plan.owned_headers.get(*i).map(String::as_str))
    }

    /// Request headers to set, each replacing every incoming copy.
    pub fn sets<'p>(&'p self, plan: &'p Plan) -> impl Iterator<Item = (&'p str, &'p str)> + 'p {
        self.set.iter().filter_map(|(i, range)| {
            Some((
                plan.owned_headers.get(*i)?.as_str(),
                self.text.get(range.clone())?,
            ))
        })
    }

    /// Response headers to add.
    pub fn response_headers<'p>(
        &'p self,
        plan: &'p Plan,
    ) -> impl Iterator<Item = (&'p str, &'p str)> + 'p {
        self.response.iter().filter_map(|(header, range)| {
            let name = match header {
                ResponseHeader::SetCookie => "set-cookie",
                ResponseHeader::Debug => plan.overrides.as_ref()?.debug_header.as_deref()?,
            };
            Some((name, self.text.get(range.clone())?))
        })
    }

    /// The request headers after the patch, in order: what the router and the upstream see.
    pub fn apply(&self, plan: &Plan, headers: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
        let removed: Vec<&str> = self.removals(plan).collect();
        let set: Vec<(&str, &str)> = self.sets(plan).collect();
        let mut out: Vec<(String, Vec<u8>)> = headers
            .iter()
            .filter(|(name, _)| !removed.contains(name) && !set.iter().any(|(n, _)| n == name))
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect();
        out.extend(
            set.iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
        );
        out
    }

    /// Writes one owned header's value (composed by `value` into the text buffer), unless the
    /// request already carries exactly that.
    fn write(
        &mut self,
        seen: &[OwnedSeen],
        written: &mut [bool],
        slot: usize,
        value: impl FnOnce(&mut String),
    ) {
        let start = self.text.len();
        value(&mut self.text);
        if let Some(w) = written.get_mut(slot) {
            *w = true;
        }
        let unchanged = seen
            .get(slot)
            .is_some_and(|s| s.copies == 1 && s.first == self.text.as_bytes().get(start..));
        if unchanged {
            self.text.truncate(start);
        } else {
            self.set.push((slot, start..self.text.len()));
        }
    }

    /// `write` of a value that is there already.
    #[inline(never)]
    fn write_str(&mut self, seen: &[OwnedSeen], written: &mut [bool], slot: usize, value: &str) {
        self.write(seen, written, slot, |out| out.push_str(value));
    }

    fn respond(&mut self, header: ResponseHeader, value: impl FnOnce(&mut String)) {
        let start = self.text.len();
        value(&mut self.text);
        self.response.push((header, start..self.text.len()));
    }
}

/// The buffers one VM reuses across requests.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    pub decision: Decision,
    pub patch: Patch,
    /// The request's key hashed under every flag salt.
    pub buckets: Buckets,
    /// Flag evaluations since the last stats flush (`VmState::flush_metrics`).
    pub flag_counts: FlagCounts,
}

/// One request through Sluice: pick the plan's facts, evaluate into `scratch.decision`, and turn
/// it into `scratch.patch`.
///
/// Kept out of its caller, as are its parts below: V8 compiles every function of the module at
/// load, and the memory Envoy keeps from that grows with the size of the largest functions
/// (BENCHMARKS.md §0f). Each is called once per request.
#[inline(never)]
pub fn run(plan: &Plan, live: Live, facts: &Facts, scratch: &mut Scratch) {
    // Percent-decoded baggage values, for the few requests that have escapes.
    let mut decoded = Vec::new();
    let mut seen: OwnedHeaders = OwnedSeen::slots(plan);
    let mut req = Request::for_plan(plan);
    req.read_headers(plan, facts.headers, &mut seen);
    req.decode_baggage(&mut decoded);
    req.source = facts.source;
    req.now_ms = facts.now_ms;
    req.entropy = facts.entropy;
    let decision = &mut scratch.decision;
    let kept = (&mut scratch.buckets, &mut scratch.flag_counts);
    engine::evaluate_into(plan, &req, live.controls, live.unleash, decision, kept);
    if let Some(spring) = live.spring {
        crate::spring_flags::evaluate_into(spring, plan, &req, &mut decision.unleash);
    }
    write_patch(plan, decision, &req, &seen, &mut scratch.patch);
}

/// The patch for a decision: request headers written, owned ones not written removed, and
/// the response's cookies and debug header.
#[inline(never)]
fn write_patch(
    plan: &Plan,
    decision: &Decision,
    req: &Request,
    seen: &[OwnedSeen],
    patch: &mut Patch,
) {
    patch.clear();
    let mut written: Slots<bool> = Slots::filled(false, plan.owned_headers.len());
    write_request_headers(plan, decision, req, seen, &mut written, patch);
    remove_unwritten(seen, &written, patch);
    if decision.routes.iter().any(|r| r.minted_cookie.is_some()) {
        respond_cookies(plan, decision, patch);
    }
    let debug = plan
        .overrides
        .as_ref()
        .is_some_and(|o| o.debug_header.is_some());
    if decision.tester && debug {
        respond_debug(plan, decision, patch);
    }
}

/// `set-cookie` for each sticky route that minted a key for this request.
#[inline(never)]
fn respond_cookies(plan: &Plan, decision: &Decision, patch: &mut Patch) {
    for r in &decision.routes {
        let (Some(cookie), Some(key)) = (&plan.routes[r.route].sticky_cookie, &r.minted_cookie)
        else {
            continue;
        };
        patch.respond(ResponseHeader::SetCookie, |out| {
            out.push_str(&cookie.name);
            out.push('=');
            out.push_str(key);
            out.push_str(&cookie.attributes);
        });
    }
}

/// The debug header for a tester: the decision explained.
#[inline(never)]
fn respond_debug(plan: &Plan, decision: &Decision, patch: &mut Patch) {
    patch.respond(ResponseHeader::Debug, |out| {
        decision.explain_into(plan, out)
    });
}

/// Incoming copies of owned headers this request did not write are removed: a client cannot
/// set what Sluice owns.
#[inline(never)]
fn remove_unwritten(seen: &[OwnedSeen], written: &[bool], patch: &mut Patch) {
    for (slot, seen) in seen.iter().enumerate() {
        if seen.copies > 0 && !written.get(slot).copied().unwrap_or(false) {
            patch.remove.push(slot);
        }
    }
}

/// `run` with fresh buffers, for callers that handle one request at a time.
pub fn run_once(plan: &Plan, live: Live, facts: &Facts) -> Scratch {
    let mut scratch = Scratch::default();
    run(plan, live, facts, &mut scratch);
    scratch
}

/// The request headers the decision writes, in a stable order: the flags header, each flag's
/// own header, Unleash features' headers, route headers, baggage.
#[inline(never)]
fn write_request_headers(
    plan: &Plan,
    decision: &Decision,
    req: &Request,
    seen: &[OwnedSeen],
    written: &mut [bool],
    patch: &mut Patch,
) {
    let has_flags = !plan.flags.is_empty() || !decision.unleash.is_empty();
    if let (Some(slot), true) = (plan.outputs.flags_header, has_flags) {
        patch.write(seen, written, slot, |out| {
            write_flags_header(plan, decision, out);
        });
    }
    for &(i, slot) in &plan.outputs.flag_headers {
        if let (Some(flag), Some(outcome)) = (plan.flags.get(i), decision.flags.get(i)) {
            let value = &flag.variant_values[outcome.variant];
            patch.write_str(seen, written, slot, value);
        }
    }
    for feature in &decision.unleash {
        if let Some((i, value)) = &feature.header {
            if let Some(slot) = plan.outputs.unleash_features.get(*i) {
                patch.write_str(seen, written, *slot, value);
            }
        }
    }
    for r in &decision.routes {
        let route = &plan.routes[r.route];
        if let Some(slot) = plan.outputs.routes.get(r.route) {
            let version = &route.versions[r.version];
            patch.write_str(seen, written, *slot, version);
        }
    }
    if let (Some(prefix), Some(slot)) = (&plan.baggage_prefix, plan.outputs.baggage) {
        let incoming = plan
            .baggage_header
            .and_then(|i| req.headers.get(i).copied().flatten());
        let mut signed = false;
        patch.write(seen, written, slot, |out| {
            signed = write_baggage(plan, decision, prefix, req, incoming, out);
        });
        patch.signed |= signed;
    }
}

/// The decision token as a baggage member: the incoming one when it already
/// holds every decision made here, else a new one signed with the first key
/// (keeping an accepted token's expiry, so re-signing never extends it).
/// Returns whether it signed.
#[inline(never)]
fn write_token(
    plan: &Plan,
    decision: &Decision,
    req: &Request,
    start: usize,
    out: &mut String,
) -> bool {
    let Some(t) = &plan.chain.token else {
        return false;
    };
    let Some((key_id, key)) = t.keys.first() else {
        return false;
    };
    separate(out, start, ',');
    out.push_str(&t.member);
    out.push('=');
    if let (true, Some(incoming)) = (
        all_from_token(decision),
        req.token.and_then(|t| std::str::from_utf8(t).ok()),
    ) {
        out.push_str(incoming);
        return false;
    }
    let now_s = (req.now_ms.max(0) / 1000).min(i64::from(u32::MAX)) as u32;
    let claims = claims_of(plan, t, decision, now_s);
    token::sign_into(&claims, key_id, key, out);
    true
}

/// Whether the incoming token was accepted and holds every decision made here.
#[inline(never)]
fn all_from_token(decision: &Decision) -> bool {
    let upstream = |reason: Reason| reason == Reason::Propagated;
    decision.token == TokenStatus::Accepted
        && decision.flags.iter().all(|f| upstream(f.reason))
        && decision
            .routes
            .iter()
            .chain(&decision.implied)
            .all(|r| upstream(r.reason))
        && decision.releases.iter().all(|r| upstream(r.reason))
}

/// Every decision of this hop as the token's claims, to be signed at `now_s`.
#[inline(never)]
fn claims_of(plan: &Plan, t: &TokenPlan, decision: &Decision, now_s: u32) -> Claims {
    let mut claims = Claims {
        expires_s: decision
            .token_expires_s
            .unwrap_or(now_s.saturating_add(t.ttl_s)),
        revision: t.revisions.first().copied().unwrap_or_default(),
        subject: decision.subject,
        decisions: Vec::with_capacity(
            plan.flags.len()
                + decision.routes.len()
                + decision.implied.len()
                + decision.releases.len(),
        ),
    };
    let decisions = &mut claims.decisions;
    for (flag, outcome) in plan.flags.iter().zip(&decision.flags) {
        let variant = flag.variant_names.get(outcome.variant);
        push_claim(
            decisions,
            Kind::Flag,
            &flag.name,
            variant.map_or("", String::as_str),
        );
    }
    for r in decision.routes.iter().chain(&decision.implied) {
        let route = &plan.routes[r.route];
        let version = route.versions.get(r.version);
        push_claim(
            decisions,
            Kind::Route,
            &route.name,
            version.map_or("", String::as_str),
        );
    }
    for (release, outcome) in plan.chain.releases.iter().zip(&decision.releases) {
        let state = if outcome.member { "in" } else { "out" };
        push_claim(decisions, Kind::Release, &release.name, state);
    }
    claims
}

#[inline(never)]
fn push_claim(decisions: &mut Vec<(Kind, String, String)>, kind: Kind, name: &str, value: &str) {
    decisions.push((kind, name.to_string(), value.to_string()));
}

/// `checkout=on;theme=dark`: native flags, then Unleash features, each sorted by name.
#[inline(never)]
fn write_flags_header(plan: &Plan, decision: &Decision, out: &mut String) {
    // Each piece but the first starts with `;` (cheaper than removing one after: the text moves).
    let start = out.len();
    let pieces = &plan.flag_pieces;
    push_flag_pieces(out, start, &pieces.header, &pieces.groups, &decision.flags);
    for feature in &decision.unleash {
        separate(out, start, ';');
        out.push_str(&feature.name);
        out.push('=');
        out.push_str(&feature.variant);
    }
}

/// W3C baggage: the incoming members minus any that claim our prefix (a client must not set
/// them), plus ours and the decision token. Returns whether a token was signed.
#[inline(never)]
fn write_baggage(
    plan: &Plan,
    decision: &Decision,
    prefix: &str,
    req: &Request,
    incoming: Option<&[u8]>,
    out: &mut String,
) -> bool {
    // Each piece but the first starts with `,` (cheaper than removing one after: the text moves).
    let start = out.len();
    if let Some(incoming) = incoming {
        keep_incoming_members(incoming, prefix, start, out);
    }
    let pieces = &plan.flag_pieces;
    push_flag_pieces(out, start, &pieces.baggage, &pieces.groups, &decision.flags);
    for feature in &decision.unleash {
        separate(out, start, ',');
        out.push_str(prefix);
        out.push_str(&feature.name);
        out.push('=');
        out.push_str(&feature.variant);
    }
    write_chain_members(plan, decision, prefix, start, out);
    write_token(plan, decision, req, start, out)
}

/// Route versions and releases as baggage members, for services to read; later hops trust only
/// the signed token's copy.
#[inline(never)]
fn write_chain_members(
    plan: &Plan,
    decision: &Decision,
    prefix: &str,
    start: usize,
    out: &mut String,
) {
    for r in decision.routes.iter().chain(&decision.implied) {
        let route = &plan.routes[r.route];
        separate(out, start, ',');
        out.push_str(prefix);
        out.push_str("route.");
        out.push_str(&route.name);
        out.push('=');
        out.push_str(route.versions.get(r.version).map_or("", String::as_str));
    }
    if !plan.chain.releases.is_empty() {
        write_release_members(plan, decision, prefix, start, out);
    }
}

/// Each release as a baggage member: `prefix` `release.name=in` (or `=out`).
#[inline(never)]
fn write_release_members(
    plan: &Plan,
    decision: &Decision,
    prefix: &str,
    start: usize,
    out: &mut String,
) {
    for (release, outcome) in plan.chain.releases.iter().zip(&decision.releases) {
        separate(out, start, ',');
        out.push_str(prefix);
        out.push_str("release.");
        out.push_str(&release.name);
        out.push_str(if outcome.member { "=in" } else { "=out" });
    }
}

/// The incoming baggage members a client may set: not ours, not empty, no control characters.
#[inline(never)]
fn keep_incoming_members(incoming: &[u8], prefix: &str, start: usize, out: &mut String) {
    let Ok(incoming) = std::str::from_utf8(incoming) else {
        return;
    };
    for member in incoming.split(',') {
        let member = member.trim();
        if member.is_empty() || member.starts_with(prefix) || member.chars().any(char::is_control) {
            continue;
        }
        separate(out, start, ',');
        out.push_str(member);
    }
}

/// Each flag's `name=variant` for its outcome, a piece per `FlagPieces` group. A piece starts
/// with its separator, written without it when it is the first after `start`: that check is
/// made once, before the loop.
#[inline(never)]
fn push_flag_pieces(
    out: &mut String,
    start: usize,
    pieces: &[Box<str>],
    groups: &[PieceGroup],
    outcomes: &[FlagOutcome],
) {
    let mut outcomes = outcomes;
    let mut groups = groups.iter();
    if out.len() == start {
        if let Some(group) = groups.next() {
            let piece = group_piece(pieces, group, &mut outcomes);
            out.push_str(piece.and_then(|p| p.get(1..)).unwrap_or_default());
        }
    }
    for group in groups {
        if let Some(piece) = group_piece(pieces, group, &mut outcomes) {
            out.push_str(piece);
        }
    }
}

/// The piece for the group's flags' outcomes, taken off the front of `outcomes` (one to four:
/// `PieceGroup`).
#[inline(always)]
fn group_piece<'p>(
    pieces: &'p [Box<str>],
    group: &PieceGroup,
    outcomes: &mut &[FlagOutcome],
) -> Option<&'p str> {
    let [s0, s1, s2] = group.strides.map(|s| s as usize);
    let (combination, rest) = match (group.flags, *outcomes) {
        (1, [a, rest @ ..]) => (a.variant, rest),
        (2, [a, b, rest @ ..]) => (a.variant * s0 + b.variant, rest),
        (3, [a, b, c, rest @ ..]) => (a.variant * s0 + b.variant * s1 + c.variant, rest),
        (4, [a, b, c, d, rest @ ..]) => (
            a.variant * s0 + b.variant * s1 + c.variant * s2 + d.variant,
            rest,
        ),
        _ => return None,
    };
    *outcomes = rest;
    pieces.get(group.first as usize + combination).map(|p| &**p)
}

/// The separator before a piece, unless it is the first after `start`.
fn separate(out: &mut String, start: usize, separator: char) {
    if out.len() > start {
        out.push(separator);
    }
}
