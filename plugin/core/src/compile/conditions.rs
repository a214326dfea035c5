//! Conditions and segments: raw `Condition` trees → `Cond`, with attribute
//! and segment references resolved and operands parsed.
use super::{subject_of, text, ConfigError, HeaderTable};
use crate::config::{Condition, Config, Named, OneOrMany};
use crate::plan::{Cmp, Cond, FlagPlan, Leaf, Op, Subject};
use sluice_engine::engine::request::REMEMBERED_SEGMENTS;
use sluice_primitives::cidr::Cidr;
use sluice_primitives::names::{NameIndex, OwnedNameIndex};
use sluice_primitives::semver::Version;

pub(crate) struct Conditions<'c> {
    pub(crate) headers: HeaderTable,
    /// Attribute names to their index in `attribute_subjects`.
    attributes: NameIndex<'c>,
    attribute_subjects: Vec<Subject>,
    /// The config's segments, and their names to their index there and in `compiled_segments`.
    config_segments: &'c Named<Condition>,
    segments: NameIndex<'c>,
    compiled_segments: Vec<Option<Cond>>,
    /// Segments compiled so far: the next one's id.
    segment_ids: usize,
    /// Segments being compiled, to catch `a → b → a`.
    in_progress: Vec<&'c str>,
    pub(crate) reads_source_address: bool,
}

impl<'c> Conditions<'c> {
    #[inline(never)]
    pub(crate) fn new(config: &'c Config) -> Result<Self, ConfigError> {
        let mut headers = HeaderTable::default();
        let (attributes, attribute_subjects) = attributes(config, &mut headers)?;
        let segments = segments(config)?;
        let mut this = Conditions {
            headers,
            attributes,
            attribute_subjects,
            segments,
            config_segments: &config.segments,
            compiled_segments: vec![None; config.segments.len()],
            segment_ids: 0,
            in_progress: Vec::new(),
            reads_source_address: false,
        };
        // Compile every segment, used or not, so a broken one is reported.
        for (name, _) in config.segments.iter() {
            this.segment(name, &format!("segments.{name}"))?;
        }
        Ok(this)
    }

    #[inline(never)]
    fn segment(&mut self, name: &'c str, path: &str) -> Result<Cond, ConfigError> {
        let index = self.segments.get(name).copied();
        if let Some(Some(done)) = index.and_then(|i| self.compiled_segments.get(i)) {
            return Ok(done.clone());
        }
        let Some((_, raw)) = index.and_then(|i| self.config_segments.0.get(i)) else {
            return Err(ConfigError::new(path, format!("unknown segment `{name}`")));
        };
        if self.in_progress.contains(&name) {
            let mut chain: Vec<&str> = self.in_progress.clone();
            chain.push(name);
            return Err(ConfigError::new(
                path,
                format!("segment cycle: {}", chain.join(" -> ")),
            ));
        }
        self.in_progress.push(name);
        let compiled = self.compile(raw, &format!("segments.{name}"));
        self.in_progress.pop();
        // Wrapped with an id, so a request evaluates each segment once however many flags and
        // routes use it (see `engine::conditions`).
        let id = self.segment_ids;
        self.segment_ids += 1;
        let compiled = Cond::Segment(id, Box::new(compiled?));
        if let Some(slot) = index.and_then(|i| self.compiled_segments.get_mut(i)) {
            *slot = Some(compiled.clone());
        }
        Ok(compiled)
    }

    /// Text leaves that several flag rules test alike become unnamed segments, so that a request
    /// evaluates each once however many flags test it, as it does a named segment (ids after
    /// the named ones', while the request remembers segments). A leaf tested once stays as it
    /// is: wrapping costs a lookup.
    #[inline(never)]
    pub(crate) fn share_repeated_leaves(&mut self, flags: &mut [FlagPlan]) {
        // Each leaf's key, in visiting order, and how many leaves share it.
        let mut keys: Vec<Option<Box<str>>> = Vec::new();
        let mut uses = OwnedNameIndex::default();
        for_each_flag_leaf(flags, &mut |cond| {
            let key = leaf_key(cond).map(String::into_boxed_str);
            if let Some(key) = &key {
                *uses.entry(key.clone()).or_insert(0) += 1;
            }
            keys.push(key);
        });
        let mut keys = keys.into_iter();
        let mut ids = OwnedNameIndex::default();
        for_each_flag_leaf(flags, &mut |cond| {
            let Some(key) = keys.next().flatten() else {
                return;
            };
            if uses.get(&key).is_none_or(|n| *n < 2) {
                return;
            }
            let id = match ids.get(&key) {
                Some(id) => *id,
                None if self.segment_ids < REMEMBERED_SEGMENTS => {
                    let id = self.segment_ids;
                    self.segment_ids += 1;
                    ids.insert(key, id);
                    id
                }
                None => return,
            };
            let leaf = std::mem::replace(cond, Cond::All(Vec::new()));
            *cond = Cond::Segment(id, Box::new(leaf));
        });
    }

    #[inline(never)]
    pub(crate) fn compile(&mut self, c: &'c Condition, path: &str) -> Result<Cond, ConfigError> {
        let combinators = [
            c.all.is_some(),
            c.any.is_some(),
            c.not.is_some(),
            c.segment.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        let subject = self.subject(c, path)?;
        if combinators > 0 {
            return self.combinator(c, combinators > 1 || subject.is_some(), path);
        }
        let Some(subject) = subject else {
            return Err(ConfigError::new(
                path,
                "condition has no subject: use attr, header, cookie or query (or all/any/not/segment)",
            ));
        };
        self.leaf(c, subject, path)
    }

    /// `all`, `any`, `not` or `segment` (`mixed`: with another of them, or with a subject).
    #[inline(never)]
    fn combinator(
        &mut self,
        c: &'c Condition,
        mixed: bool,
        path: &str,
    ) -> Result<Cond, ConfigError> {
        if c.negate || c.ignore_case {
            return Err(ConfigError::new(
                path,
                "negate and ignore_case belong on a leaf; wrap a combinator in `not` instead",
            ));
        }
        if mixed || has_operator(c) {
            return Err(ConfigError::new(
                path,
                "a condition is either one of all/any/not/segment or one subject with one operator",
            ));
        }
        if let Some(list) = &c.all {
            return Ok(Cond::All(self.compile_list(list, &format!("{path}.all"))?));
        }
        if let Some(list) = &c.any {
            return Ok(Cond::Any(self.compile_list(list, &format!("{path}.any"))?));
        }
        if let Some(inner) = &c.not {
            return Ok(Cond::Not(Box::new(
                self.compile(inner, &format!("{path}.not"))?,
            )));
        }
        match &c.segment {
            Some(name) => self.segment(name, &format!("{path}.segment")),
            // `compile` counted one of the four.
            None => Err(ConfigError::new(path, "no condition")),
        }
    }

    /// One subject with one operator.
    #[inline(never)]
    fn leaf(&mut self, c: &Condition, subject: Subject, path: &str) -> Result<Cond, ConfigError> {
        if subject == Subject::SourceAddress {
            self.reads_source_address = true;
        }
        let op = operator(c, path)?;
        if matches!(
            op,
            Op::Number(..) | Op::Semver(..) | Op::Cidr(_) | Op::Present(_)
        ) && c.ignore_case
        {
            return Err(ConfigError::new(
                path,
                "ignore_case applies to text operators only",
            ));
        }
        Ok(Cond::Leaf(Leaf {
            subject,
            op,
            ignore_case: c.ignore_case,
            negate: c.negate,
        }))
    }

    #[inline(never)]
    fn compile_list(
        &mut self,
        list: &'c [Condition],
        path: &str,
    ) -> Result<Vec<Cond>, ConfigError> {
        if list.is_empty() {
            return Err(ConfigError::new(
                path,
                "empty list; give at least one condition",
            ));
        }
        list.iter()
            .enumerate()
            .map(|(i, c)| self.compile(c, &format!("{path}[{i}]")))
            .collect()
    }

    #[inline(never)]
    fn subject(&mut self, c: &'c Condition, path: &str) -> Result<Option<Subject>, ConfigError> {
        let given = [
            c.attr.is_some(),
            c.header.is_some(),
            c.cookie.is_some(),
            c.query.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if given > 1 {
            return Err(ConfigError::new(
                path,
                "more than one subject (attr, header, cookie, query)",
            ));
        }
        use crate::config::Source;
        if let Some(name) = &c.attr {
            let subject =
                (self.attributes.get(name.as_str())).and_then(|&i| self.attribute_subjects.get(i));
            return match subject {
                Some(s) => Ok(Some(s.clone())),
                None => builtin_attribute(name).map(Some).ok_or_else(|| {
                    ConfigError::new(
                        format!("{path}.attr"),
                        format!("unknown attribute `{name}`"),
                    )
                }),
            };
        }
        let source = if let Some(h) = &c.header {
            Source::Header(h.clone())
        } else if let Some(k) = &c.cookie {
            Source::Cookie(k.clone())
        } else if let Some(q) = &c.query {
            Source::Query(q.clone())
        } else {
            return Ok(None);
        };
        subject_of(&source, path, &mut self.headers).map(Some)
    }
}

/// Calls `f` with each leaf of the flags' rule conditions (not those inside named segments,
/// which a request remembers already).
fn for_each_flag_leaf(flags: &mut [FlagPlan], f: &mut dyn FnMut(&mut Cond)) {
    fn visit(cond: &mut Cond, f: &mut dyn FnMut(&mut Cond)) {
        match cond {
            Cond::All(list) | Cond::Any(list) => list.iter_mut().for_each(|c| visit(c, f)),
            Cond::Not(inner) => visit(inner, f),
            Cond::Leaf(_) => f(cond),
            Cond::Segment(..) => {}
        }
    }
    for rule in flags.iter_mut().flat_map(|flag| &mut flag.rules) {
        if let Some(when) = &mut rule.when {
            visit(when, f);
        }
    }
}

/// What makes two text leaves alike (subject, operator, operands, case and negation), as text;
/// `None` for a leaf of another operator or not a leaf.
fn leaf_key(cond: &Cond) -> Option<String> {
    let Cond::Leaf(leaf) = cond else {
        return None;
    };
    let (op, operands): (char, &[String]) = match &leaf.op {
        Op::Equals(v) => ('=', std::slice::from_ref(v)),
        Op::In(list) => ('[', list),
        Op::Prefix(v) => ('^', std::slice::from_ref(v)),
        Op::Suffix(v) => ('$', std::slice::from_ref(v)),
        Op::Contains(v) => ('~', std::slice::from_ref(v)),
        _ => return None,
    };
    // Length-prefixed, so that no name or operand can run into the next field.
    fn text(key: &mut String, t: &str) {
        key.push_str(&t.len().to_string());
        key.push(':');
        key.push_str(t);
    }
    let mut key = String::new();
    match &leaf.subject {
        Subject::Header(i) => {
            key.push('h');
            text(&mut key, &i.to_string());
        }
        Subject::Cookie(name) => {
            key.push('c');
            text(&mut key, name);
        }
        Subject::Query(name) => {
            key.push('q');
            text(&mut key, name);
        }
        Subject::Path => key.push('p'),
        Subject::Method => key.push('m'),
        Subject::Authority => key.push('a'),
        Subject::SourceAddress => key.push('s'),
        Subject::Baggage(i) => {
            key.push('b');
            text(&mut key, &i.to_string());
        }
    }
    key.push(op);
    key.push(if leaf.ignore_case { 'i' } else { '-' });
    key.push(if leaf.negate { '!' } else { '-' });
    for operand in operands {
        text(&mut key, operand);
    }
    Some(key)
}

/// The config's attributes: each name's subject.
#[inline(never)]
fn attributes<'c>(
    config: &'c Config,
    headers: &mut HeaderTable,
) -> Result<(NameIndex<'c>, Vec<Subject>), ConfigError> {
    let mut names = NameIndex::default();
    let mut subjects = Vec::new();
    for (name, source) in config.attributes.iter() {
        let path = format!("attributes.{name}");
        text::check_name(name, &path, "attribute name")?;
        names.insert(name, subjects.len());
        subjects.push(subject_of(source, &path, headers)?);
    }
    Ok((names, subjects))
}

/// The config's segments by name, their names checked (compiled by `Conditions::segment`).
#[inline(never)]
fn segments(config: &Config) -> Result<NameIndex<'_>, ConfigError> {
    let mut names = NameIndex::default();
    for (i, (name, _)) in config.segments.iter().enumerate() {
        text::check_name(name, &format!("segments.{name}"), "segment name")?;
        names.insert(name, i);
    }
    Ok(names)
}

/// Attributes every config has without declaring them.
#[inline(never)]
fn builtin_attribute(name: &str) -> Option<Subject> {
    match name {
        "path" => Some(Subject::Path),
        "method" => Some(Subject::Method),
        "authority" => Some(Subject::Authority),
        "source_address" => Some(Subject::SourceAddress),
        _ => None,
    }
}

fn has_operator(c: &Condition) -> bool {
    operator_names(c).next().is_some()
}

#[inline(never)]
fn operator_names(c: &Condition) -> impl Iterator<Item = &'static str> {
    [
        ("equals", c.equals.is_some()),
        ("in", c.in_list.is_some()),
        ("prefix", c.prefix.is_some()),
        ("suffix", c.suffix.is_some()),
        ("contains", c.contains.is_some()),
        ("num_eq", c.num_eq.is_some()),
        ("num_gt", c.num_gt.is_some()),
        ("num_gte", c.num_gte.is_some()),
        ("num_lt", c.num_lt.is_some()),
        ("num_lte", c.num_lte.is_some()),
        ("semver_eq", c.semver_eq.is_some()),
        ("semver_gt", c.semver_gt.is_some()),
        ("semver_gte", c.semver_gte.is_some()),
        ("semver_lt", c.semver_lt.is_some()),
        ("semver_lte", c.semver_lte.is_some()),
        ("cidr", c.cidr.is_some()),
        ("present", c.present.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(name, _)| name)
}

#[inline(never)]
fn operator(c: &Condition, path: &str) -> Result<Op, ConfigError> {
    let names: Vec<&str> = operator_names(c).collect();
    match names.len() {
        0 => return Err(ConfigError::new(path, "condition has no operator (equals, in, prefix, suffix, contains, num_*, semver_*, cidr, present)")),
        1 => {}
        _ => return Err(ConfigError::new(path, format!("more than one operator: {}", names.join(", ")))),
    }
    // Exactly one operator is set: the groups below can be tried in any order.
    if let Some(op) = text_operator(c, path)? {
        return Ok(op);
    }
    if let Some(op) = number_operator(c, path)? {
        return Ok(op);
    }
    if let Some(op) = semver_operator(c, path)? {
        return Ok(op);
    }
    if let Some(cidrs) = &c.cidr {
        return cidr_operator(cidrs, path);
    }
    Ok(Op::Present(c.present.unwrap_or(true)))
}

/// `equals`, `in`, `prefix`, `suffix`, `contains` (operands lowercased for `ignore_case`).
#[inline(never)]
fn text_operator(c: &Condition, path: &str) -> Result<Option<Op>, ConfigError> {
    let text = |s: &String| {
        if c.ignore_case {
            s.to_ascii_lowercase()
        } else {
            s.clone()
        }
    };
    Ok(Some(if let Some(v) = &c.equals {
        Op::Equals(text(v))
    } else if let Some(list) = &c.in_list {
        if list.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.in"),
                "empty list never matches",
            ));
        }
        Op::In(list.iter().map(text).collect())
    } else if let Some(v) = &c.prefix {
        Op::Prefix(text(v))
    } else if let Some(v) = &c.suffix {
        Op::Suffix(text(v))
    } else if let Some(v) = &c.contains {
        Op::Contains(text(v))
    } else {
        return Ok(None);
    }))
}

/// `num_eq`, `num_gt`, `num_gte`, `num_lt`, `num_lte`: a finite number.
#[inline(never)]
fn number_operator(c: &Condition, path: &str) -> Result<Option<Op>, ConfigError> {
    let (cmp, n, op) = if let Some(n) = c.num_eq {
        (Cmp::Eq, n, "num_eq")
    } else if let Some(n) = c.num_gt {
        (Cmp::Gt, n, "num_gt")
    } else if let Some(n) = c.num_gte {
        (Cmp::Gte, n, "num_gte")
    } else if let Some(n) = c.num_lt {
        (Cmp::Lt, n, "num_lt")
    } else if let Some(n) = c.num_lte {
        (Cmp::Lte, n, "num_lte")
    } else {
        return Ok(None);
    };
    if !n.is_finite() {
        return Err(ConfigError::new(
            format!("{path}.{op}"),
            "not a finite number",
        ));
    }
    Ok(Some(Op::Number(cmp, n)))
}

/// `semver_eq`, `semver_gt`, `semver_gte`, `semver_lt`, `semver_lte`: a version.
#[inline(never)]
fn semver_operator(c: &Condition, path: &str) -> Result<Option<Op>, ConfigError> {
    let (cmp, v, op) = if let Some(v) = &c.semver_eq {
        (Cmp::Eq, v, "semver_eq")
    } else if let Some(v) = &c.semver_gt {
        (Cmp::Gt, v, "semver_gt")
    } else if let Some(v) = &c.semver_gte {
        (Cmp::Gte, v, "semver_gte")
    } else if let Some(v) = &c.semver_lt {
        (Cmp::Lt, v, "semver_lt")
    } else if let Some(v) = &c.semver_lte {
        (Cmp::Lte, v, "semver_lte")
    } else {
        return Ok(None);
    };
    let version = Version::parse(v).map_err(|e| ConfigError::new(format!("{path}.{op}"), e.0))?;
    Ok(Some(Op::Semver(cmp, version)))
}

/// `cidr`: one network or a list, none empty.
#[inline(never)]
fn cidr_operator(cidrs: &OneOrMany, path: &str) -> Result<Op, ConfigError> {
    let list = cidrs.to_vec();
    if list.is_empty() {
        return Err(ConfigError::new(
            format!("{path}.cidr"),
            "empty list never matches",
        ));
    }
    let parsed = list
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Cidr::parse(s).map_err(|e| ConfigError::new(format!("{path}.cidr[{i}]"), e.0))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Op::Cidr(parsed))
}
