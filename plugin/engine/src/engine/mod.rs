//! The engine: plan + request → decision. Pure: no host calls, no clock of
//! its own, no randomness but the request's `entropy`.
mod conditions;
mod overrides;
mod propagation;
pub mod request;
pub mod unleash;

pub use conditions::{holds, matches};
pub use request::{Headers, OwnedHeaders, OwnedSeen, Request};

use crate::bucket::{random_bucket, Salt};
use crate::decision::{
    Decision, FlagCounts, FlagOutcome, OverrideStatus, Reason, ReleaseOutcome, RouteOutcome,
};
use crate::salt_table::{Buckets, SaltTable};
use sluice_primitives::swar;

use crate::plan::{
    AuthorityMatch, FlagPlan, KeyPlan, Plan, RampPlan, ReleasePlan, Requirement, RoutePlan, Serve,
    Strategy, Subject,
};
use overrides::Overrides;
use propagation::Propagated;

/// Canary weights imposed from outside the config: the guard's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteControl {
    /// Follow the config's weights.
    Normal,
    /// Tripped with rollback: everyone on the baseline.
    RolledBack,
    /// Tripped with pause: hold this weight (buckets).
    Paused(u32),
}

/// Evaluates with the config's own Unleash payload (if any) and no guard.
pub fn evaluate(plan: &Plan, req: &Request) -> Decision {
    let initial = plan.unleash.as_ref().and_then(|u| u.initial.as_deref());
    evaluate_with(plan, req, &[], initial)
}

/// Evaluates with per-route controls (indexed like `plan.routes`; missing
/// entries are `Normal`).
pub fn evaluate_with(
    plan: &Plan,
    req: &Request,
    controls: &[RouteControl],
    unleash_engine: Option<&sluice_unleash::Engine>,
) -> Decision {
    let mut decision = Decision::default();
    let kept = (&mut Buckets::default(), &mut FlagCounts::default());
    evaluate_into(plan, req, controls, unleash_engine, &mut decision, kept);
    decision
}

/// `evaluate_with` into a decision and bucket hashes kept between requests, so their lists keep
/// their capacity.
#[inline(never)]
pub fn evaluate_into(
    plan: &Plan,
    req: &Request,
    controls: &[RouteControl],
    unleash_engine: Option<&sluice_unleash::Engine>,
    decision: &mut Decision,
    (buckets, counts): (&mut Buckets, &mut FlagCounts),
) {
    let keys = Keys::of(plan, req);
    let overrides = Overrides::read(plan, req);
    let (propagated, token) = Propagated::read(plan, req, keys.user.or(keys.session));
    decision.token = token;
    decision.token_expires_s = propagated.expires_s();
    if plan.chain.token.is_some() {
        decision.subject = match (keys.user.or(keys.session), propagated.subject()) {
            (None, Some(upstream)) => upstream,
            (key, _) => crate::token::subject_of(key),
        };
    }
    decision.baggage_flaw = req.baggage_flaw;
    let upstream = Upstream::of(&overrides, &propagated);
    buckets.clear(&plan.salts);
    let mut sticky = FlagBuckets {
        table: &plan.salts,
        hashes: buckets,
    };
    decide_flags(
        plan,
        req,
        &keys,
        &upstream,
        &mut decision.flags,
        &mut sticky,
        counts,
    );
    decide_releases(
        plan,
        req,
        controls,
        &keys,
        &upstream,
        &mut decision.releases,
    );
    decide_routes(plan, req, controls, &keys, &upstream, decision);
    if plan.chain.has_requirements {
        enforce_requirements(plan, decision);
    }
    finish(plan, req, overrides.status(), unleash_engine, decision);
}

/// The decision's tester status and Unleash features, after flags and routes.
#[inline(never)]
fn finish(
    plan: &Plan,
    req: &Request,
    status: OverrideStatus,
    unleash_engine: Option<&sluice_unleash::Engine>,
    decision: &mut Decision,
) {
    decision.tester = match status {
        OverrideStatus::Honoured => true,
        OverrideStatus::Refused => false,
        OverrideStatus::Absent => {
            plan.overrides
                .as_ref()
                .is_some_and(|o| o.debug_header.is_some())
                && overrides::authorised(plan, req)
        }
    };
    decision.overrides = status;
    decision.unleash = match &plan.unleash {
        Some(u) => unleash::evaluate(u, unleash_engine, req),
        None => Vec::new(),
    };
}

/// What this request carries that fixes decisions: a tester's overrides and upstream decisions.
struct Upstream<'u, 'a> {
    overrides: &'u Overrides<'a>,
    propagated: &'u Propagated<'a>,
    /// Either is there: most requests carry neither, and skip two lookups per flag and route.
    fixed_anywhere: bool,
}

impl<'u, 'a> Upstream<'u, 'a> {
    fn of(overrides: &'u Overrides<'a>, propagated: &'u Propagated<'a>) -> Self {
        Upstream {
            overrides,
            propagated,
            fixed_anywhere: !overrides.is_empty() || !propagated.is_empty(),
        }
    }

    /// A tester's override of this flag, else the variant decided upstream, if either.
    #[inline(never)]
    fn flag(&self, flag: &FlagPlan) -> Option<FlagOutcome> {
        if let Some(variant) = self.overrides.flag(flag) {
            return Some(FlagOutcome {
                variant,
                reason: Reason::Override,
            });
        }
        let variant = self.propagated.variant(flag)?;
        Some(FlagOutcome {
            variant,
            reason: Reason::Propagated,
        })
    }

    /// A tester's override of this route, and the version decided upstream.
    #[inline(never)]
    fn route(&self, route: &RoutePlan) -> (Option<usize>, Option<usize>) {
        (self.overrides.route(route), self.propagated.version(route))
    }
}

// The flag, release and route loops are functions of their own: V8 compiles every function of
// the module at load, and what Envoy keeps of that grows with the size of the largest functions
// (BENCHMARKS.md §0f). Called once per request each.
#[inline(never)]
fn decide_flags(
    plan: &Plan,
    req: &Request,
    keys: &Keys,
    upstream: &Upstream,
    flags: &mut Vec<FlagOutcome>,
    sticky: &mut FlagBuckets,
    counts: &mut FlagCounts,
) {
    counts.reserve_slots(plan.flag_count_slots);
    // The last request's outcomes stay in place only when this one overwrites each of them:
    // none of another user's decisions can be left behind.
    if !(plan.flag_order_covers_all && flags.len() == plan.flags.len()) {
        reset_flags(flags, plan.flags.len());
    }
    for &i in &plan.flag_order {
        let flag = &plan.flags[i];
        let fixed = if upstream.fixed_anywhere {
            upstream.flag(flag)
        } else {
            None
        };
        let outcome = match fixed {
            Some(outcome) => outcome,
            None => evaluate_flag(flag, req, keys, flags, sticky),
        };
        counts.add(flag.first_count as usize + outcome.variant);
        flags[i] = outcome;
    }
}

/// `len` placeholder outcomes, each overwritten in `plan.flag_order`.
#[inline(never)]
fn reset_flags(flags: &mut Vec<FlagOutcome>, len: usize) {
    flags.clear();
    flags.resize(
        len,
        FlagOutcome {
            variant: 0,
            reason: Reason::Default,
        },
    );
}

#[inline(never)]
fn decide_releases(
    plan: &Plan,
    req: &Request,
    controls: &[RouteControl],
    keys: &Keys,
    upstream: &Upstream,
    releases: &mut Vec<ReleaseOutcome>,
) {
    releases.clear();
    for release in &plan.chain.releases {
        let rolled_back = release
            .members
            .iter()
            .any(|(r, _)| controls.get(*r) == Some(&RouteControl::RolledBack));
        let outcome = match (
            upstream.overrides.release(release),
            upstream.propagated.release(release),
        ) {
            (Some(member), _) => ReleaseOutcome {
                member,
                reason: Reason::Override,
            },
            // A guard trip on any member rolls the whole release back.
            _ if rolled_back => ReleaseOutcome {
                member: false,
                reason: Reason::GuardTripped,
            },
            (None, Some(member)) => ReleaseOutcome {
                member,
                reason: Reason::Propagated,
            },
            (None, None) => evaluate_release(release, req, keys),
        };
        releases.push(outcome);
    }
}

#[inline(never)]
fn decide_routes(
    plan: &Plan,
    req: &Request,
    controls: &[RouteControl],
    keys: &Keys,
    upstream: &Upstream,
    decision: &mut Decision,
) {
    let routes = &mut decision.routes;
    routes.clear();
    decision.implied.clear();
    for (i, route) in plan.routes.iter().enumerate() {
        let matched = route_matches(route, req);
        if !matched && !plan.chain.decide_all_routes {
            continue;
        }
        let control = controls.get(i).copied().unwrap_or(RouteControl::Normal);
        let rolled_back = control == RouteControl::RolledBack
            && matches!(route.strategy, Strategy::Progressive { .. });
        let outcome = |version, reason| RouteOutcome {
            route: i,
            version,
            reason,
            minted_cookie: None,
        };
        let fixed = if upstream.fixed_anywhere {
            upstream.route(route)
        } else {
            (None, None)
        };
        let mut outcome = match fixed {
            (Some(version), _) => outcome(version, Reason::Override),
            // A tripped guard beats an upstream decision: safety first.
            (None, Some(_)) | (None, None) if rolled_back => {
                outcome(route.strategy.fallback(), Reason::GuardTripped)
            }
            (None, Some(version)) => outcome(version, Reason::Propagated),
            (None, None) => match plan.chain.route_release.get(i).copied().flatten() {
                Some((release, version)) => {
                    let member = decision.releases.get(release).is_some_and(|r| r.member);
                    let v = if member {
                        version
                    } else {
                        route.strategy.fallback()
                    };
                    outcome(v, Reason::Release)
                }
                None => evaluate_route(i, route, req, keys, control),
            },
        };
        if matched {
            routes.push(outcome);
        } else {
            // Not this request's route: no cookie is set for it.
            outcome.minted_cookie = None;
            decision.implied.push(outcome);
        }
    }
}

/// The request's identity keys, looked up once.
struct Keys<'a> {
    user: Option<&'a [u8]>,
    session: Option<&'a [u8]>,
}

impl<'a> Keys<'a> {
    #[inline(never)]
    fn of(plan: &Plan, req: &Request<'a>) -> Keys<'a> {
        let first = |sources: &[Subject]| {
            sources
                .iter()
                .find_map(|s| req.value(s).filter(|v| !v.is_empty()))
        };
        Keys {
            user: first(&plan.user_key),
            session: first(&plan.session_key),
        }
    }

    fn for_plan(&self, key: &KeyPlan) -> Option<&'a [u8]> {
        if key.session_first {
            self.session.or(self.user)
        } else {
            self.user.or(self.session)
        }
    }
}

/// The user's bucket under `salt`, or a random one when the config allows.
fn bucket_for(key: &KeyPlan, salt: &Salt, identity: Option<&[u8]>, req: &Request) -> Option<u32> {
    match identity {
        Some(k) => Some(salt.bucket(k)),
        None if key.random_without_identity => Some(random_bucket(salt, req.entropy)),
        None => None,
    }
}

/// The plan's salt table and this request's hashes under it: where flags' buckets come from.
struct FlagBuckets<'a> {
    table: &'a SaltTable,
    hashes: &'a mut Buckets,
}

impl FlagBuckets<'_> {
    /// `bucket_for` a flag with one of its salts, from the request's batch of hashes.
    #[inline]
    fn bucket(
        &mut self,
        flag: &FlagPlan,
        salt: &Salt,
        identity: Option<&[u8]>,
        req: &Request,
    ) -> Option<u32> {
        match identity {
            Some(k) => {
                let session_first = flag.key.session_first;
                Some(self.hashes.bucket(self.table, session_first, salt, k))
            }
            None => bucket_for(&flag.key, salt, None, req),
        }
    }
}

/// Why the user is outside a flag's ramp today, if they are.
#[inline(never)]
fn ramped_out(
    flag: &FlagPlan,
    ramp: &RampPlan,
    identity: Option<&[u8]>,
    req: &Request,
    sticky: &mut FlagBuckets,
) -> Option<Reason> {
    match sticky.bucket(flag, &ramp.salt, identity, req) {
        Some(b) if b < ramp.share_at(req.now_ms) => None,
        Some(_) => Some(Reason::RampedOut),
        None => Some(Reason::NoIdentity),
    }
}

fn evaluate_flag(
    flag: &FlagPlan,
    req: &Request,
    keys: &Keys,
    done: &[FlagOutcome],
    sticky: &mut FlagBuckets,
) -> FlagOutcome {
    let off = |reason| FlagOutcome {
        variant: flag.off_variant,
        reason,
    };
    if !flag.enabled {
        return off(Reason::Disabled);
    }
    if flag.enable_at_ms.is_some_and(|at| req.now_ms < at) {
        return off(Reason::Scheduled);
    }
    for (dep, allowed) in &flag.prerequisites {
        // A scan, not `contains`: the slice specialisation vectorises, which costs more than it
        // saves on the one or two variants a prerequisite names.
        let variant = done[*dep].variant;
        #[allow(clippy::manual_contains)]
        let met = allowed.iter().any(|a| *a == variant);
        if !met {
            return off(Reason::PrerequisiteFailed);
        }
    }
    if let Some(ramp) = &flag.ramp {
        let identity = keys.for_plan(&flag.key);
        if let Some(reason) = ramped_out(flag, ramp, identity, req, sticky) {
            return off(reason);
        }
    }
    for (i, rule) in flag.rules.iter().enumerate() {
        if rule.when.as_ref().is_some_and(|c| !holds(c, req)) {
            continue;
        }
        return match &rule.serve {
            Serve::Variant(v) => FlagOutcome {
                variant: *v,
                reason: Reason::Rule(i),
            },
            Serve::Rollout(rollout) => {
                match sticky.bucket(flag, &flag.key.salt, keys.for_plan(&flag.key), req) {
                    Some(b) => FlagOutcome {
                        variant: rollout.pick(b),
                        reason: Reason::Rollout(i),
                    },
                    None => FlagOutcome {
                        variant: flag.default,
                        reason: Reason::NoIdentity,
                    },
                }
            }
        };
    }
    FlagOutcome {
        variant: flag.default,
        reason: Reason::Default,
    }
}

#[inline(never)]
fn route_matches(route: &RoutePlan, req: &Request) -> bool {
    if !route.methods.is_empty() && !route.methods.iter().any(|m| m.as_bytes() == req.method) {
        return false;
    }
    if let Some(prefix) = &route.path_prefix {
        if !req.path.starts_with(prefix.as_bytes()) {
            return false;
        }
    }
    if route.authorities.is_empty() {
        return true;
    }
    let host = host_of(req.authority);
    route.authorities.iter().any(|a| match a {
        AuthorityMatch::Exact(h) => swar::eq_ignore_ascii_case(host, h.as_bytes()),
        AuthorityMatch::Suffix(s) => {
            host.len() > s.len()
                && swar::eq_ignore_ascii_case(&host[host.len() - s.len()..], s.as_bytes())
        }
    })
}

/// `:authority` without its port (`[v6]:port` kept bracketed).
fn host_of(authority: &[u8]) -> &[u8] {
    if authority.starts_with(b"[") {
        let end = authority
            .iter()
            .position(|b| *b == b']')
            .map_or(authority.len(), |e| e + 1);
        return &authority[..end];
    }
    match authority.iter().rposition(|b| *b == b':') {
        Some(at) => &authority[..at],
        None => authority,
    }
}

/// No key: the bucket of the route's sticky cookie if the request has a good one, else
/// `bucket_without_identity`.
#[inline(never)]
fn bucket_without_key(
    route: &RoutePlan,
    req: &Request,
    minted: &mut Option<String>,
) -> Option<u32> {
    let cookie = route
        .sticky_cookie
        .as_ref()
        .and_then(|cookie| req.cookie(&cookie.name))
        .filter(|v| is_cookie_key(v));
    match cookie {
        Some(key) => Some(route.key.salt.bucket(key)),
        None => bucket_without_identity(route, req, minted),
    }
}

/// No key: a freshly minted sticky-cookie key (kept in `minted`), or a random bucket when the
/// route allows it.
#[inline(never)]
fn bucket_without_identity(
    route: &RoutePlan,
    req: &Request,
    minted: &mut Option<String>,
) -> Option<u32> {
    if route.sticky_cookie.is_some() {
        let key = mint_key(&route.key.salt, req.entropy);
        let b = route.key.salt.bucket(key.as_bytes());
        *minted = Some(key);
        return Some(b);
    }
    route
        .key
        .random_without_identity
        .then(|| random_bucket(&route.key.salt, req.entropy))
}

#[inline(never)]
fn evaluate_route(
    index: usize,
    route: &RoutePlan,
    req: &Request,
    keys: &Keys,
    control: RouteControl,
) -> RouteOutcome {
    let outcome = |version, reason| RouteOutcome {
        route: index,
        version,
        reason,
        minted_cookie: None,
    };
    // A tripped guard sends everyone to stable, pinned users included.
    if let (Strategy::Progressive { baseline, .. }, RouteControl::RolledBack) =
        (&route.strategy, control)
    {
        return outcome(*baseline, Reason::GuardTripped);
    }
    for (i, (cond, version)) in route.pins.iter().enumerate() {
        if matches(cond, req) {
            return outcome(*version, Reason::Pinned(i));
        }
    }
    if let Strategy::BlueGreen {
        idle,
        preview: Some(preview),
        ..
    } = &route.strategy
    {
        if matches(preview, req) {
            return outcome(*idle, Reason::Preview);
        }
    }
    let fallback = route.strategy.fallback();

    // Identity: the configured keys, then the route's sticky cookie, then a
    // freshly minted cookie key.
    let mut minted = None;
    let bucket = match keys.for_plan(&route.key) {
        Some(key) => Some(route.key.salt.bucket(key)),
        None => bucket_without_key(route, req, &mut minted),
    };
    let Some(bucket) = bucket else {
        return outcome(fallback, Reason::NoIdentity);
    };
    let paused = match control {
        RouteControl::Paused(w) => Some(w),
        _ => None,
    };
    let version = route.strategy.version_at(bucket, req.now_ms, paused);
    RouteOutcome {
        route: index,
        version,
        reason: Reason::Weighted,
        minted_cookie: minted,
    }
}

/// Whether this user is in the release: pins in order, then the bucket
/// against the release's weight now.
#[inline(never)]
fn evaluate_release(release: &ReleasePlan, req: &Request, keys: &Keys) -> ReleaseOutcome {
    for (i, (cond, member)) in release.pins.iter().enumerate() {
        if matches(cond, req) {
            return ReleaseOutcome {
                member: *member,
                reason: Reason::Pinned(i),
            };
        }
    }
    match bucket_for(
        &release.key,
        &release.key.salt,
        keys.for_plan(&release.key),
        req,
    ) {
        Some(b) => ReleaseOutcome {
            member: b < release.schedule.weight_at(req.now_ms),
            reason: Reason::Weighted,
        },
        None => ReleaseOutcome {
            member: false,
            reason: Reason::NoIdentity,
        },
    }
}

/// Sends users whose version's requirements fail to the route's fallback,
/// until nothing changes (a fallback can break another version's
/// requirement; compile rules out cycles that could not settle). Decisions
/// from upstream and from testers are kept as they are.
#[inline(never)]
fn enforce_requirements(plan: &Plan, decision: &mut Decision) {
    for _ in 0..=plan.routes.len() {
        let mut failed = unmet_requirements(plan, decision);
        leave_releases(plan, decision, &mut failed);
        if !fall_back(plan, decision, &failed) {
            return;
        }
    }
}

/// The routes whose chosen version needs something this decision does not hold.
#[inline(never)]
fn unmet_requirements(plan: &Plan, decision: &Decision) -> Vec<usize> {
    let versions: Vec<(usize, usize)> = decision
        .routes
        .iter()
        .chain(&decision.implied)
        .map(|o| (o.route, o.version))
        .collect();
    let holds = |need: &Requirement| match *need {
        Requirement::Route(r, v) => versions.iter().any(|&(x, y)| x == r && y == v),
        Requirement::Flag(f, v) => decision.flags.get(f).is_some_and(|o| o.variant == v),
    };
    let mut failed = Vec::new();
    for o in decision.routes.iter().chain(&decision.implied) {
        if matches!(o.reason, Reason::Override | Reason::Propagated) {
            continue;
        }
        let needs = plan
            .chain
            .requires
            .get(o.route)
            .and_then(|vs| vs.iter().find(|(v, _)| *v == o.version).map(|(_, n)| n));
        if needs.is_some_and(|n| !n.iter().all(holds)) {
            failed.push(o.route);
        }
    }
    failed
}

/// A release moves as one: when a member cannot have its version, the user leaves the whole
/// release, and its other members fail too.
#[inline(never)]
fn leave_releases(plan: &Plan, decision: &mut Decision, failed: &mut Vec<usize>) {
    for r in failed.clone() {
        let Some((release, _)) = plan.chain.route_release.get(r).copied().flatten() else {
            continue;
        };
        if let Some(outcome) = decision.releases.get_mut(release) {
            if outcome.member {
                outcome.member = false;
                outcome.reason = Reason::Requires;
                let members = plan.chain.releases.get(release).map(|rel| &rel.members);
                failed.extend(members.into_iter().flatten().map(|(m, _)| *m));
            }
        }
    }
}

/// The failed routes back to their fallback version; whether any changed.
#[inline(never)]
fn fall_back(plan: &Plan, decision: &mut Decision, failed: &[usize]) -> bool {
    let mut changed = false;
    for o in decision
        .routes
        .iter_mut()
        .chain(decision.implied.iter_mut())
    {
        let fallback = plan.routes[o.route].strategy.fallback();
        let kept = matches!(o.reason, Reason::Override | Reason::Propagated);
        if failed.contains(&o.route) && o.version != fallback && !kept {
            o.version = fallback;
            o.reason = Reason::Requires;
            o.minted_cookie = None;
            changed = true;
        }
    }
    changed
}

/// Sticky-cookie keys are 16 lower-case hex digits; anything else is ignored
/// (and replaced), so a cookie cannot smuggle odd bytes into hashing.
fn is_cookie_key(value: &[u8]) -> bool {
    value.len() == 16
        && value
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn mint_key(salt: &str, entropy: u64) -> String {
    let hi = sluice_primitives::murmur3_x86_32(salt.as_bytes(), entropy as u32);
    let lo = sluice_primitives::murmur3_x86_32(&entropy.to_le_bytes(), hi);
    format!("{hi:08x}{lo:08x}")
}
