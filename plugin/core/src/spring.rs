//! Spring Cloud Config as a flag source: a Config Server's Environment document
//! (`GET /{application}/{profile}[/{label}]`) mapped to on/off flags with an optional rollout.
//!
//! Fields relied on (Spring Cloud Config Server's `Environment` JSON): `propertySources`, an array
//! in precedence order (the first that has a property wins, as in Spring), each with `name` (named
//! in errors) and `source` (property name → value); and `version` (change detection, beside the
//! ETag). `name`, `profiles`, `label` and `state` are not needed to evaluate.
//!
//! With prefix `features`: `features.<flag>.enabled` (a boolean, or the text `true`/`false` as
//! `.properties` files give it) turns a flag on or off; `features.<flag>.rollout` (0–100, up to
//! two decimals, a number or its text) limits it to that share of users, bucketed like native
//! flags (`murmur3("<flag>:<user key>") mod 10 000`). A flag with only a rollout is enabled.
//! Any other property under the prefix is ignored.
use crate::bucket::BUCKETS;
pub use sluice_engine::spring_flags::{evaluate_into, SpringFlag, SpringFlags};
use sluice_primitives::float_text::Plain;
use sluice_primitives::json::{self, Kind, Number, Value};
use sluice_primitives::quoted::Quoted;

#[derive(Default)]
struct Partial {
    enabled: Option<bool>,
    rollout: Option<u32>,
}

/// Reads an Environment document; the error names the property source, the property and the
/// problem.
#[inline(never)]
pub fn read_environment(body: &[u8], prefix: &str) -> Result<SpringFlags, String> {
    let doc = json::parse(body).map_err(|e| format!("not an Environment document: {e}"))?;
    let sources = doc
        .get("propertySources")
        .and_then(Value::as_array)
        .ok_or("not an Environment document: no `propertySources` array")?;
    if sources.is_empty() {
        return Err(
            "empty `propertySources`: the Config Server found no configuration for this application, profile and label"
                .into(),
        );
    }
    let version = doc
        .get("version")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut flags: Vec<(String, Partial)> = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        read_source(i, source, prefix, &mut flags)?;
    }
    Ok(SpringFlags {
        version,
        flags: sorted_flags(flags),
    })
}

/// The flags read, sorted by name; what no source set is on, for every user.
#[inline(never)]
fn sorted_flags(partials: Vec<(String, Partial)>) -> Vec<SpringFlag> {
    let mut flags: Vec<SpringFlag> = partials
        .into_iter()
        .map(|(name, p)| {
            SpringFlag::new(
                name,
                p.enabled.unwrap_or(true),
                p.rollout.unwrap_or(BUCKETS),
            )
        })
        .collect();
    sluice_primitives::order::sort_by(&mut flags, |a, b| a.name.cmp(&b.name));
    flags
}

/// Property source `i`: its flag properties, into `flags` (the ones already there stay).
#[inline(never)]
fn read_source(
    i: usize,
    source: &Value,
    prefix: &str,
    flags: &mut Vec<(String, Partial)>,
) -> Result<(), String> {
    let name = source
        .get("name")
        .and_then(Value::as_str)
        .map_or_else(|| format!("#{i}"), str::to_string);
    let Some(Kind::Object(properties)) = source.get("source").map(|v| &v.kind) else {
        return Err(format!("property source `{name}` has no `source` object"));
    };
    for (key, value) in properties {
        read_property(key, value, &name, prefix, flags)?;
    }
    Ok(())
}

/// One property of source `name`: `<prefix>.<flag>.enabled` or `.rollout`, unless an earlier
/// source set it; any other property is ignored.
#[inline(never)]
fn read_property(
    key: &str,
    value: &Value,
    name: &str,
    prefix: &str,
    flags: &mut Vec<(String, Partial)>,
) -> Result<(), String> {
    let Some(rest) = key.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
        return Ok(());
    };
    let (flag, field) = match rest.rsplit_once('.') {
        Some((flag, field @ ("enabled" | "rollout"))) => (flag, field),
        _ => return Ok(()),
    };
    if flag.is_empty()
        || !flag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "`{key}` in property source `{name}`: `{flag}` is not a flag name (letters, digits, `-`, `_`, `.`)"
        ));
    }
    let at = match flags.iter().position(|(f, _)| f == flag) {
        Some(at) => at,
        None => {
            flags.push((flag.to_string(), Partial::default()));
            flags.len() - 1
        }
    };
    let partial = &mut flags[at].1;
    // Precedence: a property set by an earlier source stays.
    if field == "enabled" && partial.enabled.is_none() {
        partial.enabled = Some(boolean(value).ok_or_else(|| {
            format!(
                "`{key}` in property source `{name}` is {}, not a boolean",
                shown(value)
            )
        })?);
    } else if field == "rollout" && partial.rollout.is_none() {
        partial.rollout = Some(rollout(value).ok_or_else(|| {
            format!(
                "`{key}` in property source `{name}` is {}, not a percentage from 0 to 100",
                shown(value)
            )
        })?);
    }
    Ok(())
}

#[inline(never)]
fn boolean(value: &Value) -> Option<bool> {
    match &value.kind {
        Kind::Bool(b) => Some(*b),
        Kind::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Kind::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// 0–100 with up to two decimals, as buckets of 0.01%.
#[inline(never)]
fn rollout(value: &Value) -> Option<u32> {
    let percent = match &value.kind {
        Kind::Number(Number::U64(n)) => *n as f64,
        Kind::Number(Number::F64(f)) => *f,
        Kind::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    let buckets = percent * 100.0;
    let ok = (0.0..=100.0).contains(&percent) && (buckets - buckets.round()).abs() < 1e-6;
    ok.then_some(buckets.round() as u32)
}

#[inline(never)]
fn shown(value: &Value) -> String {
    match &value.kind {
        Kind::String(s) => Quoted(s).to_string(),
        Kind::Bool(b) => b.to_string(),
        Kind::Number(n) => Plain(n.as_f64()).to_string(),
        Kind::Null => "null".into(),
        Kind::Array(_) => "a list".into(),
        Kind::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::bucket;

    /// As a Config Server answers `GET /shop/prod,eu/main`: the most specific source first.
    const ENVIRONMENT: &str = r#"{
      "name": "shop", "profiles": ["prod", "eu"], "label": "main",
      "version": "9f1c2e7", "state": null,
      "propertySources": [
        {"name": "https://git.example/config.git/shop-eu.yml",
         "source": {"features.checkout.rollout": 20, "features.search.enabled": "false"}},
        {"name": "https://git.example/config.git/shop-prod.yml",
         "source": {"features.checkout.enabled": true, "features.checkout.rollout": 50,
                    "features.search.enabled": true, "features.banner.rollout": "12.5",
                    "server.port": 8080, "features.banner.description": "ignored"}},
        {"name": "https://git.example/config.git/application.yml",
         "source": {"features.checkout.enabled": false, "features.legacy.enabled": "TRUE"}}
      ]
    }"#;

    fn flag<'f>(flags: &'f SpringFlags, name: &str) -> &'f SpringFlag {
        flags.flags.iter().find(|f| f.name == name).unwrap()
    }

    #[test]
    fn the_first_property_source_wins_per_property() {
        let flags = read_environment(ENVIRONMENT.as_bytes(), "features").unwrap();
        assert_eq!(flags.version.as_deref(), Some("9f1c2e7"));
        let names: Vec<&str> = flags.flags.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["banner", "checkout", "legacy", "search"]);
        // enabled from prod (application's false is overridden), rollout from eu.
        let checkout = flag(&flags, "checkout");
        assert!(checkout.enabled);
        assert_eq!(checkout.rollout, 2000);
        assert!(!flag(&flags, "search").enabled);
        assert!(flag(&flags, "legacy").enabled);
        // Only a rollout: enabled, 12.5%.
        assert_eq!(
            (
                flag(&flags, "banner").enabled,
                flag(&flags, "banner").rollout
            ),
            (true, 1250)
        );
    }

    #[test]
    fn rollouts_bucket_like_native_flags() {
        let flags = read_environment(ENVIRONMENT.as_bytes(), "features").unwrap();
        let checkout = flag(&flags, "checkout");
        let mut on = 0;
        for i in 0..2000 {
            let key = format!("user-{i}");
            let expected = bucket("checkout", key.as_bytes()) < 2000;
            assert_eq!(checkout.is_on(Some(key.as_bytes()), 0), expected);
            on += usize::from(expected);
        }
        assert!((300..500).contains(&on), "{on} of 2000 at 20%");
        assert!(!flag(&flags, "search").is_on(Some(b"user-1"), 0));
        assert!(flag(&flags, "legacy").is_on(None, 7));
    }

    #[test]
    fn another_prefix_reads_other_properties() {
        let doc = r#"{"propertySources": [{"name": "a", "source": {"toggles.x.enabled": true, "features.y.enabled": true}}]}"#;
        let flags = read_environment(doc.as_bytes(), "toggles").unwrap();
        let names: Vec<&str> = flags.flags.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["x"]);
        assert_eq!(flags.version, None);
    }

    #[test]
    fn bad_input_names_the_source_and_the_problem() {
        let cases = [
            (r#"{"propertySources": []}"#, "empty `propertySources`"),
            (r#"{"name": "shop"}"#, "no `propertySources` array"),
            ("<html>login</html>", "not an Environment document"),
            (
                r#"{"propertySources": [{"name": "git:shop.yml", "source": {"features.checkout.enabled": "yes"}}]}"#,
                "`features.checkout.enabled` in property source `git:shop.yml` is \"yes\", not a boolean",
            ),
            (
                r#"{"propertySources": [{"name": "git:shop.yml", "source": {"features.checkout.rollout": 150}}]}"#,
                "`features.checkout.rollout` in property source `git:shop.yml` is 150, not a percentage from 0 to 100",
            ),
            (
                r#"{"propertySources": [{"name": "p", "source": {"features.checkout.rollout": "12.345"}}]}"#,
                "is \"12.345\", not a percentage",
            ),
            (
                r#"{"propertySources": [{"name": "p", "source": {"features.a b.enabled": true}}]}"#,
                "`a b` is not a flag name",
            ),
            (r#"{"propertySources": [{"name": "p"}]}"#, "property source `p` has no `source` object"),
        ];
        for (doc, expected) in cases {
            match read_environment(doc.as_bytes(), "features") {
                Ok(flags) => panic!("{doc}: accepted as {flags:?}"),
                Err(err) => assert!(err.contains(expected), "{doc}: {err}"),
            }
        }
    }
}
