//! `sources.spring`: a Spring Cloud Config Server's Environment endpoint as a polled flag source.
use super::error::ConfigError;
use super::unleash::{poll_plan, PollSettings};
use crate::config::{Config, SpringSource};
use crate::plan::SpringPlan;
use sluice_primitives::quoted::Escaped;

const PATH: &str = "sources.spring";

#[inline(never)]
pub(crate) fn compile_spring(config: &Config) -> Result<Option<SpringPlan>, ConfigError> {
    let Some(s) = &config.sources.spring else {
        return Ok(None);
    };
    let path = environment_path(s)?;
    if s.prefix.is_empty() || s.prefix.ends_with('.') || s.prefix.starts_with('.') {
        return Err(ConfigError::new(
            format!("{PATH}.prefix"),
            "a property prefix such as `features` (no leading or trailing `.`)",
        ));
    }
    let authorization = authorization(s)?;
    let poll = poll_plan(
        PATH,
        PollSettings {
            cluster: &s.cluster,
            authority: s.authority.as_deref(),
            path: &path,
            authorization,
            interval: &s.interval,
            timeout: &s.timeout,
            max_body_bytes: s.max_body_bytes,
        },
    )?;
    Ok(Some(SpringPlan {
        poll,
        prefix: s.prefix.clone(),
    }))
}

/// The Environment's path: `/{application}/{profiles}[/{label}]`.
#[inline(never)]
fn environment_path(s: &SpringSource) -> Result<String, ConfigError> {
    check_segment(&s.application, format!("{PATH}.application"))?;
    if s.profiles.is_empty() {
        return Err(ConfigError::new(
            format!("{PATH}.profiles"),
            "name at least one profile (e.g. [\"default\"])",
        ));
    }
    for (i, profile) in s.profiles.iter().enumerate() {
        check_segment(profile, format!("{PATH}.profiles[{i}]"))?;
    }
    let mut path = format!("/{}/{}", s.application, s.profiles.join(","));
    if let Some(label) = &s.label {
        check_segment(label, format!("{PATH}.label"))?;
        path = format!("{path}/{label}");
    }
    Ok(path)
}

/// Each part is one path segment of `/{application}/{profiles}[/{label}]`.
#[inline(never)]
fn check_segment(value: &str, at: String) -> Result<(), ConfigError> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '?' | '#' | ' ' | '%' | ','))
    {
        return Err(ConfigError::new(
            at,
            format!(
                "`{}` must be one non-empty path segment (no `/ ? # % ,` or spaces; Spring writes a `/` in a label as `(_)`)",
                Escaped(value)
            ),
        ));
    }
    Ok(())
}

/// The `authorization` header value: given as is, or made from `basic` credentials.
#[inline(never)]
fn authorization(s: &SpringSource) -> Result<Option<String>, ConfigError> {
    Ok(match (&s.authorization, &s.basic) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                format!("{PATH}.basic"),
                "give `authorization` or `basic`, not both",
            ))
        }
        (Some(a), None) => Some(a.clone()),
        (None, Some((user, password))) => {
            if user.contains(':') {
                return Err(ConfigError::new(
                    format!("{PATH}.basic.username"),
                    "must not contain `:`",
                ));
            }
            Some(format!(
                "Basic {}",
                base64(format!("{user}:{password}").as_bytes())
            ))
        }
        (None, None) => None,
    })
}

/// Standard base64 with padding (RFC 4648), for HTTP basic credentials.
#[inline(never)]
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648() {
        for (text, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            assert_eq!(super::base64(text.as_bytes()), encoded);
        }
    }
}
