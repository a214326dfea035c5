//! `sluice diff OLD NEW`: what a push changes, per flag and route: the share of users moving
//! from each variant or version to each. Exact over the 10,000 buckets when an answer depends on
//! one bucket under the same salt in both configs; sampled over synthetic users otherwise.
use crate::common::{self, Arg, Report, RequestOptions};
use anyhow::{anyhow, Result};
use lexopt::ValueExt as _;
use serde_json::json;
use sluice_core::bucket::BUCKETS;
use sluice_core::engine::Headers;
use sluice_core::pipeline::{self, Facts, Live, Scratch};
use sluice_core::plan::{FlagPlan, Plan, RoutePlan, Serve, Strategy};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;

const HELP: &str = "\
sluice diff OLD NEW [--at TIME] [--users N] [--json]

What pushing NEW over OLD changes for users: per flag and route, the share of users that
moves from which variant or version to which, and a warning when users move backwards (out
of a canary, a new color or a variant they were in).

Exact (over all 10,000 buckets) when an answer depends only on the user's bucket under a salt
both configs share; otherwise sampled over N synthetic users (`user-0` ...) whose requests
carry only the user key (conditions, pins and previews see nothing else), and marked so.

OPTIONS:
  --at TIME     evaluate both configs at this time: RFC 3339 or unix seconds (default: now)
  --users N     synthetic users for sampled answers (default 100000)
  --json        one JSON document on stdout
  -h, --help    this help
";

/// Moves from (old, new) → users (or buckets).
type Moves = BTreeMap<(String, String), u64>;

pub fn run(args: Vec<OsString>) -> Result<Option<Report>> {
    let mut parser = lexopt::Parser::from_args(args);
    let (mut files, mut at, mut users, mut as_json) =
        (Vec::<PathBuf>::new(), None, 100_000u64, false);
    while let Some(arg) = common::next(&mut parser)? {
        match arg {
            Arg::Opt(o) if o == "-h" || o == "--help" => {
                crate::print_out(HELP);
                return Ok(None);
            }
            Arg::Opt(o) if o == "--json" => as_json = true,
            Arg::Opt(o) if o == "--at" => {
                at = Some(common::parse_time(&parser.value()?.string()?)?)
            }
            Arg::Opt(o) if o == "--users" => users = parser.value()?.parse()?,
            Arg::Value(v) if files.len() < 2 => files.push(v.into()),
            arg => return Err(common::unexpected(arg, "diff")),
        }
    }
    let [old_file, new_file] = files.as_slice() else {
        return Err(anyhow!("diff needs OLD and NEW (see sluice diff --help)"));
    };
    let users = users.max(1);
    let old = match common::load(old_file)? {
        Ok(l) => l,
        Err(r) => return Ok(Some(r)),
    };
    let new = match common::load(new_file)? {
        Ok(l) => l,
        Err(r) => return Ok(Some(r)),
    };
    let now = at.unwrap_or_else(common::now_ms);
    let (a, b) = (&old.plan, &new.plan);
    let mut items = Vec::new();

    for flag in names(
        a.flags.iter().map(|f| &f.name),
        b.flags.iter().map(|f| &f.name),
    ) {
        let (fa, fb) = (
            a.flags.iter().position(|f| f.name == flag),
            b.flags.iter().position(|f| f.name == flag),
        );
        let (Some(ia), Some(ib)) = (fa, fb) else {
            items.push(Item::only("flag", &flag, fa.is_some()));
            continue;
        };
        let (pa, pb) = (&a.flags[ia], &b.flags[ib]);
        let exact = matches!(
            (flag_salt(pa, now), flag_salt(pb, now)),
            (Some(x), Some(y)) if x.is_none() || y.is_none() || x == y
        );
        let moves = if exact {
            let mut m = Moves::new();
            for bucket in 0..BUCKETS {
                *m.entry((flag_at(pa, now, bucket), flag_at(pb, now, bucket)))
                    .or_default() += 1;
            }
            m
        } else {
            sample(a, b, now, users, &RequestOptions::default(), |p, s| {
                p.flags.iter().position(|f| f.name == flag).and_then(|i| {
                    Some(
                        p.flags[i]
                            .variant_names
                            .get(s.decision.flags.get(i)?.variant)?
                            .clone(),
                    )
                })
            })
        };
        let off = pb
            .variant_names
            .get(pb.off_variant)
            .cloned()
            .unwrap_or_default();
        items.push(Item::new("flag", &flag, exact, users, moves, |from, to| {
            to == off && from != off
        }));
    }
    for route in names(
        a.routes.iter().map(|r| &r.name),
        b.routes.iter().map(|r| &r.name),
    ) {
        let (ra, rb) = (
            a.routes.iter().position(|r| r.name == route),
            b.routes.iter().position(|r| r.name == route),
        );
        let (Some(ia), Some(ib)) = (ra, rb) else {
            items.push(Item::only("route", &route, ra.is_some()));
            continue;
        };
        let (pa, pb) = (&a.routes[ia], &b.routes[ib]);
        let exact = *pa.key.salt == *pb.key.salt;
        let moves = if exact {
            let mut m = Moves::new();
            for bucket in 0..BUCKETS {
                *m.entry((route_at(pa, now, bucket), route_at(pb, now, bucket)))
                    .or_default() += 1;
            }
            m
        } else {
            let req = common::route_request(pb);
            sample(a, b, now, users, &req, |p, s| {
                let i = p.routes.iter().position(|r| r.name == route)?;
                let o = s.decision.routes.iter().find(|o| o.route == i)?;
                p.routes[i].versions.get(o.version).cloned()
            })
        };
        let backward: Option<(String, String)> = match &pb.strategy {
            Strategy::Progressive {
                baseline, target, ..
            } => Some((pb.versions[*target].clone(), pb.versions[*baseline].clone())),
            Strategy::BlueGreen { active, idle, .. } => {
                Some((pb.versions[*active].clone(), pb.versions[*idle].clone()))
            }
            Strategy::Split(_) => None,
        };
        items.push(Item::new(
            "route",
            &route,
            exact,
            users,
            moves,
            |from, to| backward.as_ref().is_some_and(|(f, t)| f == from && t == to),
        ));
    }

    let mut text = format!(
        "{} → {} at {}\n",
        old.file,
        new.file,
        common::format_time(now)
    );
    let mut warnings = String::new();
    let mut json_items = Vec::new();
    for item in &items {
        let _ = writeln!(text, "{} {}: {}", item.kind, item.name, item.basis);
        let mut moved_any = false;
        for (from, to, share) in &item.moves {
            if from != to {
                moved_any = true;
                let _ = writeln!(text, "  {from} → {to}  {share:.2}%");
            }
        }
        let stays: Vec<String> = item
            .moves
            .iter()
            .filter(|(f, t, _)| f == t)
            .map(|(f, _, s)| format!("{f} {s:.2}%"))
            .collect();
        if item.moves.is_empty() {
        } else if !moved_any {
            let _ = writeln!(text, "  nobody moves ({})", stays.join(", "));
        } else {
            let _ = writeln!(text, "  stay: {}", stays.join(", "));
        }
        for (from, to, share) in &item.backward {
            let _ = writeln!(
                warnings,
                "warning: {} {}: {share:.2}% of users move backwards from {from} to {to}",
                item.kind, item.name
            );
        }
        json_items.push(json!({
            "kind": item.kind, "name": item.name, "exact": item.exact, "basis": item.basis,
            "moves": item.moves.iter().map(|(f, t, s)| json!({"from": f, "to": t, "percent": s})).collect::<Vec<_>>(),
            "backward": item.backward.iter().map(|(f, t, s)| json!({"from": f, "to": t, "percent": s})).collect::<Vec<_>>(),
        }));
    }
    if warnings.is_empty() {
        text.push_str("no users move backwards\n");
    }
    text.push_str(&warnings);
    if as_json {
        return Ok(Some(Report::json(&json!({
            "old": old.file, "new": new.file, "at": common::format_time(now), "items": json_items,
        }))));
    }
    Ok(Some(Report::ok(text)))
}

/// Names in `a`, then those only in `b`.
fn names<'n>(
    a: impl Iterator<Item = &'n String>,
    b: impl Iterator<Item = &'n String>,
) -> Vec<String> {
    let mut out: Vec<String> = a.cloned().collect();
    for n in b {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

struct Item {
    kind: &'static str,
    name: String,
    exact: bool,
    basis: String,
    /// (from, to, percent of users), largest first.
    moves: Vec<(String, String, f64)>,
    backward: Vec<(String, String, f64)>,
}

impl Item {
    fn only(kind: &'static str, name: &str, in_old: bool) -> Item {
        Item {
            kind,
            name: name.to_string(),
            exact: true,
            basis: if in_old {
                "removed in NEW"
            } else {
                "added in NEW"
            }
            .into(),
            moves: Vec::new(),
            backward: Vec::new(),
        }
    }

    fn new(
        kind: &'static str,
        name: &str,
        exact: bool,
        users: u64,
        moves: Moves,
        is_backward: impl Fn(&str, &str) -> bool,
    ) -> Item {
        let total: u64 = moves.values().sum();
        let mut list: Vec<(String, String, f64)> = moves
            .into_iter()
            .map(|((f, t), n)| (f, t, n as f64 * 100.0 / total.max(1) as f64))
            .collect();
        list.sort_by(|x, y| {
            y.2.total_cmp(&x.2)
                .then_with(|| (&x.0, &x.1).cmp(&(&y.0, &y.1)))
        });
        let backward = list
            .iter()
            .filter(|(f, t, _)| f != t && is_backward(f, t))
            .cloned()
            .collect();
        Item {
            kind,
            name: name.to_string(),
            exact,
            basis: if exact {
                "exact, over the 10,000 buckets (users no pin, preview or rule condition picks out)"
                    .into()
            } else {
                format!(
                    "sampled over {} synthetic users carrying only a user key (salts or rules differ)",
                    sluice_cli::report::thousands(users as usize)
                )
            },
            moves: list,
            backward,
        }
    }
}

/// The one salt a flag's answer depends on at `now`: Some(None) for a constant answer,
/// Some(Some(salt)) for one bucket, None when conditions or two buckets decide (sampled).
fn flag_salt(flag: &FlagPlan, now: i64) -> Option<Option<String>> {
    if !flag.enabled || flag.enable_at_ms.is_some_and(|at| now < at) {
        return Some(None);
    }
    if !flag.prerequisites.is_empty() {
        return None;
    }
    let rule = match flag.rules.first() {
        None => None,
        Some(r) if r.when.is_none() => Some(&r.serve),
        Some(_) => return None,
    };
    let rollout = matches!(rule, Some(Serve::Rollout(_)));
    match (&flag.ramp, rollout) {
        (None, false) => Some(None),
        (None, true) => Some(Some(flag.key.salt.to_string())),
        (Some(r), false) => Some(Some(r.salt.to_string())),
        (Some(r), true) if *r.salt == *flag.key.salt => Some(Some(r.salt.to_string())),
        _ => None,
    }
}

/// A flag's variant for a user in `bucket` (under the flag's one salt; see `flag_salt`).
fn flag_at(flag: &FlagPlan, now: i64, bucket: u32) -> String {
    let name = |v: usize| flag.variant_names.get(v).cloned().unwrap_or_default();
    if !flag.enabled || flag.enable_at_ms.is_some_and(|at| now < at) {
        return name(flag.off_variant);
    }
    if flag
        .ramp
        .as_ref()
        .is_some_and(|r| bucket >= r.share_at(now))
    {
        return name(flag.off_variant);
    }
    match flag.rules.first().map(|r| &r.serve) {
        Some(Serve::Variant(v)) => name(*v),
        Some(Serve::Rollout(r)) => name(r.pick(bucket)),
        None => name(flag.default),
    }
}

/// A route's version for a user in `bucket` that no pin or preview picks out.
fn route_at(route: &RoutePlan, now: i64, bucket: u32) -> String {
    let v = route.strategy.version_at(bucket, now, None);
    route.versions.get(v).cloned().unwrap_or_default()
}

/// Synthetic users through both plans' pipelines; `answer` reads the item off a decision.
fn sample(
    a: &Plan,
    b: &Plan,
    now: i64,
    users: u64,
    base: &RequestOptions,
    answer: impl Fn(&Plan, &Scratch) -> Option<String>,
) -> Moves {
    let mut moves = Moves::new();
    let (mut sa, mut sb) = (Scratch::default(), Scratch::default());
    for user in 0..users {
        let id = format!("user-{user}");
        let run = |plan: &Plan, scratch: &mut Scratch| -> Option<String> {
            let mut pairs = base.pairs();
            if !common::add_identity(plan, &mut pairs, &id) {
                return None;
            }
            let borrowed = common::borrow_pairs(&pairs);
            let facts = Facts {
                headers: Headers::Pairs(&borrowed),
                source: None,
                now_ms: now,
                entropy: user,
            };
            let live = Live {
                controls: &[],
                unleash: plan.unleash.as_ref().and_then(|u| u.initial.as_deref()),
                // No polled source outside the proxy.
                spring: None,
            };
            pipeline::run(plan, live, &facts, scratch);
            answer(plan, scratch)
        };
        let from = run(a, &mut sa).unwrap_or_else(|| "(none)".into());
        let to = run(b, &mut sb).unwrap_or_else(|| "(none)".into());
        *moves.entry((from, to)).or_default() += 1;
    }
    moves
}
