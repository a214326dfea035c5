//! Character-class sets as ranges of chars, with regex-lite's exact operations: the number
//! of ranges counts toward the program size, so merging, folding and negation must come
//! out the same range for range.

use sluice_primitives::order::sort_by;

pub(super) type Ranges = Vec<(char, char)>;

/// Sorted, with overlapping and adjacent ranges merged.
pub(super) fn canonical(mut ranges: Ranges) -> Ranges {
    sort_by(&mut ranges, |a, b| a.cmp(b));
    let mut merged: Ranges = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        if let Some(last) = merged.last_mut() {
            if touches(*last, (start, end)) {
                *last = (last.0.min(start), last.1.max(end));
                continue;
            }
        }
        merged.push((start, end));
    }
    merged
}

fn touches(a: (char, char), b: (char, char)) -> bool {
    let (s1, e1) = (u32::from(a.0), u32::from(a.1));
    let (s2, e2) = (u32::from(b.0), u32::from(b.1));
    s1.max(s2) <= e1.min(e2).saturating_add(1)
}

/// Adds the other ASCII case of each range (only A-Z and a-z fold), then merges. Like
/// regex-lite, a range reaching into a-z adds only its upper-case image, one in A-Z only
/// its lower-case one.
pub(super) fn fold(mut ranges: Ranges) -> Ranges {
    for i in 0..ranges.len() {
        if let Some(folded) = ranges.get(i).and_then(|&range| fold_range(range)) {
            ranges.push(folded);
        }
    }
    canonical(ranges)
}

fn fold_range((start, end): (char, char)) -> Option<(char, char)> {
    let (lo, hi) = (start.max('a'), end.min('z'));
    if lo <= hi {
        return Some((lo.to_ascii_uppercase(), hi.to_ascii_uppercase()));
    }
    let (lo, hi) = (start.max('A'), end.min('Z'));
    if lo <= hi {
        return Some((lo.to_ascii_lowercase(), hi.to_ascii_lowercase()));
    }
    None
}

/// `c` and, if it has one, its other ASCII case (a one- or two-range class).
pub(super) fn fold_char(c: char) -> Option<Ranges> {
    let other = fold_range((c, c))?;
    Some(canonical(vec![(c, c), other]))
}

/// The complement of canonical `ranges` over all chars. Gaps are written as regex-lite
/// writes them, even the odd empty one between ranges that end at U+D7FF and start at
/// U+E000 (the surrogates are not chars): it never matches but counts as a range.
pub(super) fn negate(ranges: &[(char, char)]) -> Ranges {
    let Some((&(first, _), &(_, last))) = ranges.first().zip(ranges.last()) else {
        return vec![('\0', char::MAX)];
    };
    let mut out = Vec::with_capacity(ranges.len() + 1);
    if first > '\0' {
        out.push(('\0', prev_char(first)));
    }
    for pair in ranges.windows(2) {
        if let [(_, end), (start, _)] = pair {
            out.push((next_char(*end), prev_char(*start)));
        }
    }
    if last < char::MAX {
        out.push((next_char(last), char::MAX));
    }
    out
}

fn next_char(c: char) -> char {
    match c {
        '\u{D7FF}' => '\u{E000}',
        _ => char::from_u32(u32::from(c) + 1).unwrap_or(char::MAX),
    }
}

fn prev_char(c: char) -> char {
    match c {
        '\u{E000}' => '\u{D7FF}',
        _ => char::from_u32(u32::from(c).saturating_sub(1)).unwrap_or('\0'),
    }
}

/// A POSIX class by name (`alpha` in `[[:alpha:]]`), ASCII only, already canonical.
pub(super) fn posix(name: &str) -> Option<Ranges> {
    let table: &[(u8, u8)] = match name {
        "alnum" => &[(b'0', b'9'), (b'A', b'Z'), (b'a', b'z')],
        "alpha" => &[(b'A', b'Z'), (b'a', b'z')],
        "ascii" => &[(0, 0x7F)],
        "blank" => &[(b'\t', b'\t'), (b' ', b' ')],
        "cntrl" => &[(0, 0x1F), (0x7F, 0x7F)],
        "digit" => &[(b'0', b'9')],
        "graph" => &[(b'!', b'~')],
        "lower" => &[(b'a', b'z')],
        "print" => &[(b' ', b'~')],
        "punct" => &[(b'!', b'/'), (b':', b'@'), (b'[', b'`'), (b'{', b'~')],
        "space" => &[(b'\t', b'\r'), (b' ', b' ')],
        "upper" => &[(b'A', b'Z')],
        "word" => &[(b'0', b'9'), (b'A', b'Z'), (b'_', b'_'), (b'a', b'z')],
        "xdigit" => &[(b'0', b'9'), (b'A', b'F'), (b'a', b'f')],
        _ => return None,
    };
    Some(
        table
            .iter()
            .map(|&(s, e)| (char::from(s), char::from(e)))
            .collect(),
    )
}
