//! The Pike VM: every NFA state alive at a position is tracked at once, so a search costs
//! O(haystack chars x program states) whatever the pattern (no backtracking blowup).

use super::compile::{Program, State, StateId};
use super::node::Look;

/// States alive at one position, each once, in insertion order (a sparse set: O(1)
/// insert, test and clear).
struct StateSet {
    dense: Vec<StateId>,
    sparse: Vec<u32>,
}

impl StateSet {
    fn new(states: usize) -> StateSet {
        StateSet {
            dense: Vec::with_capacity(states),
            sparse: vec![0; states],
        }
    }

    fn contains(&self, id: StateId) -> bool {
        let Some(&slot) = self.sparse.get(id as usize) else {
            return true; // out of range: never insert
        };
        self.dense.get(slot as usize) == Some(&id)
    }

    fn insert(&mut self, id: StateId) -> bool {
        if self.contains(id) {
            return false;
        }
        if let Some(slot) = self.sparse.get_mut(id as usize) {
            *slot = self.dense.len() as u32;
        }
        self.dense.push(id);
        true
    }

    fn clear(&mut self) {
        self.dense.clear();
    }
}

/// The characters either side of a position, which decide every assertion there.
#[derive(Clone, Copy)]
struct Around {
    before: Option<char>,
    after: Option<char>,
}

fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Around {
    fn holds(self, look: Look) -> bool {
        let Around { before, after } = self;
        match look {
            Look::Start => before.is_none(),
            Look::End => after.is_none(),
            Look::StartLf => matches!(before, None | Some('\n')),
            Look::EndLf => matches!(after, None | Some('\n')),
            Look::StartCrlf => match before {
                None | Some('\n') => true,
                Some('\r') => after != Some('\n'),
                _ => false,
            },
            Look::EndCrlf => match after {
                None | Some('\r') => true,
                Some('\n') => before != Some('\r'),
                _ => false,
            },
            Look::Word => is_word(before) != is_word(after),
            Look::NotWord => is_word(before) == is_word(after),
            Look::WordStart => !is_word(before) && is_word(after),
            Look::WordEnd => is_word(before) && !is_word(after),
            Look::WordStartHalf => !is_word(before),
            Look::WordEndHalf => !is_word(after),
        }
    }
}

struct Vm<'p> {
    program: &'p Program,
    /// Epsilon-closure work list.
    stack: Vec<StateId>,
}

impl Vm<'_> {
    /// Adds `from` and every state reachable from it without consuming a char.
    #[inline(never)]
    fn add_closure(&mut self, set: &mut StateSet, from: StateId, around: Around) {
        self.stack.push(from);
        while let Some(id) = self.stack.pop() {
            if !set.insert(id) {
                continue;
            }
            match self.program.states.get(id as usize) {
                Some(State::Goto(target, look)) if look.is_none_or(|l| around.holds(l)) => {
                    self.stack.push(*target);
                }
                Some(State::Split(targets)) => self.stack.extend(targets.iter().rev()),
                _ => {}
            }
        }
    }

    /// Moves every state of `current` that accepts `c` into `next`; true on a match state.
    #[inline(never)]
    fn step(
        &mut self,
        current: &StateSet,
        next: &mut StateSet,
        c: Option<char>,
        around: Around,
    ) -> bool {
        for &id in &current.dense {
            let target = match (self.program.states.get(id as usize), c) {
                (Some(State::Match), _) => return true,
                (Some(State::Char(want, target)), Some(c)) if *want == c => *target,
                (Some(State::Ranges(ranges, target)), Some(c)) if in_ranges(ranges, c) => *target,
                _ => continue,
            };
            self.add_closure(next, target, around);
        }
        false
    }
}

fn in_ranges(ranges: &[(char, char)], c: char) -> bool {
    let after = ranges.partition_point(|&(start, _)| start <= c);
    after > 0 && ranges.get(after - 1).is_some_and(|&(_, end)| c <= end)
}

/// Whether the program matches anywhere in `haystack`: a search started at every
/// position at once (the start state joins the live set at each step).
#[inline(never)]
pub(super) fn is_match(program: &Program, haystack: &str) -> bool {
    let n = program.states.len();
    let mut vm = Vm {
        program,
        stack: Vec::new(),
    };
    let (mut current, mut next) = (StateSet::new(n), StateSet::new(n));
    let mut chars = haystack.chars();
    let mut before = None;
    let mut at = chars.next();
    loop {
        vm.add_closure(&mut current, program.start, Around { before, after: at });
        let after = chars.clone().next();
        let around_next = Around { before: at, after };
        if vm.step(&current, &mut next, at, around_next) {
            return true;
        }
        if at.is_none() {
            return false;
        }
        std::mem::swap(&mut current, &mut next);
        next.clear();
        before = at;
        at = chars.next();
    }
}
