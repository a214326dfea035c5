//! The Unleash context of one request, borrowed from the caller so building
//! it costs no allocation.

use std::net::IpAddr;

use sluice_primitives::cidr::parse_socket_ip;

/// Returns a fresh random number on each call (any distribution over `u32`
/// that is uniform enough); used for `random` stickiness.
pub type RandomSource<'a> = &'a dyn Fn() -> u32;

/// What the strategies, constraints and variants look at.
///
/// Built with the setters:
/// ```
/// # use sluice_unleash::Context;
/// let props = [("tenant", "acme")];
/// let ctx = Context::new()
///     .user_id("u-42")
///     .remote_address("10.0.0.7")
///     .environment("production")
///     .current_time_millis(1_795_705_200_000)
///     .properties(&props);
/// # let _ = ctx;
/// ```
#[derive(Clone, Copy, Default)]
pub struct Context<'a> {
    pub(crate) user_id: Option<&'a str>,
    pub(crate) session_id: Option<&'a str>,
    pub(crate) remote_address: Option<&'a str>,
    pub(crate) remote_ip: Option<IpAddr>,
    pub(crate) environment: Option<&'a str>,
    pub(crate) app_name: Option<&'a str>,
    pub(crate) hostname: Option<&'a str>,
    pub(crate) current_time: Option<i64>,
    pub(crate) properties: &'a [(&'a str, &'a str)],
    pub(crate) random: Option<RandomSource<'a>>,
}

impl<'a> Context<'a> {
    pub fn new() -> Context<'a> {
        Context::default()
    }

    pub fn user_id(mut self, value: &'a str) -> Self {
        self.user_id = Some(value);
        self
    }

    pub fn session_id(mut self, value: &'a str) -> Self {
        self.session_id = Some(value);
        self
    }

    /// The client's IP (`1.2.3.4`, `::1`; Envoy's `ip:port` forms are read
    /// too). Parsed once here for the remoteAddress strategy and IN_CIDR.
    pub fn remote_address(mut self, value: &'a str) -> Self {
        self.remote_address = Some(value);
        self.remote_ip = parse_socket_ip(value);
        self
    }

    pub fn environment(mut self, value: &'a str) -> Self {
        self.environment = Some(value);
        self
    }

    pub fn app_name(mut self, value: &'a str) -> Self {
        self.app_name = Some(value);
        self
    }

    /// The host the SDK runs on, for the applicationHostname strategy.
    pub fn hostname(mut self, value: &'a str) -> Self {
        self.hostname = Some(value);
        self
    }

    /// The evaluation time, Unix milliseconds. DATE_AFTER / DATE_BEFORE on
    /// `currentTime` never match without it (the engine reads no clock).
    pub fn current_time_millis(mut self, millis: i64) -> Self {
        self.current_time = Some(millis);
        self
    }

    /// Custom fields (`properties` in Unleash), looked up by name; the first
    /// pair with a name wins.
    pub fn properties(mut self, pairs: &'a [(&'a str, &'a str)]) -> Self {
        self.properties = pairs;
        self
    }

    /// The random source for `random` stickiness and gradualRolloutRandom.
    /// Without one, random rolls land in the first bucket (so any rollout
    /// above 0% includes them): deterministic, but not a rollout.
    pub fn random(mut self, source: RandomSource<'a>) -> Self {
        self.random = Some(source);
        self
    }

    pub(crate) fn property(&self, name: &str) -> Option<&'a str> {
        self.properties
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| *value)
    }

    pub(crate) fn roll(&self) -> u32 {
        self.random.map_or(0, |random| random())
    }

    /// The value of a context field by its Unleash name.
    pub(crate) fn field(&self, field: &Field) -> Option<&'a str> {
        match field {
            Field::UserId => self.user_id,
            Field::SessionId => self.session_id,
            Field::RemoteAddress => self.remote_address,
            Field::Environment => self.environment,
            Field::AppName => self.app_name,
            // The time is a number here; as text it only feeds the date
            // operators, which read it directly.
            Field::CurrentTime => None,
            Field::Property(name) => self.property(name),
        }
    }
}

/// A context field name, resolved once at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    UserId,
    SessionId,
    RemoteAddress,
    Environment,
    AppName,
    CurrentTime,
    Property(Box<str>),
}

impl Field {
    pub(crate) fn parse(name: &str) -> Field {
        match name {
            "userId" => Field::UserId,
            "sessionId" => Field::SessionId,
            "remoteAddress" => Field::RemoteAddress,
            "environment" => Field::Environment,
            "appName" => Field::AppName,
            "currentTime" => Field::CurrentTime,
            other => Field::Property(other.into()),
        }
    }
}
