//! Checks on the text a config puts on the wire: header names, names used
//! inside header values, percents.
use super::ConfigError;
use crate::bucket::BUCKETS;
use sluice_primitives::float_text::Plain;
use sluice_primitives::quoted::{Escaped, QuotedChar};
use std::fmt::Display;

/// A byte class as a table: a config load checks every byte of every name, and at the core's
/// size-first opt-level `contains` over a list of bytes is a call per byte.
const fn byte_class(extra: &[u8]) -> [bool; 256] {
    let mut class = [false; 256];
    let mut b = 0;
    while b < 256 {
        class[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        class[extra[i] as usize] = true;
        i += 1;
    }
    class
}

/// RFC 9110 token characters.
const TOKEN_BYTES: [bool; 256] = byte_class(b"!#$%&'*+-.^_`|~");
/// Name characters (see `check_name`).
const NAME_BYTES: [bool; 256] = byte_class(b"_-.");

#[inline(never)]
fn all_in(class: &[bool; 256], text: &str) -> bool {
    for &b in text.as_bytes() {
        if !class[b as usize] {
            return false;
        }
    }
    true
}

/// RFC 9110 token characters.
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN_BYTES[b as usize]
}

/// A header the filter writes: a non-empty token, stored lower-case.
#[inline(never)]
pub(crate) fn output_header(name: &str, path: &dyn Display) -> Result<String, ConfigError> {
    if name.is_empty() || !all_in(&TOKEN_BYTES, name) {
        return Err(ConfigError::new(
            path.to_string(),
            format!("`{}` is not a valid HTTP header name", Escaped(name)),
        ));
    }
    let lower = name.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "host"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "te"
            | "upgrade"
            | "cookie"
    ) {
        return Err(ConfigError::new(
            path.to_string(),
            format!("`{lower}` is reserved by HTTP and cannot be written by Sluice"),
        ));
    }
    Ok(lower)
}

/// A header the filter reads: a token, or a pseudo-header like `:path`.
#[inline(never)]
pub(crate) fn input_header(name: &str, path: &dyn Display) -> Result<String, ConfigError> {
    let body = name.strip_prefix(':').unwrap_or(name);
    if body.is_empty() || !all_in(&TOKEN_BYTES, body) {
        return Err(ConfigError::new(
            path.to_string(),
            format!("`{}` is not a valid HTTP header name", Escaped(name)),
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// Names of flags, variants, routes, versions, segments and attributes: they
/// appear inside header values (`name=variant;…`), so letters, digits, `_`,
/// `-` and `.` only.
#[inline(never)]
pub(crate) fn check_name(name: &str, path: &dyn Display, what: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.len() > 128 || !all_in(&NAME_BYTES, name) {
        return Err(ConfigError::new(
            path.to_string(),
            format!(
                "{what} `{}` must be 1-128 letters, digits, `_`, `-` or `.`",
                Escaped(name)
            ),
        ));
    }
    Ok(())
}

/// Cookie and query parameter names: tokens.
#[inline(never)]
pub(crate) fn check_name_like(
    name: &str,
    path: &dyn Display,
    what: &str,
) -> Result<(), ConfigError> {
    if name.is_empty() || !all_in(&TOKEN_BYTES, name) {
        return Err(ConfigError::new(
            path.to_string(),
            format!("{what} `{}` is not a valid token", Escaped(name)),
        ));
    }
    Ok(())
}

/// A value written into a header: no control characters (CR/LF would inject
/// headers).
#[inline(never)]
pub(crate) fn check_header_value(value: &str, path: &dyn Display) -> Result<(), ConfigError> {
    // Printable ASCII, the usual case, needs no decoding.
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(());
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(ConfigError::new(
            path.to_string(),
            format!(
                "value contains control character {}, which could inject headers",
                QuotedChar(c)
            ),
        ));
    }
    Ok(())
}

/// A percent with at most two decimals (0.01% = one bucket), as buckets.
#[inline(never)]
pub(crate) fn percent_to_buckets(percent: f64, path: &dyn Display) -> Result<u32, ConfigError> {
    if !percent.is_finite() || percent < 0.0 {
        return Err(ConfigError::new(
            path.to_string(),
            format!("weight {} is negative", Plain(percent)),
        ));
    }
    if percent > 100.0 {
        return Err(ConfigError::new(
            path.to_string(),
            format!("weight {} is over 100", Plain(percent)),
        ));
    }
    let buckets = (percent * 100.0).round();
    if (percent * 100.0 - buckets).abs() > 1e-6 {
        return Err(ConfigError::new(
            path.to_string(),
            format!("weight {} is finer than 0.01", Plain(percent)),
        ));
    }
    Ok((buckets as u32).min(BUCKETS))
}

/// Formats a bucket count back as a percent for messages (`90`, `12.5`).
#[inline(never)]
pub(crate) fn buckets_as_percent(buckets: u32) -> String {
    let whole = buckets / 100;
    let frac = buckets % 100;
    match frac {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    }
}

#[inline(never)]
pub(crate) fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// RFC 3339 time → Unix millis, or an error at `path`.
#[inline(never)]
pub(crate) fn time_millis(text: &str, path: &dyn Display) -> Result<i64, ConfigError> {
    sluice_primitives::time::parse_rfc3339_millis(text).ok_or_else(|| {
        ConfigError::new(
            path.to_string(),
            format!("`{text}` is not an RFC 3339 time (e.g. 2026-12-01T09:00:00Z)"),
        )
    })
}

/// A window or interval of at least 1s (e.g. `10s`) → millis, or an error at `path`.
#[inline(never)]
pub(crate) fn duration_millis_at_least_1s(
    text: &str,
    path: &dyn Display,
) -> Result<u64, ConfigError> {
    let millis = duration_millis(text, path)?;
    if millis < 1000 {
        return Err(ConfigError::new(path.to_string(), "must be at least 1s"));
    }
    Ok(millis)
}

/// Duration like `10m` → millis, or an error at `path`.
#[inline(never)]
pub(crate) fn duration_millis(text: &str, path: &dyn Display) -> Result<u64, ConfigError> {
    sluice_primitives::duration::parse_duration_millis(text).ok_or_else(|| {
        ConfigError::new(
            path.to_string(),
            format!("`{text}` is not a duration (e.g. 90s, 10m, 1h30m, 2d)"),
        )
    })
}
