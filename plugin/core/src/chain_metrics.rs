//! Counters for decisions carried down the call chain: tokens signed,
//! accepted and rejected (by reason), and incoming baggage not read whole.
//! Counted per request into plain integers, handed to the host on each tick.
use crate::decision::{Decision, TokenStatus};
use crate::engine::request::BaggageFlaw;
use crate::host::{MetricKind, Stats};
use crate::token::Rejection;
use std::cell::Cell;

const REJECTIONS: usize = Rejection::ALL.len();
const FLAWS: usize = BaggageFlaw::ALL.len();

/// Stat ids (defined once per VM) and the counts since the last flush.
pub struct ChainMetrics {
    ids: Ids,
    signed: Cell<u64>,
    accepted: Cell<u64>,
    rejected: [Cell<u64>; REJECTIONS],
    flaws: [Cell<u64>; FLAWS],
}

struct Ids {
    signed: Option<u32>,
    accepted: Option<u32>,
    rejected: [Option<u32>; REJECTIONS],
    flaws: [Option<u32>; FLAWS],
}

impl ChainMetrics {
    /// `signs`: the config signs tokens (else only baggage flaws are counted,
    /// and only when baggage is read).
    #[inline(never)]
    pub fn define(stats: &dyn Stats, signs: bool, reads_baggage: bool) -> ChainMetrics {
        let counter = |on: bool, name: &str| {
            if on {
                stats.define(MetricKind::Counter, name)
            } else {
                None
            }
        };
        ChainMetrics {
            ids: Ids {
                signed: counter(signs, "sluice.decisions.signed"),
                accepted: counter(signs, "sluice.decisions.accepted"),
                rejected: Rejection::ALL
                    .map(|r| counter(signs, &format!("sluice.decisions.rejected.{}", r.name()))),
                flaws: BaggageFlaw::ALL.map(|f| {
                    counter(
                        reads_baggage,
                        &format!("sluice.baggage.rejected.{}", f.name()),
                    )
                }),
            },
            signed: Cell::new(0),
            accepted: Cell::new(0),
            rejected: Default::default(),
            flaws: Default::default(),
        }
    }

    pub fn count(&self, decision: &Decision, signed: bool) {
        let bump = |c: &Cell<u64>| c.set(c.get() + 1);
        match decision.token {
            TokenStatus::Accepted => bump(&self.accepted),
            TokenStatus::Rejected(why) => {
                if let Some(i) = Rejection::ALL.iter().position(|r| *r == why) {
                    bump(&self.rejected[i]);
                }
            }
            TokenStatus::Off | TokenStatus::Absent => {}
        }
        if signed {
            bump(&self.signed);
        }
        if let Some(flaw) = decision.baggage_flaw {
            if let Some(i) = BaggageFlaw::ALL.iter().position(|f| *f == flaw) {
                bump(&self.flaws[i]);
            }
        }
    }

    #[inline(never)]
    pub fn flush(&self, stats: &dyn Stats) {
        let add = |id: Option<u32>, count: &Cell<u64>| {
            let n = count.replace(0);
            if let (Some(id), true) = (id, n > 0) {
                stats.increment(id, n as i64);
            }
        };
        add(self.ids.signed, &self.signed);
        add(self.ids.accepted, &self.accepted);
        for (id, n) in self.ids.rejected.iter().zip(&self.rejected) {
            add(*id, n);
        }
        for (id, n) in self.ids.flaws.iter().zip(&self.flaws) {
            add(*id, n);
        }
    }
}
