//! Unleash's delta API (`/api/client/delta`): a list of events that hydrate
//! or patch the feature state, applied in order to a [`Payload`].

use serde::Deserialize;

use crate::model::{from_json, Error, Feature, Payload, Segment};

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
        let raw: RawDelta = from_json(json)?;
        let events = raw
            .events
            .into_iter()
            .enumerate()
            .map(|(i, event)| event.into_event(&format!("events[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(Delta { events })
    }
}

impl Payload {
    /// Applies one event in place.
    pub fn apply(&mut self, event: &DeltaEvent) {
        match event {
            DeltaEvent::Hydration {
                features, segments, ..
            } => {
                self.features = features.clone();
                self.segments = segments.clone();
            }
            DeltaEvent::FeatureUpdated { feature, .. } => {
                match self.features.iter_mut().find(|f| f.name == feature.name) {
                    Some(existing) => *existing = feature.clone(),
                    None => self.features.push(feature.clone()),
                }
            }
            DeltaEvent::FeatureRemoved { feature_name, .. } => {
                self.features.retain(|f| &f.name != feature_name);
            }
            DeltaEvent::SegmentUpdated { segment, .. } => {
                match self.segments.iter_mut().find(|s| s.id == segment.id) {
                    Some(existing) => *existing = segment.clone(),
                    None => self.segments.push(segment.clone()),
                }
            }
            DeltaEvent::SegmentRemoved { segment_id, .. } => {
                self.segments.retain(|s| s.id != *segment_id);
            }
        }
    }
}

// The wire form is flat so that serde_path_to_error keeps full paths into the
// nested features (an internally tagged enum would buffer them and lose it);
// the fields each event type requires are checked after.
#[derive(Deserialize)]
struct RawDelta {
    events: Vec<RawEvent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    event_id: u64,
    #[serde(rename = "type")]
    kind: EventKind,
    #[serde(default)]
    features: Option<Vec<Feature>>,
    #[serde(default)]
    segments: Option<Vec<Segment>>,
    #[serde(default)]
    feature: Option<Feature>,
    #[serde(default)]
    feature_name: Option<String>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    segment: Option<Segment>,
    #[serde(default)]
    segment_id: Option<i64>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum EventKind {
    Hydration,
    FeatureUpdated,
    FeatureRemoved,
    SegmentUpdated,
    SegmentRemoved,
}

impl RawEvent {
    fn into_event(self, path: &str) -> Result<DeltaEvent, Error> {
        fn need<T>(value: Option<T>, path: &str, field: &str, kind: &str) -> Result<T, Error> {
            value.ok_or_else(|| Error {
                path: format!("{path}.{field}"),
                message: format!("required by a `{kind}` event"),
            })
        }
        let event_id = self.event_id;
        Ok(match self.kind {
            EventKind::Hydration => DeltaEvent::Hydration {
                event_id,
                features: need(self.features, path, "features", "hydration")?,
                segments: self.segments.unwrap_or_default(),
            },
            EventKind::FeatureUpdated => DeltaEvent::FeatureUpdated {
                event_id,
                feature: need(self.feature, path, "feature", "feature-updated")?,
            },
            EventKind::FeatureRemoved => DeltaEvent::FeatureRemoved {
                event_id,
                feature_name: need(self.feature_name, path, "featureName", "feature-removed")?,
                project: self.project,
            },
            EventKind::SegmentUpdated => DeltaEvent::SegmentUpdated {
                event_id,
                segment: need(self.segment, path, "segment", "segment-updated")?,
            },
            EventKind::SegmentRemoved => DeltaEvent::SegmentRemoved {
                event_id,
                segment_id: need(self.segment_id, path, "segmentId", "segment-removed")?,
            },
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
        for event in &delta.events {
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
        assert_eq!(
            err.to_string(),
            "events[0].feature: required by a `feature-updated` event"
        );

        let err = Delta::from_json(r#"{"events": [{"eventId": 1, "type": "feature-renamed"}]}"#)
            .unwrap_err();
        assert_eq!(err.path, "events[0].type");
    }
}
