//! Unleash constraint operators at their edges, as a toggle author relies on them: string
//! operators with and without `caseInsensitive` on values shorter than the operand, empty
//! operands and non-ASCII text; date and number comparisons at equality; inversion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_unleash::{Context, Engine, Payload};

/// One feature, enabled by a `default` strategy carrying one constraint.
fn engine(operator: &str, values: &[&str], case_insensitive: bool, inverted: bool) -> Engine {
    let values: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    let json = format!(
        r#"{{"version":2,"features":[{{"name":"f","enabled":true,"strategies":[{{"name":"default",
            "constraints":[{{"contextName":"p","operator":"{operator}","values":[{}],
            "caseInsensitive":{case_insensitive},"inverted":{inverted}}}]}}]}}]}}"#,
        values.join(",")
    );
    match Payload::from_json(&json) {
        Ok(payload) => Engine::new(payload),
        Err(err) => panic!("payload rejected: {err}: {json}"),
    }
}

fn enabled(engine: &Engine, value: &str) -> bool {
    let props = [("p", value)];
    engine.is_enabled("f", &Context::new().properties(&props))
}

#[test]
fn string_operators_on_values_shorter_than_the_operand() {
    for op in ["STR_STARTS_WITH", "STR_ENDS_WITH", "STR_CONTAINS"] {
        for ci in [false, true] {
            let e = engine(op, &["checkout"], ci, false);
            for short in ["", "c", "check", "out"] {
                assert!(
                    !enabled(&e, short),
                    "{op} ci={ci}: `{short}` matched `checkout`"
                );
            }
            assert!(enabled(&e, "checkout"), "{op} ci={ci}: the operand itself");
        }
    }
}

#[test]
fn string_operators_ignore_case_only_when_asked() {
    let cases = [
        ("STR_STARTS_WITH", "Beta", "BETA-tester"),
        ("STR_ENDS_WITH", "@Example.com", "ann@EXAMPLE.COM"),
        ("STR_CONTAINS", "Pro", "plan-PRO-2026"),
    ];
    for (op, operand, value) in cases {
        assert!(
            enabled(&engine(op, &[operand], true, false), value),
            "{op} ci"
        );
        assert!(
            !enabled(&engine(op, &[operand], false, false), value),
            "{op} cs"
        );
        // The operand's own case still matches without caseInsensitive.
        let exact = value.replace(&operand.to_uppercase(), operand);
        assert!(
            enabled(&engine(op, &[operand], false, false), &exact),
            "{op} cs exact"
        );
    }
}

#[test]
fn case_insensitive_text_beyond_ascii() {
    // Lower-casing must cover non-ASCII letters (the ASCII shortcut does not apply).
    let e = engine("STR_STARTS_WITH", &["äpfel"], true, false);
    assert!(enabled(&e, "ÄPFEL-und-Birnen"));
    assert!(!enabled(&e, "Birnen-ÄPFEL"));
    let e = engine("STR_ENDS_WITH", &["straße"], true, false);
    assert!(enabled(&e, "Hauptstraße"));
    assert!(
        !enabled(&e, "HAUPTSTRASSE"),
        "lower-casing does not turn SS into ß"
    );
    let e = engine("STR_CONTAINS", &["ü"], true, false);
    assert!(enabled(&e, "MÜNCHEN"));
    assert!(!enabled(&e, "MUNCHEN"));
}

#[test]
fn an_empty_operand_is_contained_in_every_value() {
    // As in the Unleash SDKs (`value.includes("")`), with and without caseInsensitive.
    for ci in [false, true] {
        let e = engine("STR_CONTAINS", &[""], ci, false);
        assert!(enabled(&e, "anything"), "ci={ci}");
        assert!(enabled(&e, ""), "ci={ci}: empty value");
        assert!(enabled(&e, "ÄÖÜ"), "ci={ci}: non-ASCII value");
    }
}

#[test]
fn inverted_string_operators_match_the_rest() {
    let e = engine("STR_STARTS_WITH", &["beta"], true, true);
    assert!(!enabled(&e, "BETA-1"));
    assert!(enabled(&e, "gamma"));
    assert!(
        enabled(&e, "bet"),
        "shorter than the operand: not a prefix, so inverted matches"
    );
}

#[test]
fn date_operators_are_strict() {
    let at = "2026-06-01T12:00:00.000Z";
    let after = engine("DATE_AFTER", &[at], false, false);
    let before = engine("DATE_BEFORE", &[at], false, false);
    assert!(!enabled(&after, at), "DATE_AFTER at the same instant");
    assert!(!enabled(&before, at), "DATE_BEFORE at the same instant");
    assert!(enabled(&after, "2026-06-01T12:00:00.001Z"));
    assert!(!enabled(&after, "2026-06-01T11:59:59.999Z"));
    assert!(enabled(&before, "2026-06-01T11:59:59.999Z"));
    assert!(!enabled(&before, "2026-06-01T12:00:00.001Z"));
}

#[test]
fn number_operators_at_equality_and_either_side() {
    let table = [
        ("NUM_EQ", [false, true, false]),
        ("NUM_GT", [false, false, true]),
        ("NUM_GTE", [false, true, true]),
        ("NUM_LT", [true, false, false]),
        ("NUM_LTE", [true, true, false]),
    ];
    for (op, want) in table {
        let e = engine(op, &["10.5"], false, false);
        let got = ["10.4", "10.5", "10.6"].map(|v| enabled(&e, v));
        assert_eq!(got, want, "{op} 10.5 against 10.4 / 10.5 / 10.6");
    }
}

#[test]
fn a_number_operand_that_is_not_finite_never_matches() {
    // `1e400` and `inf` parse as infinity: comparing with them would make NUM_LT match every
    // number. They are refused with a warning, like any operand that is not a number.
    for operand in ["1e400", "inf", "-infinity", "NaN"] {
        for op in ["NUM_LT", "NUM_GT", "NUM_EQ", "NUM_LTE", "NUM_GTE"] {
            let e = engine(op, &[operand], false, false);
            for value in ["5", "-5", "1e400", "inf"] {
                assert!(!enabled(&e, value), "{op} {operand} matched {value}");
            }
            assert!(
                e.warnings()
                    .iter()
                    .any(|w| w.message.contains("not a number")),
                "{op} {operand}: no warning"
            );
        }
    }
}
