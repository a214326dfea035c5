//! Flag evaluation through the public engine: what a service would see.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::{plan, variant, Req};

const SHOP: &str = r#"{
  "version": 1,
  "revision": "r1",
  "identity": {"user": [{"header": "x-user-id"}, {"cookie": "uid"}, {"query": "uid"}], "session": [{"cookie": "sid"}]},
  "attributes": {"country": {"header": "x-country"}, "app": {"header": "x-app-version"}, "plan": {"cookie": "plan"}},
  "segments": {
    "staff": {"header": "x-email", "suffix": "@shop.example", "ignore_case": true},
    "eu": {"attr": "country", "in": ["DE", "FR", "NL"]},
    "eu-staff": {"all": [{"segment": "staff"}, {"segment": "eu"}]},
    "office": {"attr": "source_address", "cidr": ["10.20.0.0/16"]}
  },
  "flags": {
    "checkout": {"rules": [{"when": {"segment": "staff"}, "serve": "on"}, {"rollout": {"on": 50, "off": 50}}]},
    "theme": {
      "variants": {"light": "light", "dark": "dark", "contrast": "high-contrast"},
      "default": "light",
      "header": "x-theme",
      "rules": [
        {"when": {"any": [{"segment": "eu-staff"}, {"attr": "app", "semver_gte": "3.0.0"}]}, "serve": "dark"},
        {"when": {"not": {"attr": "plan", "equals": "free"}}, "rollout": {"light": 50, "dark": 25, "contrast": 25}}
      ]
    },
    "limits": {"variants": {"low": 10, "high": 100, "cfg": {"burst": 5}}, "default": "low", "header": "x-limits",
               "rules": [{"when": {"header": "x-tier", "num_gte": 3}, "serve": "cfg"}]},
    "killed": {"enabled": false, "rules": [{"serve": "on"}]},
    "needs-checkout": {"prerequisites": [{"flag": "checkout", "variants": ["on"]}], "rules": [{"serve": "on"}]},
    "later": {"schedule": {"enable_at": "2027-01-01T00:00:00Z"}, "rules": [{"serve": "on"}]},
    "ramped": {"schedule": {"ramp": {"start": "2026-12-01T00:00:00Z", "duration": "10h", "from": 0, "to": 100}}, "rules": [{"serve": "on"}]},
    "by-session": {"bucket_by": "session", "rules": [{"rollout": {"on": 50, "off": 50}}]},
    "coin": {"without_identity": "random", "rules": [{"rollout": {"on": 50, "off": 50}}]},
    "office-only": {"rules": [{"when": {"segment": "office"}, "serve": "on"}]}
  },
  "outputs": {"baggage": {}}
}"#;

#[test]
fn targeting_rules_apply_in_order() {
    let p = plan(SHOP);
    let staff = Req::new()
        .user("u1")
        .header("x-email", "Ana@SHOP.example")
        .eval(&p);
    assert_eq!(variant(&p, &staff, "checkout"), "on");
    let eu_staff = Req::new()
        .user("u1")
        .header("x-email", "a@shop.example")
        .header("x-country", "DE")
        .eval(&p);
    assert_eq!(variant(&p, &eu_staff, "theme"), "dark");
    let new_app = Req::new()
        .user("u1")
        .header("x-app-version", "3.1.0")
        .eval(&p);
    assert_eq!(variant(&p, &new_app, "theme"), "dark");
    let old_app_free = Req::new()
        .user("u1")
        .header("x-app-version", "2.9.9")
        .header("cookie", "plan=free")
        .eval(&p);
    assert_eq!(
        variant(&p, &old_app_free, "theme"),
        "light",
        "free plan falls through to default"
    );
    let tier = Req::new().user("u1").header("x-tier", "4").eval(&p);
    assert_eq!(variant(&p, &tier, "limits"), "cfg");
    let garbage_tier = Req::new().user("u1").header("x-tier", "lots").eval(&p);
    assert_eq!(variant(&p, &garbage_tier, "limits"), "low");
}

#[test]
fn rollouts_split_users_by_weight_and_stick() {
    let p = plan(SHOP);
    let mut counts = [0usize; 3];
    for i in 0..20_000 {
        let req = Req::new().user(&format!("user-{i}"));
        let d = req.eval(&p);
        let v = variant(&p, &d, "theme");
        counts[["light", "dark", "contrast"]
            .iter()
            .position(|x| *x == v)
            .unwrap()] += 1;
        assert_eq!(variant(&p, &req.eval(&p), "theme"), v, "user-{i} flipped");
    }
    let share = |n: usize| n as f64 / 20_000.0 * 100.0;
    assert!((share(counts[0]) - 50.0).abs() < 1.5, "{counts:?}");
    assert!((share(counts[1]) - 25.0).abs() < 1.5, "{counts:?}");
    assert!((share(counts[2]) - 25.0).abs() < 1.5, "{counts:?}");
}

#[test]
fn identity_falls_back_through_header_cookie_query_then_session() {
    let p = plan(SHOP);
    let by_header = Req::new().user("u-42").eval(&p);
    let by_cookie = Req::new().header("cookie", "a=1; uid=u-42").eval(&p);
    let by_query = Req::new().set(":path", "/cart?uid=u-42").eval(&p);
    for d in [&by_cookie, &by_query] {
        assert_eq!(d.flags, by_header.flags);
    }
    // by-session hashes the session key first.
    let mut differ = 0;
    for i in 0..200 {
        let a = Req::new()
            .user("same-user")
            .header("cookie", &format!("sid=s{i}"))
            .eval(&p);
        let b = Req::new()
            .user("same-user")
            .header("cookie", &format!("sid=s{}", i + 1000))
            .eval(&p);
        differ += (variant(&p, &a, "by-session") != variant(&p, &b, "by-session")) as usize;
    }
    assert!(
        differ > 50,
        "session-bucketed flag ignored the session ({differ})"
    );
}

#[test]
fn requests_without_identity_get_the_default_or_a_coin_flip_when_asked() {
    let p = plan(SHOP);
    let anonymous = Req::new().eval(&p);
    assert_eq!(variant(&p, &anonymous, "checkout"), "off");
    assert_eq!(
        anonymous.flags[0].reason,
        sluice_core::decision::Reason::NoIdentity
    );
    let coin: Vec<_> = (0..400)
        .map(|e| variant(&p, &Req::new().entropy(e * 7919).eval(&p), "coin").to_string())
        .collect();
    let on = coin.iter().filter(|v| *v == "on").count();
    assert!((120..280).contains(&on), "random rollout gave {on}/400 on");
}

#[test]
fn kill_switch_prerequisites_and_schedules() {
    let p = plan(SHOP);
    let staff = Req::new().user("u1").header("x-email", "a@shop.example");
    let d = staff.eval(&p);
    assert_eq!(variant(&p, &d, "killed"), "off");
    assert_eq!(
        variant(&p, &d, "needs-checkout"),
        "on",
        "checkout is on for staff"
    );
    // A user with checkout off fails the prerequisite.
    let off_user = (0..100)
        .map(|i| Req::new().user(&format!("p{i}")))
        .find(|r| variant(&p, &r.eval(&p), "checkout") == "off")
        .unwrap();
    assert_eq!(variant(&p, &off_user.eval(&p), "needs-checkout"), "off");

    assert_eq!(variant(&p, &staff.eval(&p), "later"), "off");
    let after = Req::new().user("u1").at("2027-01-01T00:00:01Z");
    assert_eq!(variant(&p, &after.eval(&p), "later"), "on");
}

#[test]
fn a_ramp_grows_linearly_and_never_drops_a_user() {
    let p = plan(SHOP);
    let times = [
        "2026-11-30T00:00:00Z",
        "2026-12-01T01:00:00Z",
        "2026-12-01T05:00:00Z",
        "2026-12-01T10:00:00Z",
    ];
    let expected = [0.0, 10.0, 50.0, 100.0];
    let users: Vec<String> = (0..20_000).map(|i| format!("ramp-{i}")).collect();
    let mut was_on = vec![false; users.len()];
    for (t, want) in times.iter().zip(expected) {
        let mut on = 0;
        for (i, u) in users.iter().enumerate() {
            let is_on = variant(&p, &Req::new().user(u).at(t).eval(&p), "ramped") == "on";
            assert!(!was_on[i] || is_on, "{u} dropped out of the ramp at {t}");
            was_on[i] = is_on;
            on += is_on as usize;
        }
        let share = on as f64 / users.len() as f64 * 100.0;
        assert!(
            (share - want).abs() < 1.0,
            "at {t}: {share:.2}% on, expected {want}%"
        );
    }
}

#[test]
fn outputs_carry_names_values_and_baggage() {
    let p = plan(SHOP);
    let req = Req::new()
        .user("u1")
        .header("x-email", "a@shop.example")
        .header("x-tier", "5")
        .header("baggage", "k=v,sluice.checkout=forged");
    let headers = req.headers(&p);
    let flags = &headers["x-sluice-flags"];
    assert!(
        flags.starts_with("by-session=")
            && flags.contains(";checkout=on;")
            && flags.contains(";theme=dark"),
        "{flags}"
    );
    assert!(flags.contains(";killed=off;"), "{flags}");
    assert_eq!(headers["x-limits"], r#"{"burst":5}"#);
    let baggage = &headers["baggage"];
    assert!(baggage.starts_with("k=v,sluice.by-session="), "{baggage}");
    assert!(baggage.contains(",sluice.checkout=on,"), "{baggage}");
    assert!(
        !baggage.contains("forged"),
        "a client-sent sluice.* baggage entry survived: {baggage}"
    );
}

#[test]
fn source_ranges_match_the_peer_address() {
    let p = plan(SHOP);
    let inside = Req::new().user("u").source("10.20.3.4:5555").eval(&p);
    let outside = Req::new().user("u").source("10.21.3.4:5555").eval(&p);
    let missing = Req::new().user("u").eval(&p);
    assert_eq!(variant(&p, &inside, "office-only"), "on");
    assert_eq!(variant(&p, &outside, "office-only"), "off");
    assert_eq!(variant(&p, &missing, "office-only"), "off");
}

#[test]
fn flags_in_one_salt_group_place_a_user_together() {
    let p = plan(
        r#"{"version": 1, "identity": {"user": [{"header": "x-user-id"}]}, "flags": {
        "price-a": {"salt": "pricing", "rules": [{"rollout": {"on": 30, "off": 70}}]},
        "price-b": {"salt": "pricing", "rules": [{"rollout": {"on": 30, "off": 70}}]},
        "other":   {"rules": [{"rollout": {"on": 30, "off": 70}}]}}}"#,
    );
    let mut disagree_other = 0;
    for i in 0..2000 {
        let d = Req::new().user(&format!("g{i}")).eval(&p);
        assert_eq!(variant(&p, &d, "price-a"), variant(&p, &d, "price-b"));
        disagree_other += (variant(&p, &d, "price-a") != variant(&p, &d, "other")) as usize;
    }
    assert!(
        disagree_other > 500,
        "an unsalted flag followed the group ({disagree_other})"
    );
}

#[test]
fn hostile_request_values_never_panic() {
    let p = plan(SHOP);
    let nasty: [&[u8]; 6] = [
        b"",
        b"\xff\xfe\x00",
        &[b'a'; 65536],
        b"=;=;;",
        b"1e400",
        b"3.0.0-\xff",
    ];
    for v in nasty {
        let mut req = Req::new();
        for name in [
            "x-user-id",
            "x-user-id",
            "cookie",
            "x-email",
            "x-country",
            "x-app-version",
            "x-tier",
            ":path",
            "baggage",
        ] {
            req.pairs.push((name.to_string(), v.to_vec()));
        }
        req.source = Some(String::from_utf8_lossy(v).into_owned());
        let _ = req.headers(&p);
    }
}

#[test]
fn key_order_in_the_document_changes_nothing() {
    // Istio hands pluginConfig over with its keys re-sorted; decisions must not move.
    let written = plan(
        r#"{"version": 1, "identity": {"user": [{"header": "x-user-id"}]}, "flags": {
        "zeta": {"variants": {"on": true, "off": false}, "default": "off", "rules": [{"rollout": {"on": 30, "off": 70}}]},
        "alpha": {"variants": {"c": 3, "b": 2, "a": 1}, "default": "a", "rules": [{"rollout": {"c": 20, "b": 30, "a": 50}}]}}}"#,
    );
    let sorted = plan(
        r#"{"flags": {
        "alpha": {"default": "a", "rules": [{"rollout": {"a": 50, "b": 30, "c": 20}}], "variants": {"a": 1, "b": 2, "c": 3}},
        "zeta": {"default": "off", "rules": [{"rollout": {"off": 70, "on": 30}}], "variants": {"off": false, "on": true}}},
        "identity": {"user": [{"header": "x-user-id"}]}, "version": 1}"#,
    );
    for i in 0..2000 {
        let req = Req::new().user(&format!("k{i}"));
        assert_eq!(req.headers(&written), req.headers(&sorted), "user k{i}");
    }
}

#[test]
fn a_hop_behind_the_edge_keeps_the_edge_decision_from_trusted_peers_only() {
    let p = plan(
        r#"{"version": 1, "identity": {"user": [{"header": "x-user-id"}]},
        "flags": {"checkout": {"rules": [{"rollout": {"on": 50, "off": 50}}]},
                  "theme": {"variants": {"light": 1, "dark": 2}, "default": "light"}},
        "outputs": {"baggage": {}, "trust_incoming_from": ["10.0.0.0/8"]}}"#,
    );
    // A user the rollout puts on `off`, so keeping `on` proves the decision travelled.
    let user = (0..100)
        .map(|i| format!("p{i}"))
        .find(|u| variant(&p, &Req::new().user(u).eval(&p), "checkout") == "off")
        .unwrap();
    let from_edge = Req::new()
        .user(&user)
        .source("10.1.2.3:5000")
        .header("x-sluice-flags", "checkout=on;theme=dark");
    let d = from_edge.eval(&p);
    assert_eq!(variant(&p, &d, "checkout"), "on");
    assert_eq!(variant(&p, &d, "theme"), "dark");
    assert_eq!(d.flags[0].reason, sluice_core::decision::Reason::Propagated);

    let from_client = Req::new()
        .user(&user)
        .source("203.0.113.9:5000")
        .header("x-sluice-flags", "checkout=on;theme=dark");
    let d = from_client.eval(&p);
    assert_eq!(
        variant(&p, &d, "checkout"),
        "off",
        "an untrusted client cannot set its flags"
    );
    assert_eq!(variant(&p, &d, "theme"), "light");

    let via_baggage = Req::new()
        .user(&user)
        .source("10.9.9.9:1")
        .header("baggage", "tenant=acme,sluice.checkout=on;ttl=5");
    let d = via_baggage.eval(&p);
    assert_eq!(
        variant(&p, &d, "checkout"),
        "on",
        "baggage carries the decision when the header was dropped"
    );
    assert_eq!(
        variant(&p, &d, "theme"),
        "light",
        "flags missing upstream are evaluated here"
    );

    let bogus = Req::new()
        .user(&user)
        .source("10.1.2.3:5000")
        .header("x-sluice-flags", "checkout=maybe");
    assert_eq!(
        variant(&p, &bogus.eval(&p), "checkout"),
        "off",
        "an unknown variant is ignored"
    );
}
