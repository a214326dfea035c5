//! Semantic versions (semver 2.0.0) with its precedence rules: numeric
//! major.minor.patch, then pre-release identifiers (a release outranks its
//! pre-releases); build metadata is ignored.
use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pre: Vec<PreId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PreId {
    Numeric(u64),
    Alpha(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemverError(pub String);

impl fmt::Display for SemverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Version {
    /// Parses `MAJOR.MINOR.PATCH[-PRE][+BUILD]`, strictly.
    pub fn parse(text: &str) -> Result<Version, SemverError> {
        Version::read(text).map_err(|why| invalid(text, why))
    }

    fn read(text: &str) -> Result<Version, Why<'_>> {
        let without_build = text.split_once('+').map_or(text, |(v, _)| v);
        let (core, pre) = match without_build.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (without_build, None),
        };
        let mut parts = core.split('.');
        let major = number(parts.next(), "major")?;
        let minor = number(parts.next(), "minor")?;
        let patch = number(parts.next(), "patch")?;
        if parts.next().is_some() {
            return Err(Why::NotThree);
        }
        let pre = match pre {
            Some(pre) => pre_release(pre)?,
            None => Vec::new(),
        };
        Ok(Version {
            major,
            minor,
            patch,
            pre,
        })
    }

    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

/// Why a text is not a version; put into words only for the error.
enum Why<'a> {
    Missing(&'static str),
    NotANumber(&'static str, &'a str),
    NotThree,
    BadPreRelease,
}

#[cold]
#[inline(never)]
fn invalid(text: &str, why: Why<'_>) -> SemverError {
    let why = match why {
        Why::Missing(name) => format!("missing {name}"),
        Why::NotANumber(name, part) => format!("{name} `{part}` is not a number"),
        Why::NotThree => "expected three numbers".into(),
        Why::BadPreRelease => "bad pre-release identifier".into(),
    };
    SemverError(format!("`{text}` is not a semantic version: {why}"))
}

/// One of major, minor and patch (`name`).
fn number<'a>(part: Option<&'a str>, name: &'static str) -> Result<u64, Why<'a>> {
    let part = part.ok_or(Why::Missing(name))?;
    parse_numeric(part).ok_or(Why::NotANumber(name, part))
}

/// The dot-separated identifiers after `-`.
#[inline(never)]
fn pre_release(pre: &str) -> Result<Vec<PreId>, Why<'static>> {
    let mut ids = Vec::new();
    for id in pre.split('.') {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Why::BadPreRelease);
        }
        ids.push(match parse_numeric(id) {
            Some(n) => PreId::Numeric(n),
            None => PreId::Alpha(id.to_string()),
        });
    }
    Ok(ids)
}

/// Digits only, no leading zero (semver forbids them).
#[inline(never)]
fn parse_numeric(part: &str) -> Option<u64> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if part.len() > 1 && part.starts_with('0') {
        return None;
    }
    part.parse().ok()
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => cmp_pre(&self.pre, &other.pre),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn cmp_pre(a: &[PreId], b: &[PreId]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ord = match (x, y) {
            (PreId::Numeric(x), PreId::Numeric(y)) => x.cmp(y),
            (PreId::Numeric(_), PreId::Alpha(_)) => Ordering::Less,
            (PreId::Alpha(_), PreId::Numeric(_)) => Ordering::Greater,
            (PreId::Alpha(x), PreId::Alpha(y)) => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn precedence_follows_the_spec_example() {
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.10.0",
            "2.0.0",
        ];
        for pair in chain.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1.2.3+build.5"), v("1.2.3"));
    }

    #[test]
    fn rejects_what_is_not_a_version() {
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "a.b.c",
            "1.2.3-",
            "1.2.3-a..b",
            "v1.2.3",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(Version::parse("1.2")
            .unwrap_err()
            .to_string()
            .contains("missing patch"));
    }
}
