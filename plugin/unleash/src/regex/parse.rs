//! Pattern -> tree, accepting exactly the patterns regex-lite 0.1 accepts: the same
//! grammar, the same quirks (`a{ 2 }` is a repetition, `\<` a word start, `[[:alnum:]x]`
//! a union, `(?i)[\x41-Z]` an error). One function per construct.

use sluice_primitives::names::NameIndex;

use super::class::{self, Ranges};
use super::node::{Kind, Look, Node, NEST_LIMIT};
use super::Error;

/// Inline flags. `U` (swap greed) is accepted but changes no `is_match` result.
#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    case_insensitive: bool,
    multi_line: bool,
    dot_matches_new_line: bool,
    crlf: bool,
    ignore_whitespace: bool,
}

struct Parser<'p> {
    pattern: &'p str,
    /// Byte offset of the current char.
    pos: usize,
    flags: Flags,
    /// Groups open around the current position.
    depth: u8,
    /// Capture groups seen so far (the index of the last one).
    groups: u32,
    /// Capture-group names seen, to reject duplicates.
    names: NameIndex<'p>,
}

/// Parses `pattern`; `case_insensitive` starts it as if under `(?i)`.
pub(super) fn parse(pattern: &str, case_insensitive: bool) -> Result<Node, Error> {
    let flags = Flags {
        case_insensitive,
        ..Flags::default()
    };
    let mut parser = Parser {
        pattern,
        pos: 0,
        flags,
        depth: 0,
        groups: 0,
        names: NameIndex::default(),
    };
    let node = parser.alternation()?;
    if node.is_too_deep() {
        return Error::at("nesting deeper than 50", 0);
    }
    Ok(node)
}

/// The cursor: regex-lite's exact stepping rules, whitespace and `#` comments included.
impl Parser<'_> {
    fn current(&self) -> Option<char> {
        self.pattern.get(self.pos..)?.chars().next()
    }

    fn at(&self, c: char) -> bool {
        self.current() == Some(c)
    }

    fn is_done(&self) -> bool {
        self.pos >= self.pattern.len()
    }

    /// Steps past the current char; false when that reaches the end.
    fn bump(&mut self) -> bool {
        if let Some(c) = self.current() {
            self.pos += c.len_utf8();
        }
        !self.is_done()
    }

    fn bump_if(&mut self, prefix: &str) -> bool {
        let found = self
            .pattern
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(prefix));
        if found {
            self.pos += prefix.len();
        }
        found
    }

    /// Under `x`, skips whitespace and `#` comments (to the end of the line).
    fn bump_space(&mut self) {
        if !self.flags.ignore_whitespace {
            return;
        }
        while let Some(c) = self.current() {
            if c.is_whitespace() {
                self.bump();
            } else if c == '#' {
                self.bump();
                while let Some(c) = self.current() {
                    self.bump();
                    if c == '\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
    }

    fn bump_and_bump_space(&mut self) -> bool {
        if !self.bump() {
            return false;
        }
        self.bump_space();
        !self.is_done()
    }

    fn rest_after_current(&self) -> &str {
        let len = self.current().map_or(0, char::len_utf8);
        self.pattern.get(self.pos + len..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest_after_current().chars().next()
    }

    /// The next char under `x`, as regex-lite finds it: whitespace skipped, and one `#`,
    /// but not the comment text after it.
    fn peek_space(&self) -> Option<char> {
        if !self.flags.ignore_whitespace || self.is_done() {
            return self.peek();
        }
        let rest = self.rest_after_current();
        let mut in_comment = false;
        for c in rest.chars() {
            if c.is_whitespace() {
                continue;
            }
            if !in_comment && c == '#' {
                in_comment = true;
                continue;
            }
            return Some(c);
        }
        rest.chars().next()
    }
}

/// Alternations, groups and flags.
impl Parser<'_> {
    /// A sequence of alternatives, up to a `)` (left for the caller) or the end.
    #[inline(never)]
    fn alternation(&mut self) -> Result<Node, Error> {
        let depth = self.depth;
        if depth > NEST_LIMIT {
            return Error::at("nesting deeper than 50", self.pos);
        }
        self.depth += 1;
        let mut alternates = Vec::new();
        let mut concat = Vec::new();
        loop {
            self.bump_space();
            let Some(c) = self.current() else { break };
            if c == ')' {
                if depth == 0 {
                    return Error::at("unopened group", self.pos);
                }
                break;
            }
            if c == '|' {
                alternates.push(Node::concat(std::mem::take(&mut concat)));
                self.bump();
            } else {
                self.item(c, &mut concat)?;
            }
        }
        self.depth = depth;
        alternates.push(Node::concat(concat));
        Ok(Node::alternation(alternates))
    }

    /// The item starting with `c`, added to `concat` (a repetition wraps its last item).
    #[inline(never)]
    fn item(&mut self, c: char, concat: &mut Vec<Node>) -> Result<(), Error> {
        match c {
            '(' => self.group(concat),
            '[' => {
                concat.push(self.class()?);
                Ok(())
            }
            '?' | '*' | '+' => self.repeat(concat),
            '{' => self.counted_repeat(concat),
            _ => {
                concat.push(self.primitive()?);
                Ok(())
            }
        }
    }

    /// A group `(...)` or a flag directive `(?i)`, which changes the flags up to the end
    /// of the enclosing group.
    #[inline(never)]
    fn group(&mut self, concat: &mut Vec<Node>) -> Result<(), Error> {
        let open = self.pos;
        let outer = self.flags;
        if let Some(group) = self.group_body(open)? {
            concat.push(group);
            self.flags = outer;
        }
        if !self.at(')') {
            return Error::at("unclosed group", open);
        }
        self.bump();
        Ok(())
    }

    /// What follows `(`; None for a flag directive.
    #[inline(never)]
    fn group_body(&mut self, open: usize) -> Result<Option<Node>, Error> {
        self.bump_and_bump_space();
        if self.bump_if("?=") || self.bump_if("?!") || self.bump_if("?<=") || self.bump_if("?<!") {
            return Error::at("look-around is not supported", open);
        }
        if self.bump_if("?P<") || self.bump_if("?<") {
            let index = self.next_group_index(open)?;
            let name_len = self.group_name(open)?;
            let sub = self.alternation()?;
            return Ok(Some(Node::group(index, name_len, sub)));
        }
        if self.bump_if("?") {
            return self.flag_group(open);
        }
        let index = self.next_group_index(open)?;
        let sub = self.alternation()?;
        Ok(Some(Node::group(index, 0, sub)))
    }

    fn next_group_index(&mut self, open: usize) -> Result<u32, Error> {
        match self.groups.checked_add(1) {
            Some(index) => {
                self.groups = index;
                Ok(index)
            }
            None => Error::at("too many groups", open),
        }
    }

    /// A group name up to `>`; returns its length in bytes.
    #[inline(never)]
    fn group_name(&mut self, open: usize) -> Result<usize, Error> {
        let pattern = self.pattern;
        let start = self.pos;
        while let Some(c) = self.current() {
            if c == '>' {
                break;
            }
            if !is_name_char(c, self.pos == start) {
                return Error::at("invalid group name", self.pos);
            }
            self.bump();
        }
        if self.is_done() {
            return Error::at("unclosed group name", open);
        }
        let name = pattern.get(start..self.pos).unwrap_or("");
        self.bump();
        if name.is_empty() {
            return Error::at("empty group name", open);
        }
        if self.names.insert(name, 0).is_some() {
            return Error::at("duplicate group name", open);
        }
        Ok(name.len())
    }

    /// After `(?`: flags, then `)` (a directive, None) or `:` and a group.
    fn flag_group(&mut self, open: usize) -> Result<Option<Node>, Error> {
        if self.is_done() {
            return Error::at("unclosed group", open);
        }
        let start = self.pos;
        self.flags = self.flag_list()?;
        if self.at(')') {
            if self.pos == start {
                return Error::at("empty flags", open);
            }
            return Ok(None);
        }
        self.bump(); // the ':'
        self.alternation().map(Some)
    }

    /// Flags like `im-sx`, up to `:` or `)`.
    #[inline(never)]
    fn flag_list(&mut self) -> Result<Flags, Error> {
        let mut flags = self.flags;
        let mut negate = false;
        let mut dangling_negation = false;
        let mut seen = 0u8;
        loop {
            let at = self.pos;
            let c = self.current().unwrap_or(')');
            if c == ':' || c == ')' {
                break;
            }
            dangling_negation = c == '-';
            if c == '-' {
                if negate {
                    return Error::at("repeated flag negation", at);
                }
                negate = true;
            } else {
                let Some(bit) = set_flag(&mut flags, c, !negate) else {
                    return Error::at("unrecognized flag", at);
                };
                if seen & bit != 0 {
                    return Error::at("duplicate flag", at);
                }
                seen |= bit;
            }
            if !self.bump() {
                return Error::at("unclosed flags", at);
            }
        }
        if dangling_negation {
            return Error::at("flags end in '-'", self.pos);
        }
        Ok(flags)
    }
}

/// Sets flag `c` to `on` in `flags`; returns a bit unique to the flag, None for no flag.
fn set_flag(flags: &mut Flags, c: char, on: bool) -> Option<u8> {
    let (slot, bit) = match c {
        'i' => (&mut flags.case_insensitive, 1),
        'm' => (&mut flags.multi_line, 2),
        's' => (&mut flags.dot_matches_new_line, 4),
        'R' => (&mut flags.crlf, 8),
        'x' => (&mut flags.ignore_whitespace, 16),
        // `U` swaps greediness, which `is_match` cannot see; `u` is a no-op in regex-lite.
        'U' => return Some(32),
        'u' => return Some(64),
        _ => return None,
    };
    *slot = on;
    Some(bit)
}

fn is_name_char(c: char, first: bool) -> bool {
    if first {
        c == '_' || c.is_alphabetic()
    } else {
        c == '_' || c == '.' || c == '[' || c == ']' || c.is_alphanumeric()
    }
}

/// Repetitions.
impl Parser<'_> {
    /// `?`, `*` or `+` (then an optional `?` for lazy) on the last item.
    #[inline(never)]
    fn repeat(&mut self, concat: &mut Vec<Node>) -> Result<(), Error> {
        let at = self.pos;
        let Some(sub) = concat.pop() else {
            return Error::at("repetition of nothing", at);
        };
        let (min, max) = match self.current() {
            Some('?') => (0, Some(1)),
            Some('*') => (0, None),
            _ => (1, None),
        };
        if self.bump() && self.at('?') {
            self.bump();
        }
        concat.push(Node::repeat(min, max, sub));
        Ok(())
    }

    /// `{n}`, `{n,}` or `{n,m}` (then an optional `?`) on the last item.
    #[inline(never)]
    fn counted_repeat(&mut self, concat: &mut Vec<Node>) -> Result<(), Error> {
        let open = self.pos;
        let Some(sub) = concat.pop() else {
            return Error::at("repetition of nothing", open);
        };
        if !self.bump_and_bump_space() {
            return Error::at("unclosed counted repetition", open);
        }
        let min = self.decimal()?;
        let mut max = Some(min);
        if self.at(',') {
            if !self.bump_and_bump_space() {
                return Error::at("unclosed counted repetition", open);
            }
            max = if self.at('}') {
                None
            } else {
                Some(self.decimal()?)
            };
        }
        if !self.at('}') {
            return Error::at("unclosed counted repetition", open);
        }
        if self.bump_and_bump_space() && self.at('?') {
            self.bump();
        }
        if max.is_some_and(|max| min > max) {
            return Error::at("repetition min above max", open);
        }
        concat.push(Node::repeat(min, max, sub));
        Ok(())
    }

    /// A decimal u32; whitespace around it is skipped even without `x`, as regex-lite does.
    fn decimal(&mut self) -> Result<u32, Error> {
        while self.current().is_some_and(char::is_whitespace) {
            self.bump();
        }
        let start = self.pos;
        let mut value = Some(0u32);
        while let Some(digit) = self.current().and_then(|c| c.to_digit(10)) {
            value = value.and_then(|v| v.checked_mul(10)?.checked_add(digit));
            self.bump_and_bump_space();
        }
        let digits = self.pos > start;
        while self.current().is_some_and(char::is_whitespace) {
            self.bump_and_bump_space();
        }
        match value {
            Some(value) if digits => Ok(value),
            Some(_) => Error::at("expected a number", start),
            None => Error::at("number too large", start),
        }
    }
}

/// Single items: literals, escapes, `.`, anchors.
impl Parser<'_> {
    #[inline(never)]
    fn primitive(&mut self) -> Result<Node, Error> {
        let at = self.pos;
        let c = self.current().unwrap_or('\0');
        self.bump();
        let look = match c {
            '\\' => return self.escape(at),
            '.' => return Ok(self.dot()),
            '^' if !self.flags.multi_line => Look::Start,
            '^' if self.flags.crlf => Look::StartCrlf,
            '^' => Look::StartLf,
            '$' if !self.flags.multi_line => Look::End,
            '$' if self.flags.crlf => Look::EndCrlf,
            '$' => Look::EndLf,
            c => return Ok(self.literal(c)),
        };
        Ok(Node::leaf(Kind::Look(look)))
    }

    /// `c`, or under `i` a class of both its ASCII cases.
    fn literal(&self, c: char) -> Node {
        match class::fold_char(c) {
            Some(both) if self.flags.case_insensitive => Node::leaf(Kind::Class(both)),
            _ => Node::leaf(Kind::Char(c)),
        }
    }

    fn dot(&self) -> Node {
        let ranges = if self.flags.dot_matches_new_line {
            vec![('\0', char::MAX)]
        } else if self.flags.crlf {
            vec![('\0', '\x09'), ('\x0B', '\x0C'), ('\x0E', char::MAX)]
        } else {
            vec![('\0', '\x09'), ('\x0B', char::MAX)]
        };
        Node::leaf(Kind::Class(ranges))
    }

    /// After a `\` at `at`.
    #[inline(never)]
    fn escape(&mut self, at: usize) -> Result<Node, Error> {
        let Some(c) = self.current() else {
            return Error::at("escape at end of pattern", at);
        };
        match c {
            '0'..='9' => return Error::at("backreferences are not supported", at),
            'p' | 'P' => return Error::at("Unicode classes are not supported", at),
            'x' | 'u' | 'U' => return self.hex(at),
            'd' | 's' | 'w' | 'D' | 'S' | 'W' => {
                self.bump();
                return Ok(perl_class(c));
            }
            _ => {}
        }
        self.bump();
        if c.is_ascii() && !c.is_ascii_alphanumeric() && c != '<' && c != '>' {
            return Ok(self.literal(c));
        }
        let look = match c {
            'a' => return Ok(self.literal('\x07')),
            'f' => return Ok(self.literal('\x0C')),
            't' => return Ok(self.literal('\t')),
            'n' => return Ok(self.literal('\n')),
            'r' => return Ok(self.literal('\r')),
            'v' => return Ok(self.literal('\x0B')),
            'b' => return self.word_boundary(at),
            'A' => Look::Start,
            'z' => Look::End,
            'B' => Look::NotWord,
            '<' => Look::WordStart,
            '>' => Look::WordEnd,
            _ => return Error::at("unrecognized escape", at),
        };
        Ok(Node::leaf(Kind::Look(look)))
    }

    /// After `\b`: `{start}`, `{end}`, `{start-half}` or `{end-half}`, else a plain `\b`
    /// (a following `{2}` is then a repetition of it).
    fn word_boundary(&mut self, at: usize) -> Result<Node, Error> {
        let plain = Node::leaf(Kind::Look(Look::Word));
        if !self.at('{') {
            return Ok(plain);
        }
        let brace = self.pos;
        if !self.bump_and_bump_space() {
            return Error::at("unclosed \\b{", at);
        }
        let is_name = |c: char| c.is_ascii_alphabetic() || c == '-';
        if !self.current().is_some_and(is_name) {
            self.pos = brace;
            return Ok(plain);
        }
        let mut name = String::new();
        while let Some(c) = self.current().filter(|&c| is_name(c)) {
            name.push(c);
            self.bump_and_bump_space();
        }
        if !self.at('}') {
            return Error::at("unclosed \\b{", at);
        }
        self.bump();
        let look = match name.as_str() {
            "start" => Look::WordStart,
            "end" => Look::WordEnd,
            "start-half" => Look::WordStartHalf,
            "end-half" => Look::WordEndHalf,
            _ => return Error::at("unknown \\b{...}", at),
        };
        Ok(Node::leaf(Kind::Look(look)))
    }

    /// `\xHH`, `\uHHHH`, `\UHHHHHHHH` or any of them with `{H...}`; at the letter.
    #[inline(never)]
    fn hex(&mut self, at: usize) -> Result<Node, Error> {
        let digits = match self.current() {
            Some('x') => 2,
            Some('u') => 4,
            _ => 8,
        };
        if !self.bump_and_bump_space() {
            return Error::at("unfinished hex escape", at);
        }
        let value = if self.at('{') {
            self.hex_braced(at)?
        } else {
            self.hex_fixed(digits, at)?
        };
        match value.and_then(char::from_u32) {
            Some(c) => Ok(self.literal(c)),
            None => Error::at("hex escape is not a char", at),
        }
    }

    fn hex_fixed(&mut self, digits: usize, at: usize) -> Result<Option<u32>, Error> {
        let mut value = 0u32;
        for i in 0..digits {
            if i > 0 && !self.bump_and_bump_space() {
                return Error::at("unfinished hex escape", at);
            }
            let Some(digit) = self.current().and_then(|c| c.to_digit(16)) else {
                return Error::at("bad hex digit", self.pos);
            };
            value = value << 4 | digit;
        }
        self.bump_and_bump_space();
        Ok(Some(value))
    }

    /// `{H...}`; None when the value overflows u32.
    fn hex_braced(&mut self, at: usize) -> Result<Option<u32>, Error> {
        let mut value = Some(0u32);
        let mut digits = 0;
        while self.bump_and_bump_space() && !self.at('}') {
            let Some(digit) = self.current().and_then(|c| c.to_digit(16)) else {
                return Error::at("bad hex digit", self.pos);
            };
            value = value.and_then(|v| v.checked_mul(16)?.checked_add(digit));
            digits += 1;
        }
        if self.is_done() {
            return Error::at("unfinished hex escape", at);
        }
        self.bump_and_bump_space();
        if digits == 0 {
            return Error::at("empty hex escape", at);
        }
        Ok(value)
    }
}

/// Adds a lone class item: a char or a class (`\d`); an assertion (`\b`) is an error.
#[inline(never)]
fn add_class_item(set: &mut Ranges, item: Node, at: usize) -> Result<(), Error> {
    match item.kind {
        Kind::Char(c) => set.push((c, c)),
        Kind::Class(ranges) => set.extend(ranges),
        _ => return Error::at("invalid escape in class", at),
    }
    Ok(())
}

/// Adds the range `first-last`; both must be single chars, in order.
#[inline(never)]
fn add_class_range(set: &mut Ranges, first: Node, last: Node, at: usize) -> Result<(), Error> {
    match (first.kind, last.kind) {
        (Kind::Char(start), Kind::Char(end)) if start <= end => {
            set.push((start, end));
            Ok(())
        }
        (Kind::Char(_), Kind::Char(_)) => Error::at("range start above end", at),
        _ => Error::at("range bound is not a single char", at),
    }
}

/// `\d`, `\s`, `\w` (ASCII) and their negations `\D`, `\S`, `\W`.
fn perl_class(c: char) -> Node {
    let name = match c.to_ascii_lowercase() {
        'd' => "digit",
        's' => "space",
        _ => "word",
    };
    let ranges = class::posix(name).unwrap_or_default();
    let ranges = if c.is_ascii_uppercase() {
        class::negate(&ranges)
    } else {
        ranges
    };
    Node::leaf(Kind::Class(ranges))
}

/// Bracketed classes.
impl Parser<'_> {
    /// `[...]`, at the `[`.
    #[inline(never)]
    fn class(&mut self) -> Result<Node, Error> {
        let open = self.pos;
        let mut set = Ranges::new();
        if !self.bump_and_bump_space() {
            return Error::at("unclosed class", open);
        }
        let negated = self.at('^');
        if negated && !self.bump_and_bump_space() {
            return Error::at("unclosed class", open);
        }
        // Leading `-`s, then a leading `]`, are literals.
        while self.at('-') {
            set.push(('-', '-'));
            if !self.bump_and_bump_space() {
                return Error::at("unclosed class", open);
            }
        }
        if set.is_empty() && self.at(']') {
            set.push((']', ']'));
            if !self.bump_and_bump_space() {
                return Error::at("unclosed class", open);
            }
        }
        let set = self.class_items(set, open)?;
        // Fold before negating: `(?i)[^x]` must exclude both x and X.
        let mut ranges = class::canonical(set);
        if self.flags.case_insensitive {
            ranges = class::fold(ranges);
        }
        if negated {
            ranges = class::negate(&ranges);
        }
        Ok(Node::leaf(Kind::Class(ranges)))
    }

    /// The items of a class up to and past its `]`, added to `set`.
    #[inline(never)]
    fn class_items(&mut self, mut set: Ranges, open: usize) -> Result<Ranges, Error> {
        loop {
            self.bump_space();
            let Some(c) = self.current() else {
                return Error::at("unclosed class", open);
            };
            match c {
                '[' => match self.posix_class() {
                    Some(ranges) => set.extend(ranges),
                    None => return Error::at("nested classes are not supported", self.pos),
                },
                ']' => {
                    self.bump();
                    return Ok(set);
                }
                '&' | '-' | '~' if self.peek() == Some(c) => {
                    return Error::at("class set operations are not supported", self.pos);
                }
                _ => self.class_range(&mut set, open)?,
            }
        }
    }

    /// One item (`a`, `\n`, `\d`) or range (`a-z`) of a class.
    #[inline(never)]
    fn class_range(&mut self, set: &mut Ranges, open: usize) -> Result<(), Error> {
        let at = self.pos;
        let first = self.class_item()?;
        self.bump_space();
        if self.is_done() {
            return Error::at("unclosed class", open);
        }
        // `-` before `]` or `-` is a literal, not a range.
        if !self.at('-') || matches!(self.peek_space(), Some(']' | '-')) {
            return add_class_item(set, first, at);
        }
        if !self.bump_and_bump_space() {
            return Error::at("unclosed class", open);
        }
        let last = self.class_item()?;
        add_class_range(set, first, last, at)
    }

    /// A literal char (never case-folded here) or an escape.
    fn class_item(&mut self) -> Result<Node, Error> {
        let at = self.pos;
        let c = self.current().unwrap_or('\0');
        self.bump();
        if c == '\\' {
            self.escape(at)
        } else {
            Ok(Node::leaf(Kind::Char(c)))
        }
    }

    /// `[:name:]` or `[:^name:]` inside a class, at its `[`; None (and the position kept)
    /// when it is not one.
    fn posix_class(&mut self) -> Option<Ranges> {
        let start = self.pos;
        let found = self.posix_class_at();
        if found.is_none() {
            self.pos = start;
        }
        found
    }

    fn posix_class_at(&mut self) -> Option<Ranges> {
        let pattern = self.pattern;
        if !self.bump() || !self.at(':') || !self.bump() {
            return None;
        }
        let negated = self.at('^');
        if negated && !self.bump() {
            return None;
        }
        let name_start = self.pos;
        while !self.at(':') && self.bump() {}
        if self.is_done() {
            return None;
        }
        let name = pattern.get(name_start..self.pos)?;
        if !self.bump_if(":]") {
            return None;
        }
        let ranges = class::posix(name)?;
        Some(if negated {
            class::negate(&ranges)
        } else {
            ranges
        })
    }
}
