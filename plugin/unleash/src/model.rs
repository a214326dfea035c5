//! The Unleash client-API payload (`GET /api/client/features`), as data.
//!
//! Lenient where Unleash servers grow: unknown fields are ignored, `null`
//! stands for an empty list, unknown operators and strategies are kept (they
//! evaluate to false, as in the SDKs). Strict about types: a string where a
//! boolean belongs is an error that names its path.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A payload or delta that could not be read: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// JSON path of the offending value, e.g. `features[3].strategies[0].name`;
    /// empty for the document itself.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for Error {}

/// Reads `T` from JSON, naming the path of the first error.
pub(crate) fn from_json<'de, T: Deserialize<'de>>(json: &'de str) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        Error {
            path: if path == "." { String::new() } else { path },
            message: err.into_inner().to_string(),
        }
    })?;
    de.end().map_err(|err| Error {
        path: String::new(),
        message: err.to_string(),
    })?;
    Ok(value)
}

/// The whole client-API response.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Payload {
    pub version: u32,
    #[serde(default, deserialize_with = "null_as_default")]
    pub features: Vec<Feature>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub segments: Vec<Segment>,
    #[serde(default)]
    pub meta: Option<Meta>,
}

impl Payload {
    /// Parses a `/api/client/features` response.
    pub fn from_json(json: &str) -> Result<Payload, Error> {
        from_json(json)
    }
}

/// Response metadata some servers send; useful in logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default)]
    pub revision_id: Option<u64>,
    #[serde(default)]
    pub etag: Option<String>,
    #[serde(default)]
    pub query_hash: Option<String>,
}

/// One feature toggle.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Feature {
    pub name: String,
    pub enabled: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub strategies: Vec<Strategy>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub variants: Vec<Variant>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub dependencies: Vec<Dependency>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub impression_data: bool,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default, rename = "type")]
    pub feature_type: Option<String>,
}

/// An activation strategy with its constraints, segment references and
/// strategy variants.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Strategy {
    pub name: String,
    /// Unleash sends strings; numbers and booleans are read as their text.
    #[serde(default, deserialize_with = "parameters")]
    pub parameters: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub constraints: Vec<Constraint>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub segments: Vec<i64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub variants: Vec<Variant>,
}

/// A condition on one context field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraint {
    pub context_name: String,
    pub operator: Operator,
    #[serde(default, deserialize_with = "null_as_default")]
    pub values: Vec<String>,
    /// Single operand of the numeric, date, semver and regex operators.
    #[serde(default, deserialize_with = "scalar_text")]
    pub value: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub inverted: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub case_insensitive: bool,
}

/// Constraint operators. `Unknown` keeps operators this crate does not know:
/// like the SDKs, such a constraint never matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    In,
    NotIn,
    StrStartsWith,
    StrEndsWith,
    StrContains,
    NumEq,
    NumGt,
    NumGte,
    NumLt,
    NumLte,
    DateAfter,
    DateBefore,
    SemverEq,
    SemverGt,
    SemverGte,
    SemverLt,
    SemverLte,
    Regex,
    InCidr,
    Unknown(String),
}

impl Operator {
    pub fn parse(text: &str) -> Operator {
        match text {
            "IN" => Operator::In,
            "NOT_IN" => Operator::NotIn,
            "STR_STARTS_WITH" => Operator::StrStartsWith,
            "STR_ENDS_WITH" => Operator::StrEndsWith,
            "STR_CONTAINS" => Operator::StrContains,
            "NUM_EQ" => Operator::NumEq,
            "NUM_GT" => Operator::NumGt,
            "NUM_GTE" => Operator::NumGte,
            "NUM_LT" => Operator::NumLt,
            "NUM_LTE" => Operator::NumLte,
            "DATE_AFTER" => Operator::DateAfter,
            "DATE_BEFORE" => Operator::DateBefore,
            "SEMVER_EQ" => Operator::SemverEq,
            "SEMVER_GT" => Operator::SemverGt,
            "SEMVER_GTE" => Operator::SemverGte,
            "SEMVER_LT" => Operator::SemverLt,
            "SEMVER_LTE" => Operator::SemverLte,
            "REGEX" => Operator::Regex,
            "IN_CIDR" => Operator::InCidr,
            other => Operator::Unknown(other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Operator {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Operator::parse(&text))
    }
}

/// A reusable list of constraints, referenced by id from strategies.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Segment {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub constraints: Vec<Constraint>,
}

/// A feature variant or a strategy variant (strategy variants carry no
/// overrides).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Variant {
    pub name: String,
    #[serde(default)]
    pub weight: u32,
    /// `variable` or `fix`; the server has already turned it into weights.
    #[serde(default)]
    pub weight_type: Option<String>,
    #[serde(default)]
    pub stickiness: Option<String>,
    #[serde(default)]
    pub payload: Option<VariantPayload>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub overrides: Vec<Override>,
}

/// What a variant hands to the application: a type tag and its text.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VariantPayload {
    #[serde(rename = "type")]
    pub payload_type: String,
    pub value: String,
}

/// Forces a variant for listed values of a context field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Override {
    pub context_name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub values: Vec<String>,
}

/// A parent feature this one requires.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Dependency {
    pub feature: String,
    /// The parent's expected state; absent means enabled.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// When non-empty, the parent's variant must be one of these.
    #[serde(default, deserialize_with = "null_as_default")]
    pub variants: Vec<String>,
}

/// `null` reads as the type's default (servers send `"variants": null`).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A string, number or boolean as text (`null` is absent): strategy
/// parameters and constraint values are strings in Unleash's schema, but
/// hand-written payloads put numbers there.
struct ScalarText(Option<String>);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText, E> {
                Ok(ScalarText(Some(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<ScalarText, E> {
                Ok(ScalarText(Some(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarText, E> {
                Ok(ScalarText(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText, E> {
                Ok(ScalarText(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText, E> {
                Ok(ScalarText(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarText, E> {
                Ok(ScalarText(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ScalarText, E> {
                Ok(ScalarText(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<ScalarText, E> {
                Ok(ScalarText(None))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

fn scalar_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(ScalarText::deserialize(deserializer)?.0)
}

fn parameters<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: Option<BTreeMap<String, ScalarText>> = Option::deserialize(deserializer)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.0.map(|v| (k, v)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_server_payload_with_extra_fields_and_nulls() {
        let json = r#"{
          "version": 2,
          "features": [{
            "name": "checkout", "enabled": true, "description": null, "stale": false,
            "type": "release", "project": "shop", "impressionData": true,
            "createdAt": "2024-01-01T00:00:00Z",
            "strategies": [{
              "name": "flexibleRollout", "sortOrder": 1, "id": "abc",
              "parameters": {"rollout": 50, "stickiness": "default", "groupId": "checkout"},
              "constraints": [{"contextName": "appName", "operator": "FOO", "values": null,
                               "caseInsensitive": false, "inverted": false}],
              "segments": [1], "variants": null
            }],
            "variants": [{"name": "a", "weight": 1000, "weightType": "variable",
                          "stickiness": "default", "payload": {"type": "json", "value": "{}"},
                          "overrides": [{"contextName": "userId", "values": ["1"]}]}],
            "dependencies": [{"feature": "parent", "variants": ["x"]}]
          }],
          "segments": [{"id": 1, "name": null, "constraints": []}],
          "query": {"environment": "production", "inlineSegmentConstraints": true},
          "meta": {"revisionId": 42, "etag": "\"76d8bb0e:42\"", "queryHash": "76d8bb0e"}
        }"#;
        let payload = Payload::from_json(json).unwrap();
        let feature = &payload.features[0];
        assert_eq!(feature.project.as_deref(), Some("shop"));
        assert_eq!(feature.strategies[0].parameters["rollout"], "50");
        assert_eq!(
            feature.strategies[0].constraints[0].operator,
            Operator::Unknown("FOO".into())
        );
        assert!(feature.strategies[0].variants.is_empty());
        assert_eq!(feature.variants[0].overrides[0].values, ["1"]);
        assert_eq!(feature.dependencies[0].enabled, None);
        assert_eq!(payload.meta.unwrap().revision_id, Some(42));
    }

    #[test]
    fn type_errors_name_their_path() {
        let json = r#"{"version": 1, "features": [
            {"name": "a", "enabled": true},
            {"name": "b", "enabled": true, "strategies": [
                {"name": "default", "constraints": [
                    {"contextName": "x", "operator": "IN", "values": ["1"]},
                    {"contextName": "x", "operator": "IN", "values": "1"}
                ]}
            ]}
        ]}"#;
        let err = Payload::from_json(json).unwrap_err();
        assert_eq!(err.path, "features[1].strategies[0].constraints[1].values");
        assert!(err.to_string().starts_with(
            "features[1].strategies[0].constraints[1].values: invalid type: string \"1\""
        ));

        let err =
            Payload::from_json(r#"{"version": 1, "features": [{"name": "a", "enabled": "yes"}]}"#)
                .unwrap_err();
        assert_eq!(err.path, "features[0].enabled");

        let err =
            Payload::from_json(r#"{"version": 1, "features": [{"enabled": true}]}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `name`"), "{err}");

        let err = Payload::from_json(r#"{"version": 1, "features": [{"name": "a", "enabled": true, "variants": [{"name": "v", "weight": -1}]}]}"#)
            .unwrap_err();
        assert_eq!(err.path, "features[0].variants[0].weight");

        assert!(Payload::from_json("{\"version\": 1} trailing").is_err());
    }
}
