//! W3C Baggage (https://www.w3.org/TR/baggage/): `key=value;prop, key2=value2`,
//! values percent-encoded. Only what Sluice reads: members' keys and decoded
//! values, with limits so a hostile header costs bounded work.

/// Members past this many are not looked at. The W3C limit for propagation is
/// at least 64 members in 8,192 bytes; anything longer is not honoured whole.
pub const MAX_MEMBERS: usize = 64;

/// One list member: its key (trimmed) and raw, still percent-encoded value
/// (trimmed, properties after `;` dropped).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Member<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// Why a baggage header was not read whole.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Flaw {
    /// More than `MAX_MEMBERS` members; the first `MAX_MEMBERS` are read.
    TooManyMembers,
    /// A member without `=` or with an empty key; it is skipped.
    Malformed,
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Calls `each` for every well-formed member, in order, up to `MAX_MEMBERS`;
/// returns the first flaw met, if any.
pub fn for_each_member<'a>(header: &'a [u8], mut each: impl FnMut(Member<'a>)) -> Option<Flaw> {
    let mut flaw = None;
    for (index, raw) in header.split(|&b| b == b',').enumerate() {
        if index == MAX_MEMBERS {
            return Some(Flaw::TooManyMembers);
        }
        let pair = raw.split(|&b| b == b';').next().unwrap_or(raw);
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            if !trim(raw).is_empty() {
                flaw.get_or_insert(Flaw::Malformed);
            }
            continue;
        };
        let key = trim(&pair[..eq]);
        if key.is_empty() {
            flaw.get_or_insert(Flaw::Malformed);
            continue;
        }
        each(Member {
            key,
            value: trim(&pair[eq + 1..]),
        });
    }
    flaw
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `value` into `out`; `false` (and `out` unspecified) on a
/// `%` not followed by two hex digits.
#[inline(never)]
pub fn percent_decode_into(value: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if b == b'%' {
            let (Some(hi), Some(lo)) = (
                value.get(i + 1).copied().and_then(hex),
                value.get(i + 2).copied().and_then(hex),
            ) else {
                return false;
            };
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    true
}

/// Appends `value` percent-encoded for a baggage value: everything outside the
/// W3C `baggage-octet` set (and `%` itself) is escaped.
pub fn percent_encode_into(value: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value {
        let plain =
            matches!(b, 0x21 | 0x23..=0x24 | 0x26..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E);
        if plain {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(header: &str) -> (Vec<(String, String)>, Option<Flaw>) {
        let mut found = Vec::new();
        let flaw = for_each_member(header.as_bytes(), |m| {
            found.push((
                String::from_utf8_lossy(m.key).into_owned(),
                String::from_utf8_lossy(m.value).into_owned(),
            ))
        });
        (found, flaw)
    }

    #[test]
    fn reads_members_with_whitespace_and_properties() {
        let (found, flaw) =
            members(" userId = alice ;prop=1;flag , sluice.beta=on,serverNode=DF%2028");
        assert_eq!(flaw, None);
        assert_eq!(
            found,
            [
                ("userId", "alice"),
                ("sluice.beta", "on"),
                ("serverNode", "DF%2028")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }

    #[test]
    fn malformed_members_are_skipped_and_reported() {
        let (found, flaw) = members("novalue,=anon,ok=1,,");
        assert_eq!(found, [("ok".to_string(), "1".to_string())]);
        assert_eq!(flaw, Some(Flaw::Malformed));
    }

    #[test]
    fn stops_after_the_member_limit() {
        let header: Vec<String> = (0..500).map(|i| format!("k{i}=v")).collect();
        let (found, flaw) = members(&header.join(","));
        assert_eq!(found.len(), MAX_MEMBERS);
        assert_eq!(found.last().map(|m| m.0.as_str()), Some("k63"));
        assert_eq!(flaw, Some(Flaw::TooManyMembers));
        let exactly: Vec<String> = (0..MAX_MEMBERS).map(|i| format!("k{i}=v")).collect();
        assert_eq!(members(&exactly.join(",")).1, None);
    }

    #[test]
    fn percent_decoding_and_its_errors() {
        let mut out = Vec::new();
        assert!(percent_decode_into(b"DF%2028%2c%C3%A9", &mut out));
        assert_eq!(out, "DF 28,é".as_bytes());
        for bad in [&b"%"[..], b"%2", b"%zz", b"a%g1"] {
            assert!(
                !percent_decode_into(bad, &mut out),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn percent_encoding_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255u8).collect();
        let mut encoded = Vec::new();
        percent_encode_into(&all, &mut encoded);
        for delimiter in [b',', b';', b' ', b'"', b'\\'] {
            assert!(
                !encoded.contains(&delimiter),
                "{} left unescaped",
                delimiter as char
            );
        }
        let mut back = Vec::new();
        assert!(percent_decode_into(&encoded, &mut back));
        assert_eq!(back, all);
    }
}
