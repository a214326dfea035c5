//! The Unleash client-API payload (`GET /api/client/features`), as data.
//!
//! Lenient where Unleash servers grow: unknown fields are ignored, `null`
//! stands for an empty list, unknown operators and strategies are kept (they
//! evaluate to false, as in the SDKs). Strict about types: a string where a
//! boolean belongs is an error that names its path.

use std::fmt;

use sluice_primitives::json::Value;

use crate::json::{self, Obj, Path};

/// A payload or delta that could not be read: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// JSON path of the offending value, e.g. `features[3].strategies[0].name`;
    /// empty for the document itself.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Error {
    #[inline(never)]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for Error {}

/// The whole client-API response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Payload {
    pub version: u64,
    pub features: Vec<Feature>,
    pub segments: Vec<Segment>,
    pub meta: Option<Meta>,
}

impl Payload {
    /// Parses a `/api/client/features` response.
    pub fn from_json(json: &str) -> Result<Payload, Error> {
        Payload::from_slice(json.as_bytes())
    }

    /// Parses a response body as the host hands it over.
    pub fn from_slice(json: &[u8]) -> Result<Payload, Error> {
        Payload::from_value(&json::parse(json)?)
    }

    /// Reads a payload already parsed (the one inlined in a config).
    pub fn from_value(value: &Value) -> Result<Payload, Error> {
        Payload::read(value, &Path::Root)
    }

    #[inline(never)]
    pub(crate) fn read(value: &Value, path: &Path<'_>) -> Result<Payload, Error> {
        let o = Obj::new(value, path)?;
        Ok(Payload {
            version: o.u64("version")?,
            features: o.list("features", Feature::read)?,
            segments: o.list("segments", Segment::read)?,
            meta: o.opt_object("meta", Meta::read)?,
        })
    }
}

impl Meta {
    #[inline(never)]
    fn read(value: &Value, path: &Path<'_>) -> Result<Meta, Error> {
        let o = Obj::new(value, path)?;
        Ok(Meta {
            revision_id: o.opt_u64("revisionId")?,
            etag: o.opt_string("etag")?,
            query_hash: o.opt_string("queryHash")?,
        })
    }
}

impl Feature {
    #[inline(never)]
    pub(crate) fn read(value: &Value, path: &Path<'_>) -> Result<Feature, Error> {
        let o = Obj::new(value, path)?;
        let name = o.string("name")?;
        let enabled = o.bool("enabled")?;
        let (strategies, variants, dependencies) = Self::read_lists(&o)?;
        let (impression_data, project, feature_type) = Self::read_details(&o)?;
        Ok(Feature {
            name,
            enabled,
            strategies,
            variants,
            dependencies,
            impression_data,
            project,
            feature_type,
        })
    }

    /// The feature's `impressionData`, `project` and `type`, in that order.
    #[inline(never)]
    fn read_details(o: &Obj) -> Result<(bool, Option<String>, Option<String>), Error> {
        Ok((
            o.opt_bool("impressionData")?.unwrap_or(false),
            o.opt_string("project")?,
            o.opt_string("type")?,
        ))
    }

    /// The feature's strategies, variants and dependencies, in that order.
    #[inline(never)]
    fn read_lists(o: &Obj) -> Result<FeatureLists, Error> {
        Ok((
            o.list("strategies", Strategy::read)?,
            o.list("variants", Variant::read)?,
            o.list("dependencies", Dependency::read)?,
        ))
    }
}

type FeatureLists = (Vec<Strategy>, Vec<Variant>, Vec<Dependency>);

impl Strategy {
    #[inline(never)]
    pub(crate) fn read(value: &Value, path: &Path<'_>) -> Result<Strategy, Error> {
        let o = Obj::new(value, path)?;
        let parameters = o.entries("parameters", |v, p| {
            if v.is_null() {
                Ok(None)
            } else {
                json::scalar_text(v, p).map(Some)
            }
        })?;
        let name = o.string("name")?;
        let (constraints, segments, variants) = Self::read_lists(&o)?;
        Ok(Strategy {
            name,
            parameters: parameters
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect(),
            constraints,
            segments,
            variants,
        })
    }

    /// The strategy's constraints, segments and variants, in that order.
    #[inline(never)]
    fn read_lists(o: &Obj) -> Result<StrategyLists, Error> {
        Ok((
            o.list("constraints", Constraint::read)?,
            o.list("segments", json::i64)?,
            o.list("variants", Variant::read)?,
        ))
    }
}

type StrategyLists = (Vec<Constraint>, Vec<i64>, Vec<Variant>);

impl Strategy {
    /// A parameter by name.
    #[inline(never)]
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl Constraint {
    #[inline(never)]
    pub(crate) fn read(value: &Value, path: &Path<'_>) -> Result<Constraint, Error> {
        let o = Obj::new(value, path)?;
        Ok(Constraint {
            context_name: o.string("contextName")?,
            operator: Operator::parse(&o.string("operator")?),
            values: o.list("values", json::string)?,
            value: o.opt_scalar_text("value")?,
            inverted: o.opt_bool("inverted")?.unwrap_or(false),
            case_insensitive: o.opt_bool("caseInsensitive")?.unwrap_or(false),
        })
    }
}

impl Segment {
    #[inline(never)]
    pub(crate) fn read(value: &Value, path: &Path<'_>) -> Result<Segment, Error> {
        let o = Obj::new(value, path)?;
        Ok(Segment {
            id: o.i64("id")?,
            name: o.opt_string("name")?,
            constraints: o.list("constraints", Constraint::read)?,
        })
    }
}

impl Variant {
    #[inline(never)]
    pub(crate) fn read(value: &Value, path: &Path<'_>) -> Result<Variant, Error> {
        let o = Obj::new(value, path)?;
        let weight = o.opt_u64("weight")?.unwrap_or(0);
        Ok(Variant {
            name: o.string("name")?,
            weight: u32::try_from(weight)
                .map_err(|_| json::error(&path.key("weight"), "weight is too large"))?,
            weight_type: o.opt_string("weightType")?,
            stickiness: o.opt_string("stickiness")?,
            payload: o.opt_object("payload", |v, p| {
                let o = Obj::new(v, p)?;
                Ok(VariantPayload {
                    payload_type: o.string("type")?,
                    value: o.string("value")?,
                })
            })?,
            overrides: o.list("overrides", |v, p| {
                let o = Obj::new(v, p)?;
                Ok(Override {
                    context_name: o.string("contextName")?,
                    values: o.list("values", json::string)?,
                })
            })?,
        })
    }
}

impl Dependency {
    #[inline(never)]
    fn read(value: &Value, path: &Path<'_>) -> Result<Dependency, Error> {
        let o = Obj::new(value, path)?;
        Ok(Dependency {
            feature: o.string("feature")?,
            enabled: o.opt_bool("enabled")?,
            variants: o.list("variants", json::string)?,
        })
    }
}

/// Response metadata some servers send; useful in logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub revision_id: Option<u64>,
    pub etag: Option<String>,
    pub query_hash: Option<String>,
}

/// One feature toggle.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub name: String,
    pub enabled: bool,
    pub strategies: Vec<Strategy>,
    pub variants: Vec<Variant>,
    pub dependencies: Vec<Dependency>,
    pub impression_data: bool,
    pub project: Option<String>,
    pub feature_type: Option<String>,
}

/// An activation strategy with its constraints, segment references and
/// strategy variants.
#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    pub name: String,
    /// Name → value. Unleash sends strings; numbers and booleans are read as
    /// their text, nulls are dropped. A list: strategies have a handful.
    pub parameters: Vec<(String, String)>,
    pub constraints: Vec<Constraint>,
    pub segments: Vec<i64>,
    pub variants: Vec<Variant>,
}

/// A condition on one context field.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    pub context_name: String,
    pub operator: Operator,
    pub values: Vec<String>,
    /// Single operand of the numeric, date, semver and regex operators.
    pub value: Option<String>,
    pub inverted: bool,
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
    #[inline(never)]
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

/// A reusable list of constraints, referenced by id from strategies.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub id: i64,
    pub name: Option<String>,
    pub constraints: Vec<Constraint>,
}

/// A feature variant or a strategy variant (strategy variants carry no
/// overrides).
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub name: String,
    pub weight: u32,
    /// `variable` or `fix`; the server has already turned it into weights.
    pub weight_type: Option<String>,
    pub stickiness: Option<String>,
    pub payload: Option<VariantPayload>,
    pub overrides: Vec<Override>,
}

/// What a variant hands to the application: a type tag and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantPayload {
    pub payload_type: String,
    pub value: String,
}

/// Forces a variant for listed values of a context field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub context_name: String,
    pub values: Vec<String>,
}

/// A parent feature this one requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub feature: String,
    /// The parent's expected state; absent means enabled.
    pub enabled: Option<bool>,
    /// When non-empty, the parent's variant must be one of these.
    pub variants: Vec<String>,
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
        assert_eq!(feature.strategies[0].parameter("rollout"), Some("50"));
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
        assert_eq!(
            err.to_string(),
            "features[1].strategies[0].constraints[1].values: expected an array, found string \"1\""
        );

        let err =
            Payload::from_json(r#"{"version": 1, "features": [{"name": "a", "enabled": "yes"}]}"#)
                .unwrap_err();
        assert_eq!(err.path, "features[0].enabled");

        let err =
            Payload::from_json(r#"{"version": 1, "features": [{"enabled": true}]}"#).unwrap_err();
        assert_eq!(err.to_string(), "features[0]: missing field `name`");

        let err = Payload::from_json(r#"{"version": 1, "features": [{"name": "a", "enabled": true, "variants": [{"name": "v", "weight": -1}]}]}"#)
            .unwrap_err();
        assert_eq!(err.path, "features[0].variants[0].weight");

        assert!(Payload::from_json("{\"version\": 1} trailing").is_err());
    }
}
