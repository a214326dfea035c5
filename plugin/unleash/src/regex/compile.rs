//! Tree -> Thompson NFA. The construction is regex-lite's, state for state, because its
//! size limit is defined on that program: the same patterns must be "too big" for both.

use super::node::{Kind, Look, Node};
use super::Error;

/// Bytes regex-lite (64-bit) charges per state, per split target, per class range and
/// per capture group slot; a named group adds its name's length plus 4.
const STATE_BYTES: usize = 32;
const TARGET_BYTES: usize = 4;
const RANGE_BYTES: usize = 8;
const GROUP_BYTES: usize = 16;
const NAME_EXTRA_BYTES: usize = 4;

pub(super) type StateId = u32;

#[derive(Debug)]
pub(super) enum State {
    /// Consume this char, go to the target.
    Char(char, StateId),
    /// Consume a char in these sorted ranges, go to the target.
    Ranges(Box<[(char, char)]>, StateId),
    /// Go to every target (epsilon).
    Split(Vec<StateId>),
    /// Go to the target if the assertion holds (always if None; also group boundaries).
    Goto(StateId, Option<Look>),
    Fail,
    Match,
}

#[derive(Debug)]
pub(super) struct Program {
    pub(super) states: Vec<State>,
    pub(super) start: StateId,
}

/// A compiled piece: where it starts and the state whose exit is patched to what follows.
#[derive(Clone, Copy)]
struct Piece {
    start: StateId,
    end: StateId,
}

struct Compiler {
    states: Vec<State>,
    /// Capture group slots so far (highest index + 1).
    groups: usize,
    /// Bytes beyond the states themselves: split targets, ranges, group names.
    extra: usize,
    limit: usize,
}

/// Compiles `node` as regex-lite does (inside the implicit group 0, then a match state).
pub(super) fn compile(node: &Node, limit: usize) -> Result<Program, Error> {
    let mut compiler = Compiler {
        states: Vec::new(),
        groups: 0,
        extra: 0,
        limit,
    };
    let body = compiler.group(0, 0, node)?;
    let done = compiler.add(State::Match)?;
    compiler.patch(body.end, done)?;
    Ok(Program {
        states: compiler.states,
        start: body.start,
    })
}

impl Compiler {
    fn check_size(&self) -> Result<(), Error> {
        let size = self.states.len() * STATE_BYTES + self.groups * GROUP_BYTES + self.extra;
        if size > self.limit {
            return Err(Error {
                what: "compiled regex exceeds the size limit",
                at: None,
            });
        }
        Ok(())
    }

    fn add(&mut self, state: State) -> Result<StateId, Error> {
        let id = StateId::try_from(self.states.len()).map_err(|_| Error {
            what: "too many states",
            at: None,
        })?;
        if let State::Ranges(ranges, _) = &state {
            self.extra += ranges.len() * RANGE_BYTES;
        }
        self.states.push(state);
        self.check_size()?;
        Ok(id)
    }

    fn one(&mut self, state: State) -> Result<Piece, Error> {
        let id = self.add(state)?;
        Ok(Piece { start: id, end: id })
    }

    fn empty(&mut self) -> Result<StateId, Error> {
        self.add(State::Goto(0, None))
    }

    fn split(&mut self) -> Result<StateId, Error> {
        self.add(State::Split(Vec::new()))
    }

    /// Points `from`'s exit at `to` (a split gains one more target).
    fn patch(&mut self, from: StateId, to: StateId) -> Result<(), Error> {
        let Some(state) = self.states.get_mut(from as usize) else {
            return Ok(());
        };
        match state {
            State::Char(_, target) | State::Ranges(_, target) | State::Goto(target, _) => {
                *target = to;
            }
            State::Split(targets) => {
                targets.push(to);
                self.extra += TARGET_BYTES;
                self.check_size()?;
            }
            State::Fail | State::Match => {}
        }
        Ok(())
    }

    #[inline(never)]
    fn node(&mut self, node: &Node) -> Result<Piece, Error> {
        match &node.kind {
            Kind::Empty => self.one(State::Goto(0, None)),
            Kind::Char(c) => self.one(State::Char(*c, 0)),
            Kind::Class(ranges) if ranges.is_empty() => self.one(State::Fail),
            Kind::Class(ranges) => self.one(State::Ranges(ranges.as_slice().into(), 0)),
            Kind::Look(look) => self.one(State::Goto(0, Some(*look))),
            Kind::Repeat { min, max, sub } => self.repeat(*min, *max, sub),
            Kind::Group {
                index,
                name_len,
                sub,
            } => self.group(*index, *name_len, sub),
            Kind::Concat(subs) => self.sequence(&mut subs.iter()),
            Kind::Alternation(subs) => self.alternation(subs),
            // parse() rejects a tree that still holds one.
            Kind::TooDeep => self.one(State::Fail),
        }
    }

    /// The pieces one after the other; an empty state when there are none.
    #[inline(never)]
    fn sequence(&mut self, nodes: &mut dyn Iterator<Item = &Node>) -> Result<Piece, Error> {
        let mut whole: Option<Piece> = None;
        for node in nodes {
            let piece = self.node(node)?;
            whole = Some(match whole {
                None => piece,
                Some(before) => {
                    self.patch(before.end, piece.start)?;
                    Piece {
                        start: before.start,
                        end: piece.end,
                    }
                }
            });
        }
        match whole {
            Some(piece) => Ok(piece),
            None => self.one(State::Goto(0, None)),
        }
    }

    #[inline(never)]
    fn alternation(&mut self, subs: &[Node]) -> Result<Piece, Error> {
        let mut pieces = Vec::with_capacity(subs.len());
        for sub in subs.iter().take(2) {
            pieces.push(self.node(sub)?);
        }
        let split = self.split()?;
        let end = self.empty()?;
        for sub in subs.iter().skip(2) {
            pieces.push(self.node(sub)?);
        }
        for piece in pieces {
            self.patch(split, piece.start)?;
            self.patch(piece.end, end)?;
        }
        Ok(Piece { start: split, end })
    }

    /// A capture group: an empty state either side (regex-lite's capture states).
    fn group(&mut self, index: u32, name_len: usize, sub: &Node) -> Result<Piece, Error> {
        let index = index as usize;
        if index >= self.groups {
            self.groups = index + 1;
            if name_len > 0 {
                self.extra += name_len + NAME_EXTRA_BYTES;
            }
        }
        let start = self.empty()?;
        let inner = self.node(sub)?;
        let end = self.empty()?;
        self.patch(start, inner.start)?;
        self.patch(inner.end, end)?;
        Ok(Piece { start, end })
    }
}

/// Repetitions, each shaped as regex-lite shapes it.
impl Compiler {
    fn repeat(&mut self, min: u32, max: Option<u32>, sub: &Node) -> Result<Piece, Error> {
        match (min, max) {
            (0, Some(1)) => self.zero_or_one(sub),
            (min, None) => self.at_least(sub, min),
            (min, Some(max)) if min == max => self.exactly(sub, min),
            (min, Some(max)) => self.bounded(sub, min, max),
        }
    }

    fn exactly(&mut self, sub: &Node, n: u32) -> Result<Piece, Error> {
        self.sequence(&mut std::iter::repeat_n(sub, n as usize))
    }

    #[inline(never)]
    fn zero_or_one(&mut self, sub: &Node) -> Result<Piece, Error> {
        let split = self.split()?;
        let inner = self.node(sub)?;
        let empty = self.empty()?;
        self.patch(split, inner.start)?;
        self.patch(split, empty)?;
        self.patch(inner.end, empty)?;
        Ok(Piece {
            start: split,
            end: empty,
        })
    }

    /// `sub{min,max}`: `min` copies, then each optional copy may skip to the end.
    #[inline(never)]
    fn bounded(&mut self, sub: &Node, min: u32, max: u32) -> Result<Piece, Error> {
        let prefix = self.exactly(sub, min)?;
        let empty = self.empty()?;
        let mut end = prefix.end;
        for _ in min..max {
            let split = self.split()?;
            let inner = self.node(sub)?;
            self.patch(end, split)?;
            self.patch(split, inner.start)?;
            self.patch(split, empty)?;
            end = inner.end;
        }
        self.patch(end, empty)?;
        Ok(Piece {
            start: prefix.start,
            end: empty,
        })
    }

    fn at_least(&mut self, sub: &Node, n: u32) -> Result<Piece, Error> {
        match n {
            0 if sub.matches_empty() => self.star_of_empty(sub),
            0 => self.star(sub),
            1 => self.plus(sub),
            _ => self.at_least_n(sub, n),
        }
    }

    /// `x*`: one split that enters x or leaves, x looping back to it.
    #[inline(never)]
    fn star(&mut self, sub: &Node) -> Result<Piece, Error> {
        let split = self.split()?;
        let inner = self.node(sub)?;
        self.patch(split, inner.start)?;
        self.patch(inner.end, split)?;
        Ok(Piece {
            start: split,
            end: split,
        })
    }

    /// `x*` where x can match empty: regex-lite compiles it as `(x+)?`.
    #[inline(never)]
    fn star_of_empty(&mut self, sub: &Node) -> Result<Piece, Error> {
        let inner = self.node(sub)?;
        let plus = self.split()?;
        self.patch(inner.end, plus)?;
        self.patch(plus, inner.start)?;
        let question = self.split()?;
        let empty = self.empty()?;
        self.patch(question, inner.start)?;
        self.patch(question, empty)?;
        self.patch(plus, empty)?;
        Ok(Piece {
            start: question,
            end: empty,
        })
    }

    #[inline(never)]
    fn plus(&mut self, sub: &Node) -> Result<Piece, Error> {
        let inner = self.node(sub)?;
        let split = self.split()?;
        self.patch(inner.end, split)?;
        self.patch(split, inner.start)?;
        Ok(Piece {
            start: inner.start,
            end: split,
        })
    }

    /// `x{n,}`, n >= 2: n - 1 copies, then `x+`.
    #[inline(never)]
    fn at_least_n(&mut self, sub: &Node, n: u32) -> Result<Piece, Error> {
        let prefix = self.exactly(sub, n - 1)?;
        let last = self.plus(sub)?;
        self.patch(prefix.end, last.start)?;
        Ok(Piece {
            start: prefix.start,
            end: last.end,
        })
    }
}
