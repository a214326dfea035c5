//! Sluice: progressive delivery inside the proxy.
pub mod bucket;
