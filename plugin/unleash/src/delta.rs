//! Unleash's delta API (`/api/client/delta`): a list of events that hydrate
//! or patch the feature state, applied in order to a [`Payload`].

use sluice_primitives::json::Value;
use sluice_primitives::quoted::Quoted;

use crate::json::{self, Obj, Path};
use crate::model::{Error, Feature, Payload, Segment};

/// One delta response: its events, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delta {
    pub events: Vec<DeltaEvent>,
}

/// A change to the feature state.
#[derive(Debug, Clone, PartialEq)]
pub enum DeltaEvent {
    /// Replaces every feature and segment.
    Hydration {
        event_id: u64,
        features: Vec<Feature>,
        segments: Vec<Segment>,
    },
    /// Adds a feature or replaces the one with its name.
    FeatureUpdated {
        event_id: u64,
        feature: Feature,
    },
    FeatureRemoved {
        event_id: u64,
        feature_name: String,
        project: Option<String>,
    },
    /// Adds a segment or replaces the one with its id.
    SegmentUpdated {
        event_id: u64,
        segment: Segment,
    },
    SegmentRemoved {
        event_id: u64,
        segment_id: i64,
    },
}

impl DeltaEvent {
    #[inline(never)]
    pub fn event_id(&self) -> u64 {
        match self {
            DeltaEvent::Hydration { event_id, .. }
            | DeltaEvent::FeatureUpdated { event_id, .. }
            | DeltaEvent::FeatureRemoved { event_id, .. }
            | DeltaEvent::SegmentUpdated { event_id, .. }
            | DeltaEvent::SegmentRemoved { event_id, .. } => *event_id,
        }
    }
}

impl Delta {
    /// Parses a delta response `{"events": [...]}`.
    pub fn from_json(json: &str) -> Result<Delta, Error> {
        Delta::from_slice(json.as_bytes())
    }

    /// Parses a response body as the host hands it over.
    #[inline(never)]
    pub fn from_slice(json: &[u8]) -> Result<Delta, Error> {
        let value = json::parse(json)?;
        let root = Path::Root;
        let o = Obj::new(&value, &root)?;
        Ok(Delta {
            events: o.required_list("events", DeltaEvent::read)?,
        })
    }
}

impl Payload {
    /// Applies one event in place.
    #[inline(never)]
    pub fn apply(&mut self, event: DeltaEvent) {
        match event {
            DeltaEvent::Hydration {
                features, segments, ..
            } => {
                self.features = features;
                self.segments = segments;
            }
            DeltaEvent::FeatureUpdated { feature, .. } => {
                match self.features.iter_mut().find(|f| f.name == feature.name) {
                    Some(existing) => *existing = feature,
                    None => self.features.push(feature),
                }
            }
            DeltaEvent::FeatureRemoved { feature_name, .. } => {
                self.features.retain(|f| f.name != feature_name);
            }
            DeltaEvent::SegmentUpdated { segment, .. } => {
                match self.segments.iter_mut().find(|s| s.id == segment.id) {
                    Some(existing) => *existing = segment,
                    None => self.segments.push(segment),
                }
            }
            DeltaEvent::SegmentRemoved { segment_id, .. } => {
                self.segments.retain(|s| s.id != segment_id);
            }
        }
    }
}

impl DeltaEvent {
    #[inline(never)]
    fn read(value: &Value, path: &Path<'_>) -> Result<DeltaEvent, Error> {
        let o = Obj::new(value, path)?;
        let event_id = o.u64("eventId")?;
        let kind = o.string("type")?;
        Ok(match kind.as_str() {
            "hydration" => DeltaEvent::Hydration {
                event_id,
                features: o.required_list("features", Feature::read)?,
                segments: o.list("segments", Segment::read)?,
            },
            "feature-updated" => DeltaEvent::FeatureUpdated {
                event_id,
                feature: o.object("feature", Feature::read)?,
            },
            "feature-removed" => DeltaEvent::FeatureRemoved {
                event_id,
                feature_name: o.string("featureName")?,
                project: o.opt_string("project")?,
            },
            "segment-updated" => DeltaEvent::SegmentUpdated {
                event_id,
                segment: o.object("segment", Segment::read)?,
            },
            "segment-removed" => DeltaEvent::SegmentRemoved {
                event_id,
                segment_id: o.i64("segmentId")?,
            },
            other => {
                return Err(json::error(
                    &path.key("type"),
                    format!("unknown delta event type {}", Quoted(other)),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(payload: &Payload) -> Vec<&str> {
        payload.features.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn applies_events_in_order() {
        let delta = Delta::from_json(
            r#"{"events": [
              {"eventId": 1, "type": "hydration",
               "features": [{"name": "a", "enabled": true}, {"name": "b", "enabled": true}],
               "segments": [{"id": 1, "constraints": []}]},
              {"eventId": 2, "type": "feature-updated", "feature": {"name": "a", "enabled": false}},
              {"eventId": 3, "type": "feature-updated", "feature": {"name": "c", "enabled": true}},
              {"eventId": 4, "type": "feature-removed", "featureName": "b", "project": "default"},
              {"eventId": 5, "type": "segment-updated", "segment": {"id": 2, "constraints": []}},
              {"eventId": 6, "type": "segment-removed", "segmentId": 1}
            ]}"#,
        )
        .unwrap();
        let mut payload = Payload::default();
        for event in delta.events.clone() {
            payload.apply(event);
        }
        assert_eq!(names(&payload), ["a", "c"]);
        assert!(!payload.features[0].enabled);
        assert_eq!(payload.segments.len(), 1);
        assert_eq!(payload.segments[0].id, 2);
        assert_eq!(delta.events[5].event_id(), 6);
    }

    #[test]
    fn errors_name_the_event_and_field() {
        let err = Delta::from_json(
            r#"{"events": [{"eventId": 1, "type": "feature-updated",
                "feature": {"name": "a", "enabled": true, "strategies": [{"name": 7}]}}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.path, "events[0].feature.strategies[0].name");

        let err = Delta::from_json(r#"{"events": [{"eventId": 1, "type": "feature-updated"}]}"#)
            .unwrap_err();
        assert_eq!(err.to_string(), "events[0]: missing field `feature`");

        let err = Delta::from_json(r#"{"events": [{"eventId": 1, "type": "feature-renamed"}]}"#)
            .unwrap_err();
        assert_eq!(err.path, "events[0].type");
    }
}
