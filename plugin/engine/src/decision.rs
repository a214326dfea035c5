//! What the engine decided for one request, and how it is written: request
//! headers for routing and services, response headers for testers and
//! sticky cookies.
use crate::plan::{Plan, VariantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Kill switch off.
    Disabled,
    /// Before `schedule.enable_at`.
    Scheduled,
    /// Outside the ramp's current share.
    RampedOut,
    PrerequisiteFailed,
    /// Rule i served a fixed variant.
    Rule(usize),
    /// Rule i's rollout placed the user.
    Rollout(usize),
    /// No rule matched.
    Default,
    /// A rollout needed an identity the request lacks.
    NoIdentity,
    /// An authorised tester asked for it.
    Override,
    /// A trusted peer (an earlier hop) had decided it.
    Propagated,
    /// Route pin i forced the version.
    Pinned(usize),
    /// Blue-green preview condition reached the idle color.
    Preview,
    /// Canary, shift or split weights placed the user.
    Weighted,
    /// The canary guard tripped; everyone is on stable.
    GuardTripped,
    /// The route's release placed the user (in: its version; out: stable).
    Release,
    /// The version's requirements did not hold for this user.
    Requires,
}

impl Reason {
    #[inline(never)]
    pub fn write_to(&self, out: &mut String) {
        let (name, index) = match self {
            Reason::Disabled => ("disabled", None),
            Reason::Scheduled => ("scheduled", None),
            Reason::RampedOut => ("ramped-out", None),
            Reason::PrerequisiteFailed => ("prerequisite", None),
            Reason::Rule(i) => ("rule", Some(*i)),
            Reason::Rollout(i) => ("rollout", Some(*i)),
            Reason::Default => ("default", None),
            Reason::NoIdentity => ("no-identity", None),
            Reason::Override => ("override", None),
            Reason::Propagated => ("propagated", None),
            Reason::Pinned(i) => ("pin", Some(*i)),
            Reason::Preview => ("preview", None),
            Reason::Weighted => ("weight", None),
            Reason::GuardTripped => ("guard", None),
            Reason::Release => ("release", None),
            Reason::Requires => ("requires", None),
        };
        out.push_str(name);
        if let Some(i) = index {
            push_decimal(out, i);
        }
    }
}

/// `n` in decimal (without the formatting machinery `write!` brings).
fn push_decimal(out: &mut String, n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for d in &digits[at..] {
        out.push(char::from(*d));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagOutcome {
    pub variant: VariantId,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOutcome {
    /// Index into `plan.routes`.
    pub route: usize,
    /// Index into that route's versions.
    pub version: usize,
    pub reason: Reason,
    /// Set when a sticky cookie must be minted with this key.
    pub minted_cookie: Option<String>,
}

/// One feature's answer, as written on the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureOutcome {
    pub name: String,
    /// Variant name when one was chosen, else `on` / `off`.
    pub variant: String,
    /// The header of its own and the value for it (the variant's payload
    /// value when it has one), when configured.
    /// `(index into plan.unleash.feature_headers, value)`, when the feature has a header of its own.
    pub header: Option<(usize, String)>,
    /// What Unleash's usage metrics count for it, when they are on and Unleash evaluated it.
    pub usage: Option<FeatureUsage>,
}

/// One evaluation as an Unleash SDK's `getVariant` counts it: yes/no by whether the feature is
/// enabled, and the variant by Unleash's name (`disabled` when none was chosen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureUsage {
    pub enabled: bool,
    /// The variant's name as Unleash wrote it; `None` is Unleash's `disabled`.
    pub variant: Option<String>,
}

/// Whether the user is in a release, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseOutcome {
    pub member: bool,
    pub reason: Reason,
}

/// What became of the incoming decision token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenStatus {
    /// The config signs no decisions.
    #[default]
    Off,
    /// None came: this hop decides first and signs.
    Absent,
    /// Verified: its decisions were kept.
    Accepted,
    /// Ignored (and counted); everything was decided here.
    Rejected(crate::token::Rejection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverrideStatus {
    #[default]
    Absent,
    Honoured,
    /// The request asked without the secret or an allowed source.
    Refused,
}

/// How often each flag variant has been decided since the counts were last flushed, one count
/// per `FlagPlan::first_count + variant`. Counted as each flag is decided (a second pass over a
/// request's flags cost ~30 instructions per flag), kept by the caller between requests.
#[derive(Debug, Clone, Default)]
pub struct FlagCounts(Vec<u64>);

impl FlagCounts {
    /// Room for `slots` counts: called before a request's flags are counted (a flush keeps the
    /// length, so this grows the counts only on a VM's first request with a plan).
    #[inline]
    pub fn reserve_slots(&mut self, slots: usize) {
        if self.0.len() < slots {
            self.grow(slots);
        }
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, slots: usize) {
        self.0.resize(slots, 0);
    }

    /// Counts one evaluation in `slot` (`reserve_slots` made room for it).
    #[inline]
    pub fn add(&mut self, slot: usize) {
        if let Some(n) = self.0.get_mut(slot) {
            *n += 1;
        }
    }

    /// Hands every count that is not zero to `f` (slot, count) and starts again from zero.
    pub fn flush(&mut self, mut f: impl FnMut(usize, u64)) {
        for (slot, n) in self.0.iter_mut().enumerate() {
            if *n > 0 {
                f(slot, *n);
                *n = 0;
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Decision {
    /// One per `plan.flags`, in its order (sorted by flag name).
    pub flags: Vec<FlagOutcome>,
    /// The routes this request matched.
    pub routes: Vec<RouteOutcome>,
    pub overrides: OverrideStatus,
    /// Unleash features, when the config has an `unleash` source (filled by
    /// the caller, which holds the current payload).
    pub unleash: Vec<FeatureOutcome>,
    /// The request proved tester rights (secret or allowed source): it may
    /// see the debug header.
    pub tester: bool,
    /// One per `plan.chain.releases`.
    pub releases: Vec<ReleaseOutcome>,
    /// Routes decided for this user though this request does not match them
    /// (they travel in the token to the hops that do).
    pub implied: Vec<RouteOutcome>,
    pub token: TokenStatus,
    /// An accepted token's expiry, kept when this hop signs anew.
    pub token_expires_s: Option<u32>,
    /// Whom a token signed here is for (`token::subject_of` the user key;
    /// an accepted token's subject when this hop sees no key).
    pub subject: [u8; 8],
    /// Why the incoming baggage was not read whole.
    pub baggage_flaw: Option<crate::engine::request::BaggageFlaw>,
}

impl Decision {
    /// `Set-Cookie` values for sticky cookies minted by this request.
    pub fn set_cookies(&self, plan: &Plan) -> Vec<String> {
        self.routes
            .iter()
            .filter_map(|r| {
                let cookie = plan.routes[r.route].sticky_cookie.as_ref()?;
                let key = r.minted_cookie.as_ref()?;
                Some(format!("{}={}{}", cookie.name, key, cookie.attributes))
            })
            .collect()
    }

    /// The debug header's value: `rev=…; reviews=v2(pin0); checkout=on(rule1)`.
    pub fn explain(&self, plan: &Plan) -> String {
        let mut out = String::new();
        self.explain_into(plan, &mut out);
        out
    }

    /// `explain`, appended to `out` (pieces pushed, not formatted: no formatting machinery in
    /// the module for it).
    #[inline(never)]
    pub fn explain_into(&self, plan: &Plan, out: &mut String) {
        let start = out.len();
        if !plan.revision.is_empty() {
            push_all(out, &["rev=", &plan.revision, "; "]);
        }
        self.explain_routes(plan, out);
        self.explain_flags(plan, out);
        for feature in &self.unleash {
            push_all(out, &[&feature.name, "=", &feature.variant, "(unleash); "]);
        }
        for (release, outcome) in plan.chain.releases.iter().zip(&self.releases) {
            let state = if outcome.member { "in" } else { "out" };
            push_all(out, &[&release.name, "=", state, "("]);
            outcome.reason.write_to(out);
            out.push_str("); ");
        }
        let kept = out[start..].trim_end_matches([';', ' ']).len();
        out.truncate(start + kept);
    }

    /// `explain_into`'s part for the routes: `name=version(reason); ` each.
    #[inline(never)]
    fn explain_routes(&self, plan: &Plan, out: &mut String) {
        for r in &self.routes {
            let route = &plan.routes[r.route];
            push_all(out, &[&route.name, "=", &route.versions[r.version], "("]);
            r.reason.write_to(out);
            out.push_str("); ");
        }
    }

    /// `explain_into`'s part for the flags: `name=variant(reason); ` each.
    #[inline(never)]
    fn explain_flags(&self, plan: &Plan, out: &mut String) {
        for (flag, outcome) in plan.flags.iter().zip(&self.flags) {
            let variant = flag.variant_names.get(outcome.variant);
            push_all(out, &[&flag.name, "=", variant.map_or("", String::as_str)]);
            out.push('(');
            outcome.reason.write_to(out);
            out.push_str("); ");
        }
    }
}

#[inline(never)]
fn push_all(out: &mut String, pieces: &[&str]) {
    for piece in pieces {
        out.push_str(piece);
    }
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn reasons_read_as_the_debug_header_writes_them() {
        let cases = [
            (Reason::Rule(0), "rule0"),
            (Reason::Rollout(12), "rollout12"),
            (Reason::Pinned(305), "pin305"),
            (Reason::Rule(usize::MAX), "rule18446744073709551615"),
            (Reason::RampedOut, "ramped-out"),
        ];
        for (reason, text) in cases {
            let mut out = String::from("x=");
            reason.write_to(&mut out);
            assert_eq!(out, format!("x={text}"));
        }
    }
}
