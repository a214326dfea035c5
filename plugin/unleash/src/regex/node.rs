//! The parsed pattern: a tree shaped like regex-lite's HIR (same simplifications), because
//! regex-lite's nesting limit and program size are defined on that shape.

/// Nodes deeper than this make the pattern an error (regex-lite's default nest limit).
pub(super) const NEST_LIMIT: u8 = 50;

/// A zero-width assertion, judged from the characters either side of a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Look {
    Start,
    End,
    StartLf,
    EndLf,
    StartCrlf,
    EndCrlf,
    Word,
    NotWord,
    WordStart,
    WordEnd,
    WordStartHalf,
    WordEndHalf,
}

#[derive(Debug)]
pub(super) enum Kind {
    Empty,
    Char(char),
    /// Sorted ranges; empty matches nothing.
    Class(Vec<(char, char)>),
    Look(Look),
    Repeat {
        min: u32,
        max: Option<u32>,
        sub: Box<Node>,
    },
    /// A capture group: its index and name length count toward the program size.
    Group {
        index: u32,
        name_len: usize,
        sub: Box<Node>,
    },
    Concat(Vec<Node>),
    Alternation(Vec<Node>),
    /// A subtree deeper than [`NEST_LIMIT`]: the pattern is an error unless a `{0}`
    /// repetition discards it. Kept as a leaf so no tree is deep enough to overflow the
    /// stack when walked or dropped.
    TooDeep,
}

#[derive(Debug)]
pub(super) struct Node {
    pub(super) kind: Kind,
    /// Edges to the deepest leaf, at most NEST_LIMIT.
    height: u8,
}

impl Node {
    pub(super) fn leaf(kind: Kind) -> Node {
        Node { kind, height: 0 }
    }

    pub(super) fn empty() -> Node {
        Node::leaf(Kind::Empty)
    }

    pub(super) fn is_too_deep(&self) -> bool {
        matches!(self.kind, Kind::TooDeep)
    }

    /// The height of a node over `subs`, or None when it would nest deeper than the limit.
    fn height_over<'a>(subs: impl IntoIterator<Item = &'a Node>) -> Option<u8> {
        let mut height = 1;
        for sub in subs {
            if sub.is_too_deep() || sub.height >= NEST_LIMIT {
                return None;
            }
            height = height.max(sub.height + 1);
        }
        Some(height)
    }

    fn parent(kind: Kind, height: Option<u8>) -> Node {
        match height {
            Some(height) => Node { kind, height },
            None => Node::leaf(Kind::TooDeep),
        }
    }

    /// `sub{min,max}` (`max` None: unbounded), simplified like regex-lite: `{0}` is empty,
    /// `{1}` is `sub`.
    pub(super) fn repeat(min: u32, max: Option<u32>, sub: Node) -> Node {
        match (min, max) {
            (0, Some(0)) => Node::empty(),
            (1, Some(1)) => sub,
            _ => {
                let height = Node::height_over([&sub]);
                let sub = Box::new(sub);
                Node::parent(Kind::Repeat { min, max, sub }, height)
            }
        }
    }

    pub(super) fn group(index: u32, name_len: usize, sub: Node) -> Node {
        let height = Node::height_over([&sub]);
        let sub = Box::new(sub);
        Node::parent(
            Kind::Group {
                index,
                name_len,
                sub,
            },
            height,
        )
    }

    pub(super) fn concat(mut subs: Vec<Node>) -> Node {
        if subs.len() < 2 {
            return subs.pop().unwrap_or_else(Node::empty);
        }
        let height = Node::height_over(&subs);
        Node::parent(Kind::Concat(subs), height)
    }

    pub(super) fn alternation(mut subs: Vec<Node>) -> Node {
        if subs.len() < 2 {
            return subs.pop().unwrap_or_else(Node::empty);
        }
        let height = Node::height_over(&subs);
        Node::parent(Kind::Alternation(subs), height)
    }

    /// Whether the node can match the empty string (regex-lite compiles `x*` differently
    /// then, which changes the program size).
    pub(super) fn matches_empty(&self) -> bool {
        match &self.kind {
            Kind::Empty | Kind::Look(_) => true,
            Kind::Char(_) | Kind::Class(_) | Kind::TooDeep => false,
            Kind::Repeat { min, sub, .. } => *min == 0 || sub.matches_empty(),
            Kind::Group { sub, .. } => sub.matches_empty(),
            Kind::Concat(subs) => subs.iter().all(Node::matches_empty),
            Kind::Alternation(subs) => subs.iter().any(Node::matches_empty),
        }
    }
}
