//! A small strict JSON parser (RFC 8259) and the value tree it produces.
//!
//! Written here rather than taken from serde_json: the config reader and the
//! Unleash payload reader walk this tree by hand, which keeps serde's large
//! monomorphised deserializers out of the .wasm.
//!
//! - Every value keeps its byte offset in the text, so an error can name a
//!   line and column ([`line_column`]).
//! - Object members stay in document order with duplicates visible; each
//!   reader decides what a repeated key means.
//! - Numbers keep serde_json's distinction: a non-negative integer that fits
//!   `u64`, a negative one that fits `i64`, otherwise `f64` (`-0` is a float).
//!   A number too large for `f64` is an error.
//! - Strings: all JSON escapes including `\u` surrogate pairs; control
//!   characters and invalid UTF-8 are errors.
//! - Nesting deeper than [`MAX_DEPTH`] is an error, not a stack overflow.
//!
//! Error reasons use serde_json's wording; the error also carries the path of
//! the value being parsed.
use crate::swar;
use std::borrow::Cow;
use std::fmt;

/// How deep arrays and objects may nest (serde_json's limit too).
pub const MAX_DEPTH: usize = 128;

/// A parsed value. Strings without escapes borrow from the text (`'t`);
/// [`Value::to_static`] makes an owned copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Value<'t> {
    /// Byte offset of the value's first character in the text.
    pub offset: usize,
    pub kind: Kind<'t>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind<'t> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'t, str>),
    Array(Vec<Value<'t>>),
    /// Members in document order; a repeated key appears twice.
    Object(Vec<(Cow<'t, str>, Value<'t>)>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// A non-negative integer.
    U64(u64),
    /// A negative integer.
    I64(i64),
    /// Anything with a fraction or exponent, `-0`, or an integer beyond 64 bits.
    F64(f64),
}

impl<'t> Value<'t> {
    pub fn new(kind: Kind<'t>) -> Value<'t> {
        Value { offset: 0, kind }
    }

    /// A copy that owns all its strings.
    pub fn to_static(&self) -> Value<'static> {
        let owned = |s: &Cow<'t, str>| Cow::Owned(s.to_string());
        let kind = match &self.kind {
            Kind::Null => Kind::Null,
            Kind::Bool(b) => Kind::Bool(*b),
            Kind::Number(n) => Kind::Number(*n),
            Kind::String(s) => Kind::String(owned(s)),
            Kind::Array(items) => Kind::Array(items.iter().map(Value::to_static).collect()),
            Kind::Object(members) => Kind::Object(
                members
                    .iter()
                    .map(|(k, v)| (owned(k), v.to_static()))
                    .collect(),
            ),
        };
        Value {
            offset: self.offset,
            kind,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value<'t>]> {
        match &self.kind {
            Kind::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self.kind {
            Kind::Number(Number::U64(n)) => Some(n),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self.kind {
            Kind::Number(Number::U64(n)) => i64::try_from(n).ok(),
            Kind::Number(Number::I64(n)) => Some(n),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self.kind {
            Kind::Number(n) => Some(n.as_f64()),
            _ => None,
        }
    }

    /// The last member named `key` (as `JSON.parse` keeps it).
    pub fn get(&self, key: &str) -> Option<&Value<'t>> {
        match &self.kind {
            Kind::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Number::U64(n) => n as f64,
            Number::I64(n) => n as f64,
            Number::F64(f) => f,
        }
    }
}

/// Numbers as serde_json writes them: integers as they are, floats in the
/// shortest form that reads back to the same value, with `.0` or an exponent
/// (`1.0`, `0.00001`, `1e+16`, `1.5e-7`).
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Number::U64(n) => write!(f, "{n}"),
            Number::I64(n) => write!(f, "{n}"),
            Number::F64(x) => write_float(f, x),
        }
    }
}

#[inline(never)]
fn write_float(f: &mut fmt::Formatter<'_>, x: f64) -> fmt::Result {
    if !x.is_finite() {
        return f.write_str("null");
    }
    if x.is_sign_negative() {
        f.write_str("-")?;
    }
    if x == 0.0 {
        return f.write_str("0.0");
    }
    // The shortest digits that read back as `x` and the exponent of the first: 1.5e-7 is
    // ("15", -7).
    let digits = crate::float_text::shortest(x);
    write_digits(f, digits.as_str(), digits.exponent())
}

/// `digits` with the point after the first digit moved by `exp`, laid out as serde_json does.
#[inline(never)]
fn write_digits(f: &mut fmt::Formatter<'_>, digits: &str, exp: i32) -> fmt::Result {
    let len = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let zeros = |f: &mut fmt::Formatter<'_>, n: i32| {
        crate::float_text::write_zeros(f, usize::try_from(n).unwrap_or(0))
    };
    if (-5..=15).contains(&exp) {
        if len - 1 <= exp {
            f.write_str(digits)?;
            zeros(f, exp - (len - 1))?;
            f.write_str(".0")
        } else if exp >= 0 {
            let (int, frac) = digits.split_at(usize::try_from(exp + 1).unwrap_or(0));
            write!(f, "{int}.{frac}")
        } else {
            f.write_str("0.")?;
            zeros(f, -exp - 1)?;
            f.write_str(digits)
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let point = if rest.is_empty() { "" } else { "." };
        let sign = if exp < 0 { '-' } else { '+' };
        write!(f, "{first}{point}{rest}e{sign}{}", exp.unsigned_abs())
    }
}

/// Compact JSON, as serde_json's `Value` writes it: object keys sorted, a
/// repeated key written once with its last value.
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Null => f.write_str("null"),
            Kind::Bool(b) => write!(f, "{b}"),
            Kind::Number(n) => write!(f, "{n}"),
            Kind::String(s) => write_string(f, s),
            Kind::Array(items) => write_array(f, items),
            Kind::Object(members) => write_object(f, members),
        }
    }
}

#[inline(never)]
fn write_array(f: &mut fmt::Formatter<'_>, items: &[Value<'_>]) -> fmt::Result {
    f.write_str("[")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{item}")?;
    }
    f.write_str("]")
}

#[inline(never)]
fn sorted_members<'a, 't>(
    members: &'a [(Cow<'t, str>, Value<'t>)],
) -> Vec<&'a (Cow<'t, str>, Value<'t>)> {
    let mut order: Vec<&(Cow<'_, str>, Value<'_>)> = members.iter().collect();
    crate::order::sort_by(&mut order, |a, b| a.0.cmp(&b.0));
    order
}

/// serde_json's map: keys sorted, a repeated key's last value.
#[inline(never)]
fn write_object(f: &mut fmt::Formatter<'_>, members: &[(Cow<'_, str>, Value<'_>)]) -> fmt::Result {
    let order = sorted_members(members);
    f.write_str("{")?;
    let mut first = true;
    for (i, (key, value)) in order.iter().map(|m| (&m.0, &m.1)).enumerate() {
        if order.get(i + 1).is_some_and(|next| next.0 == *key) {
            continue;
        }
        if !first {
            f.write_str(",")?;
        }
        first = false;
        write_string(f, key)?;
        write!(f, ":{value}")?;
    }
    f.write_str("}")
}

fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        f.write_str(s.get(start..i).unwrap_or(""))?;
        if escape.is_empty() {
            write!(f, "\\u{:04x}", c as u32)?;
        } else {
            f.write_str(escape)?;
        }
        start = i + c.len_utf8();
    }
    f.write_str(s.get(start..).unwrap_or(""))?;
    f.write_str("\"")
}

/// Where a value sits in a document: `flags.checkout.rules[1]`. Built on the
/// stack while reading, rendered only when an error needs it.
#[derive(Clone, Copy)]
pub enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    pub fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    pub fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }

    /// The path; the root is the empty string.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Key(parent, key) => {
                parent.render_into(out);
                push_key(out, key);
            }
            Path::Index(parent, index) => {
                parent.render_into(out);
                push_index(out, *index);
            }
        }
    }
}

/// The rendered path, for messages that take any `Display` (compile's checks).
impl core::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.render())
    }
}

fn push_key(out: &mut String, key: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(key);
}

fn push_index(out: &mut String, index: usize) {
    out.push('[');
    out.push_str(&index.to_string());
    out.push(']');
}

/// A syntax error: where (byte offset and path of the value being read) and
/// why, in serde_json's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub offset: usize,
    pub reason: &'static str,
    /// Innermost segment first; see [`Error::path`].
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl Error {
    /// The path of the value being parsed (empty at the top level).
    pub fn path(&self) -> String {
        let mut out = String::new();
        for segment in self.segments.iter().rev() {
            match segment {
                Segment::Key(key) => push_key(&mut out, key),
                Segment::Index(i) => push_index(&mut out, *i),
            }
        }
        out
    }

    /// Whether the text ended too early.
    pub fn is_eof(&self) -> bool {
        self.reason.starts_with("EOF")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path();
        if !path.is_empty() {
            write!(f, "{path}: ")?;
        }
        f.write_str(self.reason)
    }
}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &[u8], offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = 1 + before.iter().filter(|b| **b == b'\n').count();
    let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    (line, column)
}

/// Parses one JSON document (surrounding whitespace allowed).
pub fn parse(text: &[u8]) -> Result<Value<'_>, Error> {
    let source = match std::str::from_utf8(text) {
        Ok(source) => source,
        Err(e) => {
            return Err(Error {
                offset: e.valid_up_to(),
                reason: "invalid unicode code point",
                segments: Vec::new(),
            })
        }
    };
    let mut p = Parser {
        text,
        source,
        pos: 0,
        depth: 0,
    };
    let value = p.value().map_err(|e| *e)?;
    p.skip_whitespace();
    if p.pos < text.len() {
        return Err(*p.error("trailing characters"));
    }
    Ok(value)
}

/// A syntax error inside the parser: boxed, so every `?` on the way out moves one pointer.
type Fail = Box<Error>;

struct Parser<'t> {
    text: &'t [u8],
    /// The same text, known to be UTF-8.
    source: &'t str,
    pos: usize,
    depth: usize,
}

impl<'t> Parser<'t> {
    fn error(&self, reason: &'static str) -> Fail {
        self.error_at(self.pos, reason)
    }

    // Out of line: one call at each of the parser's many error sites instead of the fields.
    #[cold]
    #[inline(never)]
    fn error_at(&self, offset: usize, reason: &'static str) -> Fail {
        Box::new(Error {
            offset,
            reason,
            segments: Vec::new(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Value<'t>, Fail> {
        self.skip_whitespace();
        let offset = self.pos;
        let kind = match self.peek() {
            None => return Err(self.error("EOF while parsing a value")),
            Some(b'n') => self.word(b"null", Kind::Null)?,
            Some(b't') => self.word(b"true", Kind::Bool(true))?,
            Some(b'f') => self.word(b"false", Kind::Bool(false))?,
            Some(b'"') => Kind::String(self.string()?),
            Some(b'-' | b'0'..=b'9') => Kind::Number(self.number()?),
            Some(b'[') => self.nested(Parser::array)?,
            Some(b'{') => self.nested(Parser::object)?,
            Some(_) => return Err(self.error("expected value")),
        };
        Ok(Value { offset, kind })
    }

    #[inline(never)]
    fn word(&mut self, word: &[u8], kind: Kind<'t>) -> Result<Kind<'t>, Fail> {
        for expected in word {
            match self.peek() {
                None => return Err(self.error("EOF while parsing a value")),
                Some(b) if b == *expected => self.pos += 1,
                Some(_) => return Err(self.error("expected ident")),
            }
        }
        Ok(kind)
    }

    fn nested(&mut self, read: fn(&mut Self) -> Result<Kind<'t>, Fail>) -> Result<Kind<'t>, Fail> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error("recursion limit exceeded"));
        }
        self.depth += 1;
        self.pos += 1;
        let kind = read(self);
        self.depth -= 1;
        kind
    }

    /// After `[`.
    #[inline(never)]
    fn array(&mut self) -> Result<Kind<'t>, Fail> {
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Kind::Array(items));
        }
        loop {
            match self.value() {
                Ok(item) => items.push(item),
                Err(mut e) => {
                    e.segments.push(Segment::Index(items.len()));
                    return Err(e);
                }
            }
            if self.item_end(b']', "EOF while parsing a list", "expected `,` or `]`")? {
                return Ok(Kind::Array(items));
            }
        }
    }

    /// After an array item or object member: `true` at the closing byte, `false` after a `,`
    /// that another item follows.
    #[inline(always)]
    fn item_end(
        &mut self,
        close: u8,
        eof: &'static str,
        expected: &'static str,
    ) -> Result<bool, Fail> {
        self.skip_whitespace();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.skip_whitespace();
                if self.peek() == Some(close) {
                    return Err(self.error("trailing comma"));
                }
                Ok(false)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(true)
            }
            None => Err(self.error(eof)),
            Some(_) => Err(self.error(expected)),
        }
    }

    /// After `{`.
    #[inline(never)]
    fn object(&mut self) -> Result<Kind<'t>, Fail> {
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Kind::Object(members));
        }
        loop {
            let key = self.member_key()?;
            match self.value() {
                Ok(value) => members.push((key, value)),
                Err(mut e) => {
                    e.segments.push(Segment::Key(key.into_owned()));
                    return Err(e);
                }
            }
            if self.item_end(b'}', "EOF while parsing an object", "expected `,` or `}`")? {
                return Ok(Kind::Object(members));
            }
        }
    }

    /// An object member's key and its `:`.
    #[inline(never)]
    fn member_key(&mut self) -> Result<Cow<'t, str>, Fail> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'"') => {}
            None => return Err(self.error("EOF while parsing an object")),
            Some(_) => return Err(self.error("key must be a string")),
        }
        let key = self.string()?;
        self.skip_whitespace();
        match self.peek() {
            Some(b':') => self.pos += 1,
            None => return Err(self.error("EOF while parsing an object")),
            Some(_) => return Err(self.error("expected `:`")),
        }
        Ok(key)
    }

    /// At `"`. A string without escapes borrows from the text.
    fn string(&mut self) -> Result<Cow<'t, str>, Fail> {
        self.pos += 1;
        let start = self.pos;
        self.skip_plain();
        if self.peek() == Some(b'"') {
            let s = self.source.get(start..self.pos).unwrap_or_default();
            self.pos += 1;
            return Ok(Cow::Borrowed(s));
        }
        self.escaped_string(start)
    }

    /// The rest of a string that has escapes (or is malformed), from its first stop; `start`
    /// is where its text began.
    #[inline(never)]
    fn escaped_string(&mut self, start: usize) -> Result<Cow<'t, str>, Fail> {
        let mut out = String::from(self.source.get(start..self.pos).unwrap_or_default());
        loop {
            match self.peek() {
                None => return Err(self.error("EOF while parsing a string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => self.escape_and_run(&mut out)?,
                Some(_) => {
                    return Err(self
                        .error("control character (\\u0000-\\u001F) found while parsing a string"))
                }
            }
        }
    }

    /// At `\`: the escaped character and the plain run after it, onto `out`.
    #[inline(never)]
    fn escape_and_run(&mut self, out: &mut String) -> Result<(), Fail> {
        self.pos += 1;
        let c = self.escape()?;
        out.push(c);
        let run = self.pos;
        self.skip_plain();
        out.push_str(self.source.get(run..self.pos).unwrap_or_default());
        Ok(())
    }

    /// Past the characters that stand for themselves in a string. Stops at
    /// ASCII bytes only, so runs are whole UTF-8 characters.
    fn skip_plain(&mut self) {
        let rest = self.text.get(self.pos..).unwrap_or_default();
        // Eight bytes per step: strings are most of a config's bytes, and a byte loop
        // cost ~15 wasm instructions per byte of every key and value.
        self.pos += swar::position(rest, string_stops, |b| b == b'"' || b == b'\\' || b < 0x20)
            .unwrap_or(rest.len());
    }

    /// After `\`.
    #[inline(never)]
    fn escape(&mut self) -> Result<char, Fail> {
        let Some(b) = self.peek() else {
            return Err(self.error("EOF while parsing a string"));
        };
        self.pos += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                let code = match first {
                    0xDC00..=0xDFFF => {
                        return Err(self.error("lone leading surrogate in hex escape"))
                    }
                    0xD800..=0xDBFF => {
                        if self.peek() != Some(b'\\') {
                            return Err(self.error("unexpected end of hex escape"));
                        }
                        self.pos += 1;
                        if self.peek() != Some(b'u') {
                            return Err(self.error("unexpected end of hex escape"));
                        }
                        self.pos += 1;
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(self.error("lone leading surrogate in hex escape"));
                        }
                        0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                    }
                    other => other,
                };
                return char::from_u32(code)
                    .ok_or_else(|| self.error("invalid unicode code point"));
            }
            _ => return Err(self.error("invalid escape")),
        };
        Ok(c)
    }

    fn hex4(&mut self) -> Result<u32, Fail> {
        let mut n = 0;
        for _ in 0..4 {
            let digit = match self.peek() {
                None => return Err(self.error("EOF while parsing a string")),
                Some(b) => char::from(b).to_digit(16),
            };
            let Some(digit) = digit else {
                return Err(self.error("invalid escape"));
            };
            n = n * 16 + digit;
            self.pos += 1;
        }
        Ok(n)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    #[inline(never)]
    fn number(&mut self) -> Result<Number, Fail> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.error("invalid number"));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            None => return Err(self.error("EOF while parsing a value")),
            Some(_) => return Err(self.error("invalid number")),
        }
        let int_end = self.pos;
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
            float = true;
        }
        if !float {
            let int = self.text.get(int_start..int_end).unwrap_or_default();
            let magnitude = int.iter().try_fold(0u64, |n, d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            });
            match (negative, magnitude) {
                (false, Some(n)) => return Ok(Number::U64(n)),
                (true, Some(n)) if n > 0 => {
                    if let Some(neg) = 0i64.checked_sub_unsigned(n) {
                        return Ok(Number::I64(neg));
                    }
                }
                _ => {}
            }
        }
        let text = self.source.get(start..self.pos).unwrap_or_default();
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Number::F64(f)),
            _ => Err(self.error_at(start, "number out of range")),
        }
    }
}

/// The lanes of `word` that end a run of plain string characters: `"`, `\\` or a control
/// character (see `swar`: the lowest mark is exact; UTF-8 bytes, 0x80 and above, are never
/// marked).
fn string_stops(word: u64) -> u64 {
    swar::zero_lanes(word ^ swar::splat(b'"'))
        | swar::zero_lanes(word ^ swar::splat(b'\\'))
        | swar::lanes_below(word, 0x20)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Value<'_> {
        parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(text: &str) -> String {
        parse(text.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn scalars_and_numbers() {
        assert_eq!(ok("null").kind, Kind::Null);
        assert_eq!(ok(" true ").kind, Kind::Bool(true));
        assert_eq!(ok("0").kind, Kind::Number(Number::U64(0)));
        assert_eq!(ok("-5").kind, Kind::Number(Number::I64(-5)));
        assert_eq!(ok("-0").kind, Kind::Number(Number::F64(-0.0)));
        assert_eq!(ok("1.5e2").kind, Kind::Number(Number::F64(150.0)));
        assert_eq!(
            ok("18446744073709551615").kind,
            Kind::Number(Number::U64(u64::MAX))
        );
        assert_eq!(
            ok("18446744073709551616").kind,
            Kind::Number(Number::F64(18446744073709551616.0))
        );
        assert_eq!(
            ok("-9223372036854775808").kind,
            Kind::Number(Number::I64(i64::MIN))
        );
        assert_eq!(ok("1e-400").as_f64(), Some(0.0));
        assert_eq!(err("1e309"), "number out of range");
        for bad in ["01", "1.", "-", "1e", "+1", ".5", "1.e3"] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_print_like_serde_json() {
        let cases = [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (-0.0, "-0.0"),
            (100.0, "100.0"),
            (0.001, "0.001"),
            (0.0001, "0.0001"),
            (0.00001, "0.00001"),
            (0.000001, "1e-6"),
            (1.5e-7, "1.5e-7"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.8446744073709552e19, "1.8446744073709552e+19"),
            (1.25e122, "1.25e+122"),
            (1.5e-300, "1.5e-300"),
            (123456.789, "123456.789"),
        ];
        for (x, text) in cases {
            assert_eq!(Number::F64(x).to_string(), text);
        }
        assert_eq!(Number::I64(-3).to_string(), "-3");
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            ok(r#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00 é""#).as_str(),
            Some("a\"\\/\u{8}\u{c}\n\r\té😀 é")
        );
        assert_eq!(err(r#""\ud800""#), "unexpected end of hex escape");
        assert_eq!(
            err(r#""\ud800\u0041""#),
            "lone leading surrogate in hex escape"
        );
        assert_eq!(err(r#""\udc00""#), "lone leading surrogate in hex escape");
        assert_eq!(err(r#""\x""#), "invalid escape");
        assert_eq!(err(r#""\u12g4""#), "invalid escape");
        assert_eq!(
            err("\"a\nb\""),
            "control character (\\u0000-\\u001F) found while parsing a string"
        );
        assert_eq!(
            parse(b"\"\xff\"").unwrap_err().reason,
            "invalid unicode code point"
        );
        assert_eq!(err("\"abc"), "EOF while parsing a string");
    }

    #[test]
    fn structure_order_duplicates_and_offsets() {
        let v = ok(r#"{"b": 1, "a": [true, {"x": null}], "b": 2}"#);
        let Kind::Object(members) = &v.kind else {
            panic!("object")
        };
        let keys: Vec<&str> = members.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["b", "a", "b"]);
        assert_eq!(v.get("b").and_then(Value::as_u64), Some(2));
        assert_eq!(members[1].1.offset, 14);
        assert_eq!(line_column(b"{\n  \"a\": 1}", 9), (2, 8));
        assert_eq!(v.to_string(), r#"{"a":[true,{"x":null}],"b":2}"#);
        assert_eq!(
            Value::new(Kind::String("q\"\u{1}\n".into())).to_string(),
            r#""q\"\u0001\n""#
        );
    }

    #[test]
    fn syntax_errors_name_the_path() {
        assert_eq!(
            err(r#"{"a": [1, 2, {"b": tru}]}"#),
            "a[2].b: expected ident"
        );
        assert_eq!(err(r#"{"a": 1,"#), "EOF while parsing an object");
        assert_eq!(err(r#"{"a": 1 "b": 2}"#), "expected `,` or `}`");
        assert_eq!(err(r#"{"a": [1,]}"#), "a: trailing comma");
        assert_eq!(err(r#"{"a": 1,}"#), "trailing comma");
        assert_eq!(err(r#"{1: 2}"#), "key must be a string");
        assert_eq!(err("[1] x"), "trailing characters");
        assert_eq!(err(""), "EOF while parsing a value");
        assert!(parse(b"").unwrap_err().is_eof());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(err(&deep).ends_with("recursion limit exceeded"));
        let ok_depth = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok_depth.as_bytes()).is_ok());
        let too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse(too_deep.as_bytes()).is_err());
    }
}
