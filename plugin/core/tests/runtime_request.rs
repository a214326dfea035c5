//! The request facts Sluice reads, at their edges: the first query parameter and a path with a
//! fragment, a repeated header (the first value counts), cookies split over several headers,
//! baggage members repeated or percent-encoded (well or badly), a segment used by several flags
//! in one request (one answer for all of them), and configs with more segments than the
//! per-request memo holds.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{plan, variant, Req};
use sluice_core::engine::request::BaggageFlaw;

const FACTS: &str = r#"{"version": 1,
  "identity": {"user": [{"header": "x-user"}, {"baggage": "userId"}, {"cookie": "uid"}]},
  "attributes": {"campaign": {"query": "utm"}, "ref": {"query": "ref"}, "tier": {"baggage": "tier"},
                 "plan": {"baggage": "plan"}},
  "segments": {"beta": {"header": "x-beta", "equals": "1"}},
  "flags": {
    "by-campaign": {"rules": [{"when": {"attr": "campaign", "equals": "winter"}, "serve": "on"}]},
    "by-ref": {"rules": [{"when": {"attr": "ref", "equals": ""}, "serve": "on"}]},
    "by-path": {"rules": [{"when": {"attr": "path", "equals": "/shop/cart"}, "serve": "on"}]},
    "gold": {"rules": [{"when": {"attr": "tier", "equals": "gold plus"}, "serve": "on"}]},
    "pro": {"rules": [{"when": {"attr": "plan", "equals": "pro"}, "serve": "on"}]},
    "beta-a": {"rules": [{"when": {"segment": "beta"}, "serve": "on"}]},
    "beta-b": {"rules": [{"when": {"all": [{"segment": "beta"}, {"segment": "beta"}]}, "serve": "on"}]},
    "not-beta": {"rules": [{"when": {"not": {"segment": "beta"}}, "serve": "on"}]},
    "who": {"variants": {"u-1": 1, "u-2": 2, "none": 0}, "default": "none",
            "rules": [{"when": {"attr": "path", "prefix": "/"}, "serve": "none"}]}
  }}"#;

fn flags(req: Req) -> Vec<(String, String)> {
    let p = plan(FACTS);
    let d = req.eval(&p);
    p.flags
        .iter()
        .map(|f| (f.name.clone(), variant(&p, &d, &f.name).to_string()))
        .collect()
}

fn on(req: Req, flag: &str) -> bool {
    flags(req)
        .into_iter()
        .any(|(name, v)| name == flag && v == "on")
}

#[test]
fn query_parameters_are_read_from_the_first_one_on() {
    assert!(on(
        Req::new().set(":path", "/p?utm=winter&x=1"),
        "by-campaign"
    ));
    assert!(on(
        Req::new().set(":path", "/p?x=1&utm=winter"),
        "by-campaign"
    ));
    assert!(!on(
        Req::new().set(":path", "/p?x=1&utm=summer"),
        "by-campaign"
    ));
    assert!(!on(
        Req::new()
            .set(":path", "/p?utm=winter#top")
            .set(":path", "/p#utm=winter"),
        "by-campaign"
    ));
    assert!(on(
        Req::new().set(":path", "/p?utm=winter#x"),
        "by-campaign"
    ));
    // `?ref` and `?ref=` give an empty value; no `?` at all gives none.
    assert!(on(Req::new().set(":path", "/p?ref"), "by-ref"));
    assert!(on(Req::new().set(":path", "/p?a=1&ref="), "by-ref"));
    assert!(!on(Req::new().set(":path", "/p"), "by-ref"));
    assert!(!on(Req::new().set(":path", "/p?"), "by-ref"));
}

#[test]
fn the_path_fact_ends_at_the_query_or_the_fragment() {
    assert!(on(Req::new().set(":path", "/shop/cart"), "by-path"));
    assert!(on(Req::new().set(":path", "/shop/cart?x=1"), "by-path"));
    assert!(on(Req::new().set(":path", "/shop/cart#top"), "by-path"));
    assert!(!on(Req::new().set(":path", "/shop/cart/"), "by-path"));
}

/// Whether two requests are bucketed as the same user: eight 50/50 rollouts agree (two different
/// users agree on all eight once in 256).
fn same_user(a: Req, b: Req) -> bool {
    let p = plan(
        r#"{"version": 1, "identity": {"user": [{"header": "x-user"}, {"baggage": "userId"}, {"cookie": "uid"}]},
        "flags": {"f0": {"rules": [{"rollout": {"on": 50, "off": 50}}]}, "f1": {"rules": [{"rollout": {"on": 50, "off": 50}}]},
                  "f2": {"rules": [{"rollout": {"on": 50, "off": 50}}]}, "f3": {"rules": [{"rollout": {"on": 50, "off": 50}}]},
                  "f4": {"rules": [{"rollout": {"on": 50, "off": 50}}]}, "f5": {"rules": [{"rollout": {"on": 50, "off": 50}}]},
                  "f6": {"rules": [{"rollout": {"on": 50, "off": 50}}]}, "f7": {"rules": [{"rollout": {"on": 50, "off": 50}}]}}}"#,
    );
    let (a, b) = (
        a.headers(&p)["x-sluice-flags"].clone(),
        b.headers(&p)["x-sluice-flags"].clone(),
    );
    a == b
}

#[test]
fn a_repeated_header_counts_by_its_first_value_and_cookies_may_be_split() {
    let twice = Req::new().header("x-user", "alice").header("x-user", "bob");
    assert!(same_user(twice, Req::new().header("x-user", "alice")));
    let twice = Req::new().header("x-user", "bob").header("x-user", "alice");
    assert!(same_user(twice, Req::new().header("x-user", "bob")));
    assert!(
        !same_user(
            Req::new().header("x-user", "alice"),
            Req::new().header("x-user", "bob")
        ),
        "the probe tells them apart"
    );
    // HTTP/2 may send each cookie in its own header.
    let split = Req::new()
        .header("cookie", "a=1")
        .header("cookie", "uid=carol; b=2");
    assert!(same_user(split, Req::new().header("x-user", "carol")));
    // The baggage member is percent-decoded before it is hashed.
    assert!(same_user(
        Req::new().header("baggage", "userId=dave%2D1"),
        Req::new().header("x-user", "dave-1")
    ));
    assert!(same_user(
        Req::new().header("baggage", "userId=erin,userId=frank"),
        Req::new().header("x-user", "erin")
    ));
}

#[test]
fn baggage_facts_are_decoded_each_on_its_own() {
    let with = |baggage: &str| flags(Req::new().header("baggage", baggage));
    let gold_pro = |baggage: &str| {
        let f = with(baggage);
        let get = |n: &str| f.iter().find(|(k, _)| k == n).unwrap().1.clone();
        (get("gold"), get("pro"))
    };
    assert_eq!(
        gold_pro("tier=gold%20plus,plan=pro"),
        ("on".into(), "on".into())
    );
    assert_eq!(
        gold_pro("plan=pro,tier=gold%20plus"),
        ("on".into(), "on".into())
    );
    assert_eq!(
        gold_pro("plan=p%72o,tier=gold%20plus"),
        ("on".into(), "on".into())
    );
    assert_eq!(
        gold_pro("tier=gold plus,plan=p%72o"),
        ("on".into(), "on".into())
    );
    // Repeated: the first value counts.
    assert_eq!(gold_pro("plan=pro,plan=free"), ("off".into(), "on".into()));
    assert_eq!(gold_pro("plan=free,plan=pro"), ("off".into(), "off".into()));
    // A bad escape: that value is not used, the others are, and the request says why.
    assert_eq!(
        gold_pro("tier=gold%2,plan=pro"),
        ("off".into(), "on".into())
    );
    let p = plan(FACTS);
    let d = Req::new()
        .header("baggage", "tier=gold%zz,plan=pro")
        .eval(&p);
    assert_eq!(d.baggage_flaw, Some(BaggageFlaw::BadEncoding));
    let d = Req::new()
        .header("baggage", "tier=gold%20plus,plan=pro")
        .eval(&p);
    assert_eq!(d.baggage_flaw, None);
}

#[test]
fn a_segment_gives_every_flag_of_a_request_the_same_answer() {
    let get = |req: Req| {
        let f = flags(req);
        ["beta-a", "beta-b", "not-beta"].map(|n| f.iter().find(|(k, _)| k == n).unwrap().1.clone())
    };
    assert_eq!(get(Req::new().header("x-beta", "1")), ["on", "on", "off"]);
    assert_eq!(get(Req::new().header("x-beta", "0")), ["off", "off", "on"]);
    assert_eq!(get(Req::new()), ["off", "off", "on"]);
}

#[test]
fn segments_beyond_the_64th_are_evaluated_each_time() {
    // Segments s00..s69, each true for its own value of x-seg; flags on s00, s63, s64, s69,
    // each used twice in one condition.
    let segments: Vec<String> = (0..70)
        .map(|i| format!(r#""s{i:02}": {{"header": "x-seg", "equals": "{i}"}}"#))
        .collect();
    let flag = |i: u32| {
        format!(
            r#""f{i:02}": {{"rules": [{{"when": {{"any": [{{"segment": "s{i:02}"}}, {{"all": [{{"segment": "s{i:02}"}}, {{"segment": "s{i:02}"}}]}}]}}, "serve": "on"}}]}},
               "n{i:02}": {{"rules": [{{"when": {{"not": {{"segment": "s{i:02}"}}}}, "serve": "on"}}]}}"#
        )
    };
    let config = format!(
        r#"{{"version": 1, "segments": {{{}}}, "flags": {{{}}}}}"#,
        segments.join(","),
        [0, 63, 64, 69].map(flag).join(",")
    );
    let p = plan(&config);
    for seg in [0, 63, 64, 69, 5] {
        let d = Req::new().header("x-seg", &seg.to_string()).eval(&p);
        for i in [0, 63, 64, 69] {
            let want = if seg == i {
                ("on", "off")
            } else {
                ("off", "on")
            };
            assert_eq!(
                (
                    variant(&p, &d, &format!("f{i:02}")),
                    variant(&p, &d, &format!("n{i:02}"))
                ),
                want,
                "x-seg {seg}, segment s{i:02}"
            );
        }
    }
}

#[test]
fn every_baggage_fact_is_percent_decoded_however_many_there_are() {
    // 70 attributes from 70 baggage members; the last ones are past the 64th.
    let attributes: Vec<String> = (0..70)
        .map(|i| format!(r#""b{i:02}": {{"baggage": "k{i:02}"}}"#))
        .collect();
    let flag = |i: u32| {
        format!(
            r#""f{i:02}": {{"rules": [{{"when": {{"attr": "b{i:02}", "equals": "a b"}}, "serve": "on"}}]}}"#
        )
    };
    let config = format!(
        r#"{{"version": 1, "attributes": {{{}}}, "flags": {{{}}}}}"#,
        attributes.join(","),
        [0, 63, 64, 65, 69].map(flag).join(",")
            + r#", "share": {"rules": [{"when": {"attr": "b66", "equals": "50%"}, "serve": "on"}]}"#
    );
    let p = plan(&config);
    // A decoded value may hold a `%` of its own.
    let d = Req::new().header("baggage", "k66=50%25").eval(&p);
    assert_eq!(variant(&p, &d, "share"), "on");
    let d = Req::new().header("baggage", "k66=50%").eval(&p);
    assert_eq!(
        variant(&p, &d, "share"),
        "off",
        "a lone `%` is a bad escape"
    );
    for i in [0, 63, 64, 65, 69] {
        for (baggage, want) in [
            (format!("k{i:02}=a%20b"), "on"),
            (format!("k{i:02}=a b"), "on"),
            (format!("k{i:02}=a%2"), "off"),
            (format!("k{i:02}=a%2520b"), "off"),
        ] {
            let d = Req::new().header("baggage", &baggage).eval(&p);
            assert_eq!(variant(&p, &d, &format!("f{i:02}")), want, "{baggage}");
        }
    }
}
