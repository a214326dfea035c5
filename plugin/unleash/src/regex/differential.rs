//! The engine against regex-lite (the reference it replaces): random patterns from a
//! grammar covering every construct, byte-level mutations of them (so malformed patterns
//! are exercised too), random haystacks; both must agree on whether the pattern compiles
//! and on `is_match` for each haystack, with and without case-insensitivity.

use super::Regex;

const SIZE_LIMIT: usize = 1 << 20;
const PATTERNS: usize = 40_000;

/// Deterministic xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const LITERALS: &[&str] = &[
    "a", "b", "c", "A", "B", "z", "Z", "0", "1", "9", "_", "-", " ", ",", ":", "é", "É", "ß",
    "\u{212A}", "😃", "\n", "\r", "\t", "#", "]", "}", "&", "~", "<", ">", "=", "!",
];

const ESCAPES: &[&str] = &[
    r"\d",
    r"\D",
    r"\w",
    r"\W",
    r"\s",
    r"\S",
    r"\b",
    r"\B",
    r"\A",
    r"\z",
    r"\<",
    r"\>",
    r"\b{start}",
    r"\b{end}",
    r"\b{start-half}",
    r"\b{end-half}",
    r"\b{ start }",
    r"\b{bogus}",
    r"\b{",
    r"\b{2}",
    r"\x41",
    r"\x61",
    r"\x{62}",
    r"\x{}",
    r"\x{110000}",
    r"\x{D800}",
    r"\x{0000000041}",
    r"\u0041",
    r"\u00e9",
    r"\U0001F603",
    r"\U00110000",
    r"\xZZ",
    r"\x4",
    r"\n",
    r"\t",
    r"\r",
    r"\a",
    r"\f",
    r"\v",
    r"\.",
    r"\-",
    r"\*",
    r"\\",
    r"\[",
    r"\]",
    r"\{",
    r"\}",
    r"\(",
    r"\)",
    r"\|",
    r"\^",
    r"\$",
    r"\#",
    r"\&",
    r"\~",
    r"\ ",
    r"\%",
    r"\/",
    r"\é",
    r"\e",
    r"\Z",
    r"\1",
    r"\0",
    r"\pL",
    r"\p{L}",
    r"\PL",
    r"\k<a>",
    r"\G",
    r"\h",
    r"\x 41",
    r"\x{ 4 1 }",
];

const CLASS_ITEMS: &[&str] = &[
    "a",
    "b",
    "z",
    "A",
    "Z",
    "0",
    "9",
    "a-z",
    "A-Z",
    "0-9",
    "a-f",
    "Y-c",
    "A-a",
    "z-a",
    "-",
    "^",
    "]",
    "[",
    "&",
    "~",
    "&&",
    "--",
    "~~",
    " ",
    "é",
    "ß-ö",
    "\u{212A}",
    r"\d",
    r"\w",
    r"\s",
    r"\D",
    r"\W",
    r"\S",
    r"\n",
    r"\t",
    r"\x41",
    r"\x41-Z",
    r"\x61-z",
    r"a-\x7a",
    r"\]",
    r"\[",
    r"\-",
    r"\^",
    r"\b",
    r"\A",
    r"\pL",
    r"\d-z",
    r"a-\d",
    "[:alpha:]",
    "[:^alpha:]",
    "[:digit:]",
    "[:space:]",
    "[:word:]",
    "[:punct:]",
    "[:upper:]",
    "[:lower:]",
    "[:xdigit:]",
    "[:alnum:]",
    "[:ascii:]",
    "[:blank:]",
    "[:cntrl:]",
    "[:graph:]",
    "[:print:]",
    "[:^space:]",
    "[:bogus:]",
    "[:alpha]",
    "[a]",
    r"\x00-\u{D7FF}",
    r"\u{E000}-\u{10FFFF}",
    "#",
    " # c\n",
];

const FLAGS: &[&str] = &[
    "i", "m", "s", "x", "U", "u", "R", "-i", "i-s", "im", "sm", "-x", "ix", "Rm", "Rs", "is-mU",
    "ii", "i-i", "--i", "i-", "-", "", "y", "i m", "ms-xi",
];

const REPEATS: &[&str] = &[
    "*",
    "+",
    "?",
    "*?",
    "+?",
    "??",
    "{0}",
    "{1}",
    "{2}",
    "{3}",
    "{0,}",
    "{1,}",
    "{2,}",
    "{0,1}",
    "{1,3}",
    "{2,2}",
    "{3,1}",
    "{2}?",
    "{1,2}?",
    "{,2}",
    "{",
    "{x}",
    "{ 2 }",
    "{2 ,3}",
    "{1,",
    "{4294967295}",
    "{4294967296}",
    "{0,0}",
    "{01}",
    "{ 1 , 2 }?",
];

struct Gen<'r> {
    rng: &'r mut Rng,
}

impl Gen<'_> {
    fn alternation(&mut self, depth: usize) -> String {
        let mut out = self.concat(depth);
        while self.rng.chance(20) {
            out.push('|');
            out.push_str(&self.concat(depth));
        }
        out
    }

    fn concat(&mut self, depth: usize) -> String {
        let n = self.rng.below(4);
        (0..n).map(|_| self.repeated(depth)).collect()
    }

    fn repeated(&mut self, depth: usize) -> String {
        let mut out = self.atom(depth);
        while self.rng.chance(25) {
            out.push_str(self.rng.pick(REPEATS));
        }
        out
    }

    fn atom(&mut self, depth: usize) -> String {
        let kind = self.rng.below(if depth > 3 { 6 } else { 9 });
        match kind {
            0 | 1 => self.rng.pick(LITERALS).to_string(),
            2 => self.rng.pick(ESCAPES).to_string(),
            3 => self.rng.pick(&[".", "^", "$"]).to_string(),
            4 => self.class(),
            5 => format!("(?{})", self.rng.pick(FLAGS)),
            _ => self.group(depth + 1),
        }
    }

    fn class(&mut self) -> String {
        let mut out = String::from("[");
        if self.rng.chance(30) {
            out.push('^');
        }
        for _ in 0..1 + self.rng.below(3) {
            out.push_str(self.rng.pick(CLASS_ITEMS));
        }
        if !self.rng.chance(3) {
            out.push(']');
        }
        out
    }

    fn group(&mut self, depth: usize) -> String {
        let open = match self.rng.below(10) {
            0 => "(?:".to_string(),
            1 => format!(
                "(?P<{}>",
                self.rng
                    .pick(&["n", "m", "_x", "a1", "é", "1a", "", "a.b[c]"])
            ),
            2 => format!("(?<{}>", self.rng.pick(&["n", "m", "n"])),
            3 => format!("(?{}:", self.rng.pick(FLAGS)),
            4 => self
                .rng
                .pick(&["(?=", "(?!", "(?<=", "(?<!", "(?", "(?P", "(?P<n"])
                .to_string(),
            _ => "(".to_string(),
        };
        let close = if self.rng.chance(4) { "" } else { ")" };
        format!("{open}{}{close}", self.alternation(depth))
    }
}

/// A random edit: delete, duplicate or insert a meta char, at a char boundary.
fn mutate(rng: &mut Rng, pattern: &str) -> String {
    let bounds: Vec<usize> = pattern
        .char_indices()
        .map(|(i, _)| i)
        .chain([pattern.len()])
        .collect();
    let at = bounds[rng.below(bounds.len())];
    let (head, tail) = pattern.split_at(at);
    let meta = [
        "(", ")", "[", "]", "{", "}", "\\", "|", "*", "?", "-", "^", ":", "<", ",", " ",
    ];
    match rng.below(3) {
        0 => {
            let mut rest = tail.chars();
            rest.next();
            format!("{head}{}", rest.as_str())
        }
        1 => format!("{head}{}{tail}", rng.pick(&meta)),
        _ => format!(
            "{head}{}{tail}",
            tail.chars().next().map(String::from).unwrap_or_default()
        ),
    }
}

fn haystack(rng: &mut Rng, pattern: &str) -> String {
    const ALPHABET: &[&str] = &[
        "a", "b", "c", "A", "B", "z", "Z", "0", "1", "9", "_", "-", " ", "é", "É", "ß", "\u{212A}",
        "😃", "\n", "\r", "\t", "#", "]", ",", ":", "\u{D7FF}", "\u{E000}",
    ];
    let literal: Vec<char> = pattern
        .chars()
        .filter(|c| !"\\()[]{}|*+?^$.".contains(*c))
        .collect();
    let len = rng.below(10);
    (0..len)
        .map(|_| {
            if !literal.is_empty() && rng.chance(40) {
                literal[rng.below(literal.len())].to_string()
            } else {
                rng.pick(ALPHABET).to_string()
            }
        })
        .collect()
}

fn reference(pattern: &str, ci: bool) -> Option<regex_lite::Regex> {
    regex_lite::RegexBuilder::new(pattern)
        .case_insensitive(ci)
        .size_limit(SIZE_LIMIT)
        .build()
        .ok()
}

/// Checks one pattern both ways; returns the number of comparisons made.
fn check(pattern: &str, haystacks: &[String]) -> usize {
    let mut cases = 0;
    for ci in [false, true] {
        let want = reference(pattern, ci);
        let got = Regex::new(pattern, ci, SIZE_LIMIT);
        assert_eq!(
            got.is_ok(),
            want.is_some(),
            "pattern {pattern:?} ci={ci}: ours {:?}",
            got.as_ref().err()
        );
        cases += 1;
        let (Ok(got), Some(want)) = (got, want) else {
            continue;
        };
        for hay in haystacks {
            assert_eq!(
                got.is_match(hay),
                want.is_match(hay),
                "pattern {pattern:?} ci={ci} haystack {hay:?}"
            );
            cases += 1;
        }
    }
    cases
}

#[test]
fn agrees_with_regex_lite_on_generated_patterns() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let (mut cases, mut compiled) = (0, 0);
    for _ in 0..PATTERNS {
        let mut pattern = Gen { rng: &mut rng }.alternation(0);
        if rng.chance(35) {
            for _ in 0..1 + rng.below(2) {
                pattern = mutate(&mut rng, &pattern);
            }
        }
        let haystacks: Vec<String> = (0..8).map(|_| haystack(&mut rng, &pattern)).collect();
        let n = check(&pattern, &haystacks);
        compiled += usize::from(n > 2);
        cases += n;
    }
    eprintln!("regex differential: {cases} cases, {compiled} of {PATTERNS} patterns compiled");
    assert!(cases > 300_000, "{cases}");
}

#[test]
fn agrees_on_edge_patterns() {
    let patterns = [
        "",
        "a",
        "{",
        "a{",
        "a{}",
        "a{,}",
        "\\b{",
        "\\b{2}",
        "[",
        "[]",
        "[]]",
        "[^]",
        "[^]]",
        "[-]",
        "[--]",
        "[a-]",
        "[-a]",
        "[a--]",
        "[^-]",
        "(?)",
        "(?:)",
        "(?i)",
        "()",
        "(|)",
        "|",
        "a|",
        "*",
        "a**",
        "a*?*",
        "^*",
        "$+",
        "\\b+",
        "(?x) a b # c\n d",
        "(?x)[ a - z ]",
        "(?x)a{ 1 , 2 }",
        "(?x)\\x 4 1",
        "(?x)[a-#c\n]",
        "(?x)[a - # comment\n z]",
        "(?i)[\\x41-Z]",
        "(?i)[A-\\x5a]",
        "(?i)[a-z]",
        "(?i)[A-a]",
        "[[:alpha:][:digit:]]",
        "[[:^alpha:]]",
        "[[:alpha:]-z]",
        "[a-[:alpha:]]",
        "[\\D-z]",
        "(?<a>x)(?<a>y)",
        "(?P<a>x)(?<b>y)",
        "(?<>a)",
        "(?<1>a)",
        "(?<a",
        "(?P<a>",
        "(?P>a)",
        "(?Pa)",
        "\\x{D7FF}",
        "\\u{E000}",
        "[^\\x00-\\u{D7FF}\\u{E000}-\\u{10FFFF}]",
        "(?s).",
        "(?R)^$",
        "(?Rm)^$",
        "(?m)^a$",
        "a{0}{1}",
        "(a){0}",
        "(?:(?:(?:a)))",
        "(((((a)))))",
        "a{4294967295}",
        "a{1000}",
        "(?:a{100}){100}",
        "[a-z]{1000}",
        "(a|b){2000}",
        "a{2,1}",
        "a{2,1}?",
        "\\",
        "a\\",
        "(?-)",
        "(?--i)",
        "(?i-)",
        "(?i-i)",
        "(?uu)",
        "(?U)a+?",
        "(?=a)",
        "\\1",
        // `x` mode inside classes: regex-lite's look past `-` skips one `#` but not the
        // comment text after it.
        "(?x)[a-#\nb]",
        "(?x)[a-#b\n]",
        "(?x)[a-##\n]",
        "(?x)[a- # x\n-]",
        "(?x)[a-# ]\n]",
        "(?x)[a -#]\n]",
        "(?x)[a-#-\n]",
    ];
    let haystacks: Vec<String> = ["", "a", "A", "ab", "b a", "\n", "\r\n", "aaaa", "a\nb", "é"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for pattern in patterns {
        check(pattern, &haystacks);
    }
}

/// regex-lite's nest limit is 50: at and around it, by groups and by stacked repetitions.
#[test]
fn agrees_on_nesting_depth() {
    for n in 45..56 {
        for pattern in [
            format!("{}a{}", "(".repeat(n), ")".repeat(n)),
            format!("{}a{}", "(?:".repeat(n), ")".repeat(n)),
            format!("{}a{}", "(?:b|".repeat(n), ")".repeat(n)),
            format!("a{}", "*".repeat(n)),
            format!("a{}{{0}}", "*".repeat(n)),
            format!("a{}{{1}}", "+".repeat(n)),
            format!("(a{})", "?".repeat(n)),
            format!("ab{}", "{2}".repeat(n)),
        ] {
            check(&pattern, &[String::from("a"), String::new()]);
        }
    }
    // Very deep trees must neither overflow the stack nor be accepted.
    let deep = format!("a{}", "*".repeat(100_000));
    assert!(Regex::new(&deep, false, SIZE_LIMIT).is_err());
    let rescued = format!("a{}{{0}}", "*".repeat(100_000));
    assert!(Regex::new(&rescued, false, SIZE_LIMIT).is_ok());
}

/// The size limit is counted like regex-lite's: the same patterns are just in and just out.
#[test]
fn agrees_on_the_size_limit() {
    for unit in [
        "[^\\x00-\\u{D7FF}\\u{E000}-\\u{10FFFF}]",
        "[^a]",
        "(?i)[a-c]",
        ".",
        "a",
        "[ab]",
        "(?:a|b)",
        "(a)",
        "(?<name>a)",
        "a?",
        "a*",
        "(?:a*)*",
        "\\b",
        "a{2,5}",
        "a+",
        "a{3,}",
        "(?:a?){2,}",
    ] {
        // Find regex-lite's largest accepted count, then compare just around it.
        let (mut lo, mut hi) = (1u32, 1 << 20);
        while lo + 1 < hi {
            let mid = (lo + hi) / 2;
            if reference(&format!("(?:{unit}){{{mid}}}"), false).is_some() {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        for n in lo.saturating_sub(2)..lo + 3 {
            check(&format!("(?:{unit}){{{n}}}"), &[String::from("ab")]);
        }
    }
}

/// Patterns that make backtracking engines exponential stay linear here.
#[test]
fn pathological_patterns_are_fast() {
    let long = "a".repeat(20_000);
    let start = std::time::Instant::now();
    for pattern in [
        "(a*)*b",
        "(a|a)*b",
        "(a+)+b",
        "(?:a?){30}a{30}b",
        "(.*)*$x",
        "(\\w+\\s?)*$!",
    ] {
        let re = Regex::new(pattern, false, SIZE_LIMIT).expect(pattern);
        assert!(!re.is_match(&long), "{pattern}");
    }
    assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
}
