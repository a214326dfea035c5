//! What the engine decided for one request, and how it is written: request
//! headers for routing and services, response headers for testers and
//! sticky cookies.
use crate::plan::{Plan, VariantId};
use std::fmt::Write;

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
    pub fn write_to(&self, out: &mut String) {
        let _ = match self {
            Reason::Disabled => out.write_str("disabled"),
            Reason::Scheduled => out.write_str("scheduled"),
            Reason::RampedOut => out.write_str("ramped-out"),
            Reason::PrerequisiteFailed => out.write_str("prerequisite"),
            Reason::Rule(i) => write!(out, "rule{i}"),
            Reason::Rollout(i) => write!(out, "rollout{i}"),
            Reason::Default => out.write_str("default"),
            Reason::NoIdentity => out.write_str("no-identity"),
            Reason::Override => out.write_str("override"),
            Reason::Propagated => out.write_str("propagated"),
            Reason::Pinned(i) => write!(out, "pin{i}"),
            Reason::Preview => out.write_str("preview"),
            Reason::Weighted => out.write_str("weight"),
            Reason::GuardTripped => out.write_str("guard"),
            Reason::Release => out.write_str("release"),
            Reason::Requires => out.write_str("requires"),
        };
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

    /// `explain`, appended to `out`.
    pub fn explain_into(&self, plan: &Plan, out: &mut String) {
        let start = out.len();
        if !plan.revision.is_empty() {
            let _ = write!(out, "rev={}; ", plan.revision);
        }
        for r in &self.routes {
            let route = &plan.routes[r.route];
            let _ = write!(out, "{}={}(", route.name, route.versions[r.version]);
            r.reason.write_to(out);
            out.push_str("); ");
        }
        for (flag, outcome) in plan.flags.iter().zip(&self.flags) {
            out.push_str(flag.fragments[outcome.variant].get(1..).unwrap_or_default());
            out.push('(');
            outcome.reason.write_to(out);
            out.push_str("); ");
        }
        for feature in &self.unleash {
            let _ = write!(out, "{}={}(unleash); ", feature.name, feature.variant);
        }
        for (release, outcome) in plan.chain.releases.iter().zip(&self.releases) {
            let state = if outcome.member { "in" } else { "out" };
            let _ = write!(out, "{}={state}(", release.name);
            outcome.reason.write_to(out);
            out.push_str("); ");
        }
        let kept = out[start..].trim_end_matches([';', ' ']).len();
        out.truncate(start + kept);
    }
}
