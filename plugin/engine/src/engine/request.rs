//! The request as the engine sees it: only the facts the plan reads, borrowed
//! from whatever the host handed over. Values are bytes: a header need not be
//! UTF-8, and nothing here may fail on one that is not.
use crate::plan::{Fact, Plan, Subject};
use crate::slots::Slots;
use sluice_primitives::baggage;
use sluice_primitives::cidr::parse_socket_ip;
use sluice_primitives::swar::{find_byte, find_either};
use std::cell::Cell;
use std::net::IpAddr;
use std::ops::Range;

/// The request's headers as the host hands them over.
#[derive(Debug, Clone, Copy)]
pub enum Headers<'a> {
    /// `(lower-case name, value)` pairs, pseudo-headers included, repeats kept.
    Pairs(&'a [(&'a str, &'a [u8])]),
    /// proxy-wasm's serialized header map (`proxy_get_header_map_pairs`), read in place.
    Serialized(&'a [u8]),
}

impl Default for Headers<'_> {
    fn default() -> Self {
        Headers::Pairs(&[])
    }
}

impl<'a> Headers<'a> {
    pub fn for_each(self, mut f: impl FnMut(&'a [u8], &'a [u8])) {
        match self {
            Headers::Pairs(pairs) => pairs.iter().for_each(|(n, v)| f(n.as_bytes(), v)),
            Headers::Serialized(bytes) => crate::header_map::for_each(bytes, f),
        }
    }
}

/// Per header Sluice owns, what the request carries of it. Twelve inline (examples/flags.json
/// owns nine): every inline slot is written per request, and more spill to the heap.
pub type OwnedHeaders<'a> = Slots<OwnedSeen<'a>, 12>;

/// What the request carries of one header Sluice owns: needed to write only real changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnedSeen<'a> {
    pub first: Option<&'a [u8]>,
    pub copies: u32,
}

impl<'a> OwnedSeen<'a> {
    /// One empty slot per header the plan owns, for `Request::read_headers` to fill.
    pub fn slots(plan: &Plan) -> OwnedHeaders<'a> {
        Slots::filled(OwnedSeen::default(), plan.owned_headers.len())
    }
}

#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `plan.headers[i]`'s value (the first, if repeated).
    pub headers: Slots<Option<&'a [u8]>>,
    /// Every `cookie` header (HTTP/2 may split them).
    pub cookies: Slots<&'a [u8], 4>,
    /// `:path`, query included.
    pub path: &'a [u8],
    pub method: &'a [u8],
    pub authority: &'a [u8],
    /// Peer address text as the proxy reports it (`ip:port`).
    pub source: Option<&'a [u8]>,
    /// The proxy's clock, Unix millis (0 when the plan does not read it).
    pub now_ms: i64,
    /// Per-request randomness, for rollouts configured as random.
    pub entropy: u64,
    /// Segments evaluated so far (the first 64 by id): which are known, and their results.
    segments_known: Cell<u64>,
    segments_true: Cell<u64>,
    /// The source address, parsed once.
    source_ip: Cell<Option<Option<IpAddr>>>,
    /// The length of `path` without its query, and the range of `source` without its port,
    /// each found once: a config may test them in many conditions. (Lengths, not slices: a
    /// `Cell` of a slice would make the request invariant in its lifetime.)
    path_only_len: Cell<Option<usize>>,
    source_text: Cell<Option<(usize, usize)>>,
    /// Baggage members the plan reads (`plan.chain.baggage_keys`), values
    /// percent-decoded (see `decode_baggage`).
    pub baggage: Slots<Option<&'a [u8]>, 4>,
    /// Some baggage value is still percent-encoded (until `decode_baggage`). Per request, not
    /// per member: a bit mask left members past the 64th undecoded.
    baggage_encoded: bool,
    /// The incoming decision token (the baggage member `plan.chain.token.member`).
    pub token: Option<&'a [u8]>,
    /// Why the incoming baggage was not read whole, if it was not.
    pub baggage_flaw: Option<BaggageFlaw>,
}

/// What was wrong with the incoming `baggage` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaggageFlaw {
    /// More members than are read.
    TooManyMembers,
    /// A member without `=`, or with an empty key.
    Malformed,
    /// A value read as a fact had a bad `%` escape; it was ignored.
    BadEncoding,
}

impl BaggageFlaw {
    pub const ALL: [BaggageFlaw; 3] = [
        BaggageFlaw::TooManyMembers,
        BaggageFlaw::Malformed,
        BaggageFlaw::BadEncoding,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BaggageFlaw::TooManyMembers => "too_many_members",
            BaggageFlaw::Malformed => "malformed",
            BaggageFlaw::BadEncoding => "bad_encoding",
        }
    }
}

impl Default for Request<'_> {
    fn default() -> Self {
        Request {
            headers: Slots::new(None),
            cookies: Slots::new(&[]),
            path: &[],
            method: &[],
            authority: &[],
            source: None,
            now_ms: 0,
            entropy: 0,
            segments_known: Cell::new(0),
            segments_true: Cell::new(0),
            source_ip: Cell::new(None),
            path_only_len: Cell::new(None),
            source_text: Cell::new(None),
            baggage: Slots::new(None),
            baggage_encoded: false,
            token: None,
            baggage_flaw: None,
        }
    }
}

/// How many segments a request remembers once evaluated (the bits of `segments_known`): a
/// segment with a higher id is evaluated each time it is used.
pub const REMEMBERED_SEGMENTS: usize = 64;

impl<'a> Request<'a> {
    /// A request with no facts yet, one header slot per header the plan reads.
    pub fn for_plan(plan: &Plan) -> Request<'a> {
        Request {
            headers: Slots::filled(None, plan.headers.len()),
            ..Request::default()
        }
    }

    /// Picks the plan's facts out of the request's headers in one pass (names lower-case, as
    /// Envoy delivers them) into a request from [`Request::for_plan`], and notes in `owned` (one
    /// slot per `plan.owned_headers`, from [`OwnedSeen::slots`]) which owned headers the request
    /// carries. It fills a request the caller holds: returning a filled one would copy it (a few
    /// hundred bytes) once more per request.
    #[inline(never)]
    pub fn read_headers(
        &mut self,
        plan: &Plan,
        headers: Headers<'a>,
        owned: &mut OwnedHeaders<'a>,
    ) {
        let req = self;
        headers.for_each(|name, value| {
            let Some(role) = plan.header_roles.get(name) else {
                return;
            };
            match role.fact {
                Fact::Path => req.path = value,
                Fact::Method => req.method = value,
                Fact::Authority => req.authority = value,
                Fact::Cookie => req.cookies.push(value),
                Fact::None => {}
            }
            if let Some(slot) = role.read.and_then(|i| req.headers.get_mut(i)) {
                if slot.is_none() {
                    *slot = Some(value);
                }
            }
            if let Some(seen) = role.owned.and_then(|i| owned.get_mut(i)) {
                seen.copies += 1;
                seen.first.get_or_insert(value);
            }
        });
        req.read_baggage(plan);
    }

    /// Picks the members the plan reads out of the `baggage` header.
    #[inline(never)]
    fn read_baggage(&mut self, plan: &Plan) {
        let keys = &plan.chain.baggage_keys;
        let token = plan.chain.token.as_ref().map(|t| t.member.as_bytes());
        if keys.is_empty() && token.is_none() {
            return;
        }
        let Some(header) = plan
            .baggage_header
            .and_then(|i| self.headers.get(i).copied().flatten())
        else {
            return;
        };
        self.baggage = Slots::filled(None, keys.len());
        let flaw = baggage::for_each_member(header, |member| {
            self.note_member(keys, token, member);
        });
        self.baggage_flaw = flaw.map(|f| match f {
            baggage::Flaw::TooManyMembers => BaggageFlaw::TooManyMembers,
            baggage::Flaw::Malformed => BaggageFlaw::Malformed,
        });
    }

    /// A baggage member: the decision token, or the value of a key the plan reads (the first
    /// of each).
    #[inline(never)]
    fn note_member(&mut self, keys: &[String], token: Option<&[u8]>, member: baggage::Member<'a>) {
        if Some(member.key) == token && self.token.is_none() {
            self.token = Some(member.value);
            return;
        }
        let Some(i) = keys.iter().position(|k| k.as_bytes() == member.key) else {
            return;
        };
        if let Some(slot @ None) = self.baggage.get_mut(i) {
            *slot = Some(member.value);
            self.baggage_encoded |= member.value.contains(&b'%');
        }
    }

    /// Percent-decodes the baggage values that need it into `buffer`; until
    /// then (and if a value's escapes are bad) such a value reads as absent.
    #[inline(never)]
    pub fn decode_baggage(&mut self, buffer: &'a mut Vec<u8>) {
        if !self.baggage_encoded {
            return;
        }
        let ranges = self.decode_escaped_values(buffer);
        let buffer: &'a [u8] = buffer;
        for &(i, start, end) in ranges.iter() {
            if let Some(slot) = self.baggage.get_mut(i) {
                *slot = buffer.get(start..end);
            }
        }
        self.baggage_encoded = false;
    }

    /// Each baggage value with escapes, decoded onto `buffer`: `(value index, start, end)`.
    /// A value whose escapes are bad reads as absent from here on.
    #[inline(never)]
    fn decode_escaped_values(&mut self, buffer: &mut Vec<u8>) -> Slots<(usize, usize, usize), 4> {
        let mut ranges: Slots<(usize, usize, usize), 4> = Slots::new((0, 0, 0));
        let mut scratch = Vec::new();
        for (i, slot) in self.baggage.iter_mut().enumerate() {
            let Some(value) = slot.filter(|v| v.contains(&b'%')) else {
                continue;
            };
            if baggage::percent_decode_into(value, &mut scratch) {
                let start = buffer.len();
                buffer.extend_from_slice(&scratch);
                ranges.push((i, start, buffer.len()));
            } else {
                *slot = None;
                self.baggage_flaw.get_or_insert(BaggageFlaw::BadEncoding);
            }
        }
        ranges
    }

    /// The facts of a request given as header pairs, for callers that only want the facts.
    pub fn from_pairs(plan: &Plan, pairs: &'a [(&'a str, &'a [u8])]) -> Request<'a> {
        let mut req = Request::for_plan(plan);
        req.read_headers(plan, Headers::Pairs(pairs), &mut OwnedSeen::slots(plan));
        req
    }

    /// A segment's result, if this request evaluated it already.
    pub fn segment(&self, id: usize) -> Option<bool> {
        let bit = 1u64.checked_shl(id as u32)?;
        (self.segments_known.get() & bit != 0).then(|| self.segments_true.get() & bit != 0)
    }

    pub fn remember_segment(&self, id: usize, result: bool) {
        // Segments past the 64th are evaluated each time they are used.
        let Some(bit) = 1u64.checked_shl(id as u32) else {
            return;
        };
        self.segments_known.set(self.segments_known.get() | bit);
        if result {
            self.segments_true.set(self.segments_true.get() | bit);
        }
    }

    /// A fact's value, if the request has it. Headers, the commonest facts, are read inline.
    #[inline]
    pub fn value(&self, subject: &Subject) -> Option<&'a [u8]> {
        match subject {
            Subject::Header(i) => self.headers.get(*i).copied().flatten(),
            other => self.parsed_value(other),
        }
    }

    /// `value` of a fact read out of a header (path, cookies, ...) or the peer address.
    fn parsed_value(&self, subject: &Subject) -> Option<&'a [u8]> {
        match subject {
            Subject::Header(i) => self.headers.get(*i).copied().flatten(),
            Subject::Cookie(name) => self.cookie(name),
            Subject::Query(name) => self.query(name),
            Subject::Path => Some(self.path_only()),
            Subject::Method => Some(self.method),
            Subject::Authority => Some(self.authority),
            Subject::SourceAddress => self.source_text(),
            Subject::Baggage(i) => self
                .baggage
                .get(*i)
                .copied()
                .flatten()
                .filter(|v| !(self.baggage_encoded && v.contains(&b'%'))),
        }
    }

    pub fn source_ip(&self) -> Option<IpAddr> {
        if let Some(known) = self.source_ip.get() {
            return known;
        }
        let ip = std::str::from_utf8(self.source?)
            .ok()
            .and_then(parse_socket_ip);
        self.source_ip.set(Some(ip));
        ip
    }

    fn path_only(&self) -> &'a [u8] {
        let len = match self.path_only_len.get() {
            Some(len) => len,
            None => {
                let len = path_only(self.path).len();
                self.path_only_len.set(Some(len));
                len
            }
        };
        self.path.get(..len).unwrap_or_default()
    }

    fn source_text(&self) -> Option<&'a [u8]> {
        let source = self.source?;
        let (start, end) = match self.source_text.get() {
            Some(known) => known,
            None => {
                let span = source_ip_span(source);
                self.source_text.set(Some((span.start, span.end)));
                (span.start, span.end)
            }
        };
        source.get(start..end)
    }

    pub fn cookie(&self, name: &str) -> Option<&'a [u8]> {
        self.cookies
            .iter()
            .find_map(|header| find_cookie(header, name.as_bytes()))
    }

    /// The value of the query parameter `name` in `:path` (empty without `=`).
    #[inline(never)]
    pub fn query(&self, name: &str) -> Option<&'a [u8]> {
        let start = find_byte(self.path, b'?')? + 1;
        let query = self.path.get(start..)?;
        let (mut rest, _) = split_at_byte(query, b'#').unwrap_or((query, &[]));
        // Each `&`-separated pair in turn, the value after its first `=` (empty without one).
        loop {
            let (pair, next) = match split_at_byte(rest, b'&') {
                Some((pair, next)) => (pair, Some(next)),
                None => (rest, None),
            };
            let (k, v) = split_at_byte(pair, b'=').unwrap_or((pair, &[]));
            if k == name.as_bytes() {
                return Some(v);
            }
            rest = next?;
        }
    }
}

fn path_only(path: &[u8]) -> &[u8] {
    let end = find_either(path, b'?', b'#').unwrap_or(path.len());
    &path[..end]
}

/// `ip:port` → `ip`, so a source-address key does not change per connection.
#[inline(never)]
fn source_ip_span(source: &[u8]) -> Range<usize> {
    if source.first() == Some(&b'[') {
        if let Some(end) = find_byte(source, b']') {
            return 1..end;
        }
    }
    // One colon: `ip:port`; none or several (a bare IPv6 address): all of it.
    if let Some(at) = find_byte(source, b':') {
        let rest = source.get(at + 1..).unwrap_or_default();
        if find_byte(rest, b':').is_none() {
            return 0..at;
        }
    }
    0..source.len()
}

/// The value of the first `name=value` part of a `cookie` header whose trimmed name is `name`
/// (value trimmed and unquoted). The header is not split into parts: the name's first byte is
/// searched eight bytes at a time, and a find counts when only whitespace stands between it
/// and the part's start and `=` follows the name. A request may look up several cookies, and
/// browsers send long headers of which it reads a few.
fn find_cookie<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    // A trimmed name before a part's first `=` has neither `=` nor `;`, nor spaces at its ends.
    let edge_space = |b: Option<&u8>| b.is_some_and(u8::is_ascii_whitespace);
    if name.iter().any(|b| *b == b'=' || *b == b';')
        || edge_space(name.first())
        || edge_space(name.last())
    {
        return None;
    }
    // An empty name is a part that starts with `=`.
    let first = name.first().copied().unwrap_or(b'=');
    let mut from = 0;
    let value = loop {
        let at = from + find_byte(header.get(from..)?, first)?;
        from = at + 1;
        let (before, here) = header.split_at_checked(at)?;
        // Most finds are inside a name or value: the byte before them is not `;` or a space.
        let starts_part = before
            .iter()
            .rfind(|b| !b.is_ascii_whitespace())
            .is_none_or(|b| *b == b';');
        if !starts_part {
            continue;
        }
        let value = here
            .strip_prefix(name)
            .map(trim_start)
            .and_then(|after| after.strip_prefix(b"="));
        if let Some(value) = value {
            break value;
        }
    };
    Some(part_value(value))
}

/// A cookie's value from just after its `=`: up to the part's end, trimmed and unquoted.
#[inline(never)]
fn part_value(rest: &[u8]) -> &[u8] {
    let end = find_byte(rest, b';').unwrap_or(rest.len());
    let value = trim(rest.get(..end).unwrap_or_default());
    value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(value)
}

/// The bytes before and after the first `sep`, found eight bytes at a time.
#[inline(never)]
fn split_at_byte(bytes: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let at = find_byte(bytes, sep)?;
    Some((bytes.get(..at)?, bytes.get(at + 1..)?))
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cookies_query_and_source() {
        let mut cookies = Slots::new(&b""[..]);
        cookies.push(&b"a=1; uid=\"u-7\""[..]);
        cookies.push(&b"b=2"[..]);
        let req = Request {
            cookies,
            path: b"/shop/cart?x=1&uid=q9&flag#frag",
            source: Some(b"10.0.0.7:4242"),
            ..Request::default()
        };
        assert_eq!(req.cookie("uid"), Some(&b"u-7"[..]));
        assert_eq!(req.cookie("b"), Some(&b"2"[..]));
        assert_eq!(req.cookie("missing"), None);
        assert_eq!(req.query("uid"), Some(&b"q9"[..]));
        assert_eq!(req.query("flag"), Some(&b""[..]));
        assert_eq!(req.query("nope"), None);
        assert_eq!(req.value(&Subject::Path), Some(&b"/shop/cart"[..]));
        assert_eq!(req.value(&Subject::SourceAddress), Some(&b"10.0.0.7"[..]));
        let text = |source: &'static [u8]| &source[source_ip_span(source)];
        assert_eq!(text(b"[::1]:80"), b"::1");
        assert_eq!(text(b"::1"), b"::1");
        assert_eq!(text(b"203.0.113.7:51234"), b"203.0.113.7");
        assert_eq!(text(b"203.0.113.7"), b"203.0.113.7");
        assert_eq!(text(b"fd00::7"), b"fd00::7");
        assert_eq!(text(b"[fd00::7"), b"[fd00::7");
        assert_eq!(text(b"a:b:"), b"a:b:");
        assert_eq!(text(b":80"), b"");
        assert_eq!(text(b""), b"");
    }

    fn split_once(bytes: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
        let at = bytes.iter().position(|b| *b == sep)?;
        Some((&bytes[..at], &bytes[at + 1..]))
    }

    /// The cookie lookup as first written (split, trim, split at `=`), to check the fast one.
    fn find_cookie_by_splitting<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
        header.split(|b| *b == b';').find_map(|part| {
            let (k, v) = split_once(trim(part), b'=')?;
            (trim(k) == name).then(|| {
                let v = trim(v);
                v.strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(v)
            })
        })
    }

    #[test]
    fn cookie_lookup_agrees_with_splitting_the_header() {
        let headers: [&[u8]; 13] = [
            b"uid=user-00004711; shop_session=s-0f00d; tier=silver",
            b" a = 1 ;a=2;;b;  b=\"q\" ; c==3; d=\"; e=x=y",
            b"uidx=1; xuid=2; uid =3; uid= 4",
            b"=empty; \t tab=\tt\t ;last",
            b"",
            b";;;",
            b"sluice_reviews=0123456789abcdef",
            b"name with space=v; a=b=c",
            b"k=\"\"; q=\"",
            b"x=uid=1; a=tier; tier ;tier\t= gold ; uid=2",
            b"shop=1;shop_session;shop_session =s; sshop_session=t",
            b"\t=lead; ==x; =",
            b"a;b=1; a=2",
        ];
        let names: [&[u8]; 21] = [
            b"a;b",
            b"uid",
            b"shop_session",
            b"tier",
            b"a",
            b"b",
            b"c",
            b"d",
            b"e",
            b"",
            b"tab",
            b"last",
            b"uidx",
            b"xuid",
            b"missing",
            b"name with space",
            b"a=b",
            b" a",
            b"a ",
            b"k",
            b"q",
        ];
        for header in headers {
            for name in names {
                assert_eq!(
                    find_cookie(header, name),
                    find_cookie_by_splitting(header, name),
                    "{:?} in {:?}",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(header)
                );
            }
        }
        assert_eq!(find_cookie(headers[0], b"tier"), Some(&b"silver"[..]));
        assert_eq!(find_cookie(headers[2], b"uid"), Some(&b"3"[..]));
    }
}
