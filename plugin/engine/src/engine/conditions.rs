//! Evaluating compiled conditions against a request. Text operators work on
//! bytes; number, semver and CIDR operators need UTF-8 and are false without it.
use super::request::Request;
use crate::plan::{Cmp, Cond, Leaf, Op, Subject};
use sluice_primitives::cidr::parse_socket_ip;
use sluice_primitives::semver::Version;
use sluice_primitives::swar;
use std::cmp::Ordering;

/// `matches`, with a segment already known this request answered without the call: many flags
/// target the same few segments, and shared leaves are segments too.
#[inline(always)]
pub fn holds(cond: &Cond, req: &Request) -> bool {
    if let Cond::Segment(id, _) = cond {
        if let Some(known) = req.segment(*id) {
            return known;
        }
    }
    matches(cond, req)
}

pub fn matches(cond: &Cond, req: &Request) -> bool {
    match cond {
        Cond::All(list) => list.iter().all(|c| holds(c, req)),
        Cond::Any(list) => list.iter().any(|c| holds(c, req)),
        Cond::Not(inner) => !matches(inner, req),
        Cond::Leaf(leaf) => leaf_matches(leaf, req) != leaf.negate,
        Cond::Segment(id, inner) => match req.segment(*id) {
            Some(known) => known,
            None => {
                let result = matches(inner, req);
                req.remember_segment(*id, result);
                result
            }
        },
    }
}

fn leaf_matches(leaf: &Leaf, req: &Request) -> bool {
    let value = req.value(&leaf.subject);
    if let Op::Present(want) = leaf.op {
        return value.is_some() == want;
    }
    let Some(value) = value else {
        return false;
    };
    if leaf.ignore_case {
        return match text_matches_ignoring_case(&leaf.op, value) {
            Some(result) => result,
            None => parsed_matches_lowered(leaf, req, value),
        };
    }
    let text = value;
    match &leaf.op {
        Op::Equals(v) => text == v.as_bytes(),
        Op::In(list) => list.iter().any(|v| text == v.as_bytes()),
        Op::Prefix(v) => text.starts_with(v.as_bytes()),
        Op::Suffix(v) => text.ends_with(v.as_bytes()),
        Op::Contains(v) => contains(text, v.as_bytes()),
        Op::Number(..) | Op::Semver(..) | Op::Cidr(_) => parsed_matches(leaf, req, text),
        Op::Present(_) => true,
    }
}

/// The text operators ignoring ASCII case; `None` for the other operators. Operands are
/// lower-cased at compile time: compare without lower-casing (allocating) the request's value.
#[inline(never)]
fn text_matches_ignoring_case(op: &Op, value: &[u8]) -> Option<bool> {
    Some(match op {
        Op::Equals(v) => swar::eq_ignore_ascii_case(value, v.as_bytes()),
        Op::In(list) => list
            .iter()
            .any(|v| swar::eq_ignore_ascii_case(value, v.as_bytes())),
        Op::Prefix(v) => value
            .get(..v.len())
            .is_some_and(|head| swar::eq_ignore_ascii_case(head, v.as_bytes())),
        Op::Suffix(v) => value
            .len()
            .checked_sub(v.len())
            .and_then(|at| value.get(at..))
            .is_some_and(|tail| swar::eq_ignore_ascii_case(tail, v.as_bytes())),
        Op::Contains(v) => contains_ignore_case(value, v.as_bytes()),
        _ => return None,
    })
}

/// `parsed_matches` ignoring ASCII case: on the lower-cased value.
#[inline(never)]
fn parsed_matches_lowered(leaf: &Leaf, req: &Request, value: &[u8]) -> bool {
    if value.iter().any(u8::is_ascii_uppercase) {
        parsed_matches(leaf, req, &value.to_ascii_lowercase())
    } else {
        parsed_matches(leaf, req, value)
    }
}

/// The operators that parse the value first: number, semver, CIDR.
#[inline(never)]
fn parsed_matches(leaf: &Leaf, req: &Request, text: &[u8]) -> bool {
    match &leaf.op {
        Op::Number(cmp, n) => parse_number(text).is_some_and(|x| compare(x.partial_cmp(n), *cmp)),
        Op::Semver(cmp, want) => semver_matches(text, *cmp, want),
        Op::Cidr(nets) => {
            let ip = match leaf.subject {
                Subject::SourceAddress => req.source_ip(),
                _ => std::str::from_utf8(text)
                    .ok()
                    .and_then(|s| parse_socket_ip(s.trim())),
            };
            ip.is_some_and(|ip| nets.iter().any(|n| n.contains(ip)))
        }
        _ => false,
    }
}

#[inline(never)]
fn semver_matches(text: &[u8], cmp: Cmp, want: &Version) -> bool {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| Version::parse(s.trim()).ok())
        .is_some_and(|v| compare(Some(v.cmp(want)), cmp))
}

#[inline(never)]
fn parse_number(text: &[u8]) -> Option<f64> {
    let n: f64 = std::str::from_utf8(text).ok()?.trim().parse().ok()?;
    n.is_finite().then_some(n)
}

fn compare(ord: Option<Ordering>, cmp: Cmp) -> bool {
    let Some(ord) = ord else {
        return false;
    };
    match cmp {
        Cmp::Eq => ord == Ordering::Equal,
        Cmp::Gt => ord == Ordering::Greater,
        Cmp::Gte => ord != Ordering::Less,
        Cmp::Lt => ord == Ordering::Less,
        Cmp::Lte => ord != Ordering::Greater,
    }
}

/// Substring search: candidates for the needle's first byte eight bytes at a time, then the
/// rest compared (no per-window `memcmp` call, which dominated the profile of user-agent checks).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find_from(haystack, needle, 0, |a, b| a == b)
}

/// `contains` for a lower-case needle, ignoring ASCII case in the haystack.
fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    find_from(haystack, needle, 0x20, |a, b| a.to_ascii_lowercase() == b)
}

/// Whether `needle` occurs in `haystack` under `eq`. Candidate starts are the bytes equal to
/// the needle's first byte once both have the bits of `fold` set (0x20 folds ASCII case, and
/// lets some other bytes through): a superset of the real starts, each then checked with `eq`.
fn find_from(haystack: &[u8], needle: &[u8], fold: u8, eq: impl Fn(u8, u8) -> bool) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let Some(last_start) = haystack.len().checked_sub(needle.len()) else {
        return false;
    };
    let found_at = |at: usize| {
        haystack.get(at..at + needle.len()).is_some_and(|window| {
            eq(window[0], first) && window[1..].iter().zip(rest).all(|(a, b)| eq(*a, *b))
        })
    };
    let starts = haystack.get(..=last_start).unwrap_or_default();
    swar::find_map_candidates(starts, first, fold, |at| found_at(at).then_some(())).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_search() {
        assert!(contains(b"Mozilla/5.0 Googlebot", b"bot"));
        assert!(contains(b"bot", b"bot"));
        assert!(contains(b"abc", b""));
        assert!(!contains(b"bo", b"bot"));
        assert!(!contains(b"Bot", b"bot"));
        assert!(contains_ignore_case(b"Mozilla/5.0 GoogleBOT", b"bot"));
        assert!(contains_ignore_case(b"Linux; ANDROID 14", b"android"));
        assert!(!contains_ignore_case(b"iPhone", b"android"));
        assert!(contains_ignore_case(b"", b""));
    }

    #[test]
    fn substring_search_agrees_with_windows_at_every_offset() {
        let text = b"Mozilla/5.0 (Linux; Android 14) AppleWebKit Chrome/131 Mobile BoT Safari@[`{";
        let needles: [&[u8]; 10] = [
            b"bot",
            b"android",
            b"/",
            b"@",
            b"`",
            b"{",
            b"[",
            b"safari@[`{",
            b"m",
            b"x",
        ];
        for start in 0..text.len() {
            for end in start..=text.len() {
                let hay = &text[start..end];
                for needle in needles {
                    let exact = hay.windows(needle.len()).any(|w| w == needle);
                    let folded = hay
                        .windows(needle.len())
                        .any(|w| w.to_ascii_lowercase() == needle);
                    assert_eq!(contains(hay, needle), exact, "{start}..{end} {needle:?}");
                    assert_eq!(
                        contains_ignore_case(hay, needle),
                        folded,
                        "{start}..{end} {needle:?}"
                    );
                }
            }
        }
    }
}
