//! The decision token: what the first Sluice on a request's path decided,
//! signed so that every later one can keep it without trusting the client.
//!
//! Text form: `base64url(body) "." base64url(tag)`, where tag is the first 16
//! bytes of HMAC-SHA256(key, body). The body is binary, every length bounded:
//!
//! | bytes | field |
//! | --- | --- |
//! | 1 | format version (1) |
//! | 1 + n | key id length, key id (which key signed) |
//! | 4 | expiry, Unix seconds, big-endian |
//! | 4 | config revision: murmur3 of the revision text |
//! | 8 | subject: the first 8 bytes of SHA-256 of the user key (zeros: none) |
//! | … | decisions: kind (`f` flag, `r` route, `R` release), name length, name, value length, value |
use sluice_primitives::base64url;
use sluice_primitives::sha256::{sha256, HmacKey};

const FORMAT: u8 = 1;
const TAG_BYTES: usize = 16;

/// What a decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Flag,
    Route,
    Release,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Flag => b'f',
            Kind::Route => b'r',
            Kind::Release => b'R',
        }
    }

    fn of(byte: u8) -> Option<Kind> {
        match byte {
            b'f' => Some(Kind::Flag),
            b'r' => Some(Kind::Route),
            b'R' => Some(Kind::Release),
            _ => None,
        }
    }
}

/// Why a token was not honoured; each is counted as
/// `sluice.decisions.rejected.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    TooLong,
    Malformed,
    UnknownKey,
    Signature,
    Expired,
    Revision,
    Subject,
}

impl Rejection {
    pub const ALL: [Rejection; 7] = [
        Rejection::TooLong,
        Rejection::Malformed,
        Rejection::UnknownKey,
        Rejection::Signature,
        Rejection::Expired,
        Rejection::Revision,
        Rejection::Subject,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rejection::TooLong => "too_long",
            Rejection::Malformed => "malformed",
            Rejection::UnknownKey => "unknown_key",
            Rejection::Signature => "signature",
            Rejection::Expired => "expired",
            Rejection::Revision => "revision",
            Rejection::Subject => "subject",
        }
    }
}

/// A token's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    pub expires_s: u32,
    pub revision: u32,
    pub subject: [u8; 8],
    pub decisions: Vec<(Kind, String, String)>,
}

impl Claims {
    pub fn get(&self, kind: Kind, name: &str) -> Option<&str> {
        self.decisions
            .iter()
            .find(|(k, n, _)| *k == kind && n == name)
            .map(|(_, _, v)| v.as_str())
    }
}

/// The subject field for a user key.
#[inline(never)]
pub fn subject_of(key: Option<&[u8]>) -> [u8; 8] {
    let mut out = [0u8; 8];
    if let Some(key) = key {
        out.copy_from_slice(&sha256(key)[..8]);
    }
    out
}

/// The revision field for a config revision's text.
pub fn revision_of(revision: &str) -> u32 {
    sluice_primitives::murmur3_x86_32(revision.as_bytes(), 0)
}

/// Appends the signed token for `claims` to `out`. Names and values longer than
/// 255 bytes cannot occur: compile limits them.
#[inline(never)]
pub fn sign_into(claims: &Claims, key_id: &str, key: &HmacKey, out: &mut String) {
    let body = body_of(claims, key_id);
    let tag = key.sign(&body);
    let mut text = Vec::with_capacity(body.len() * 4 / 3 + 32);
    base64url::encode_into(&body, &mut text);
    text.push(b'.');
    base64url::encode_into(&tag[..TAG_BYTES], &mut text);
    // base64url and `.` are ASCII.
    out.push_str(std::str::from_utf8(&text).unwrap_or_default());
}

/// The token body (signed, then encoded) for `claims` under `key_id`.
#[inline(never)]
fn body_of(claims: &Claims, key_id: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(32 + claims.decisions.len() * 16);
    body.push(FORMAT);
    push_short(&mut body, key_id.as_bytes());
    body.extend_from_slice(&claims.expires_s.to_be_bytes());
    body.extend_from_slice(&claims.revision.to_be_bytes());
    body.extend_from_slice(&claims.subject);
    for (kind, name, value) in &claims.decisions {
        body.push(kind.byte());
        push_short(&mut body, name.as_bytes());
        push_short(&mut body, value.as_bytes());
    }
    body
}

fn push_short(body: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len().min(255);
    body.push(len as u8);
    body.extend_from_slice(&bytes[..len]);
}

/// Reads and verifies a token: its length, form, key, signature, expiry and
/// revision (`revisions`: the ones still honoured). The subject is the
/// caller's to compare: only it knows the request's user key.
#[inline(never)]
pub fn verify(
    text: &[u8],
    max_bytes: usize,
    keys: &[(String, HmacKey)],
    now_s: u32,
    revisions: &[u32],
) -> Result<Claims, Rejection> {
    if text.len() > max_bytes {
        return Err(Rejection::TooLong);
    }
    let (body, tag) = decode_parts(text).ok_or(Rejection::Malformed)?;
    let mut r = Reader { body: &body, at: 0 };
    if r.byte()? != FORMAT {
        return Err(Rejection::Malformed);
    }
    let key_id = r.short()?;
    let expires_s = r.u32()?;
    let revision = r.u32()?;
    let mut subject = [0u8; 8];
    subject.copy_from_slice(r.take(8)?);
    // The signature is checked before the decisions are parsed further: a
    // forged body costs one HMAC, never more work.
    let key = keys
        .iter()
        .find(|(id, _)| id.as_bytes() == key_id)
        .ok_or(Rejection::UnknownKey)?;
    if !key.1.verify(&body, &tag) {
        return Err(Rejection::Signature);
    }
    let decisions = read_decisions(&mut r)?;
    if now_s >= expires_s {
        return Err(Rejection::Expired);
    }
    if !revisions.contains(&revision) {
        return Err(Rejection::Revision);
    }
    Ok(Claims {
        expires_s,
        revision,
        subject,
        decisions,
    })
}

/// A token's body and tag, base64url-decoded; `None` when malformed.
#[inline(never)]
fn decode_parts(text: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let dot = text.iter().position(|&b| b == b'.')?;
    let body = base64url::decode(&text[..dot])?;
    let tag = base64url::decode(&text[dot + 1..])?;
    (tag.len() == TAG_BYTES).then_some((body, tag))
}

/// The decisions that fill the rest of a token's body.
#[inline(never)]
fn read_decisions(r: &mut Reader) -> Result<Vec<(Kind, String, String)>, Rejection> {
    let mut decisions = Vec::new();
    while r.at < r.body.len() {
        let kind = Kind::of(r.byte()?).ok_or(Rejection::Malformed)?;
        let name = text_of(r.short()?)?;
        let value = text_of(r.short()?)?;
        decisions.push((kind, name, value));
    }
    Ok(decisions)
}

fn text_of(bytes: &[u8]) -> Result<String, Rejection> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Rejection::Malformed)
}

struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Rejection> {
        let bytes = self
            .body
            .get(self.at..self.at + n)
            .ok_or(Rejection::Malformed)?;
        self.at += n;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, Rejection> {
        Ok(self.take(1)?[0])
    }

    fn short(&mut self) -> Result<&'a [u8], Rejection> {
        let len = self.byte()? as usize;
        self.take(len)
    }

    fn u32(&mut self) -> Result<u32, Rejection> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<(String, HmacKey)> {
        vec![
            ("k2".to_string(), HmacKey::new(b"new secret")),
            ("k1".to_string(), HmacKey::new(b"old secret")),
        ]
    }

    fn claims() -> Claims {
        Claims {
            expires_s: 2_000,
            revision: revision_of("r7"),
            subject: subject_of(Some(b"alice")),
            decisions: vec![
                (Kind::Flag, "checkout".into(), "on".into()),
                (Kind::Route, "cart".into(), "v2".into()),
                (Kind::Release, "checkout-2".into(), "in".into()),
            ],
        }
    }

    fn signed(key: usize) -> String {
        let keys = keys();
        let mut out = String::new();
        sign_into(&claims(), &keys[key].0, &keys[key].1, &mut out);
        out
    }

    #[test]
    fn a_signed_token_reads_back_under_either_key() {
        let revisions = [revision_of("r7")];
        for key in 0..2 {
            let token = signed(key);
            assert!(token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
            let read = verify(token.as_bytes(), 4096, &keys(), 1_000, &revisions);
            assert_eq!(read, Ok(claims()));
        }
        assert_eq!(claims().get(Kind::Route, "cart"), Some("v2"));
        assert_eq!(claims().get(Kind::Flag, "cart"), None);
    }

    #[test]
    fn every_rejection_has_its_reason() {
        let token = signed(0);
        let rev = [revision_of("r7")];
        let check = |text: &[u8], keys: &[(String, HmacKey)], now: u32, revs: &[u32]| {
            verify(text, 4096, keys, now, revs)
        };
        assert_eq!(
            verify(token.as_bytes(), token.len() - 1, &keys(), 1_000, &rev),
            Err(Rejection::TooLong)
        );
        assert_eq!(
            check(b"no-dot", &keys(), 1_000, &rev),
            Err(Rejection::Malformed)
        );
        assert_eq!(
            check(b"!!.AAAA", &keys(), 1_000, &rev),
            Err(Rejection::Malformed)
        );
        assert_eq!(
            check(b"AQ.AAAA", &keys(), 1_000, &rev),
            Err(Rejection::Malformed)
        );
        let only_old = &keys()[1..];
        assert_eq!(
            check(token.as_bytes(), only_old, 1_000, &rev),
            Err(Rejection::UnknownKey)
        );
        let wrong_secret = vec![("k2".to_string(), HmacKey::new(b"guess"))];
        assert_eq!(
            check(token.as_bytes(), &wrong_secret, 1_000, &rev),
            Err(Rejection::Signature)
        );
        assert_eq!(
            check(token.as_bytes(), &keys(), 2_000, &rev),
            Err(Rejection::Expired)
        );
        assert_eq!(
            check(token.as_bytes(), &keys(), 1_000, &[revision_of("r8")]),
            Err(Rejection::Revision)
        );
    }

    #[test]
    fn changing_any_body_byte_breaks_the_signature() {
        let token = signed(0);
        let (body, tag) = token.split_once('.').unwrap();
        let body = base64url::decode(body.as_bytes()).unwrap();
        for i in 0..body.len() {
            let mut forged = body.clone();
            forged[i] ^= 0x01;
            let text = format!("{}.{tag}", base64url::encode(&forged));
            let got = verify(text.as_bytes(), 4096, &keys(), 1_000, &[revision_of("r7")]);
            assert!(got.is_err(), "byte {i} changed and still accepted");
        }
    }

    #[test]
    fn truncated_tokens_are_malformed_or_forged_never_accepted() {
        let token = signed(0);
        for end in 0..token.len() {
            let got = verify(
                &token.as_bytes()[..end],
                4096,
                &keys(),
                1_000,
                &[revision_of("r7")],
            );
            assert!(got.is_err(), "prefix of {end} bytes accepted");
        }
    }
}
