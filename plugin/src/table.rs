//! Values by context id, for the HTTP contexts of a VM.
//!
//! Envoy numbers a VM's contexts in sequence, so the id's low bits alone place the live ones in
//! distinct slots of a power-of-two table kept at most half full: a lookup is one slot read and
//! one compare. Against hashbrown with a one-multiply hash this saves ~190 wasm instructions per
//! request over create, log, done and delete (bench-host, demo.json). Collisions (a long-lived
//! stream whose id shares the low bits of a new one) probe linearly; removal shifts the
//! following entries back, so no tombstones build up.
pub struct IdTable<T> {
    /// `None`: empty. The length is 0 or a power of two.
    slots: Vec<Option<(u32, T)>>,
    len: usize,
}

impl<T> IdTable<T> {
    pub const fn new() -> Self {
        IdTable {
            slots: Vec::new(),
            len: 0,
        }
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The slot holding `id`, or the empty slot where it would go; `None` while the table has no
    /// slots. Terminates: at most half the slots are in use.
    fn find(&self, id: u32) -> Option<usize> {
        let mask = self.mask();
        let mut at = id as usize & mask;
        loop {
            match self.slots.get(at)? {
                Some((key, _)) if *key != id => at = (at + 1) & mask,
                _ => return Some(at),
            }
        }
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        let at = self.find(id)?;
        match self.slots.get_mut(at)? {
            Some((_, value)) => Some(value),
            None => None,
        }
    }

    /// Stores `value` under `id`, replacing (and dropping) any value it had.
    pub fn insert(&mut self, id: u32, value: T) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        self.place(id, value);
    }

    /// `insert` once the table has room.
    fn place(&mut self, id: u32, value: T) {
        let Some(slot) = self.find(id).and_then(|at| self.slots.get_mut(at)) else {
            return;
        };
        if slot.is_none() {
            self.len += 1;
        }
        *slot = Some((id, value));
    }

    /// Takes the value stored under `id` out of the table; `None` when there was none.
    pub fn remove(&mut self, id: u32) -> Option<T> {
        let mut hole = self.find(id)?;
        let (_, value) = self.slots.get_mut(hole)?.take()?;
        self.len -= 1;
        // Backward shift: an entry after the hole moves into it when the hole lies between the
        // entry's home slot and where it sits, so every entry stays reachable from its home.
        let mask = self.mask();
        let mut at = hole;
        loop {
            at = (at + 1) & mask;
            let home = match self.slots.get(at) {
                Some(Some((key, _))) => *key as usize & mask,
                _ => return Some(value),
            };
            if (at.wrapping_sub(home) & mask) >= (at.wrapping_sub(hole) & mask) {
                self.slots.swap(hole, at);
                hole = at;
            }
        }
    }

    /// Twice the slots (8 at first), every entry placed again.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(8);
        let old = std::mem::replace(&mut self.slots, Vec::with_capacity(size));
        self.slots.resize_with(size, || None);
        self.len = 0;
        for (id, value) in old.into_iter().flatten() {
            self.place(id, value);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::IdTable;
    use std::collections::HashMap;

    /// Sequential ids with a few long-lived ones and colliding ids, checked against a HashMap at
    /// every step: each id finds its own value, removed ones are gone.
    #[test]
    fn behaves_as_a_map_under_sequential_and_colliding_ids() {
        let mut table = IdTable::new();
        let mut model = HashMap::new();
        let mut next = 1u32;
        for round in 0..2000u32 {
            // New contexts, some with ids that collide modulo any table size.
            for id in [next, next + 1, next * 64] {
                table.insert(id, id ^ round);
                model.insert(id, id ^ round);
            }
            next += 2;
            // Most contexts end soon; every 97th lives on.
            let ending: Vec<u32> = model
                .keys()
                .copied()
                .filter(|id| id % 97 != 0 && (id + round) % 3 == 0)
                .collect();
            for id in ending {
                let stored = model.remove(&id);
                assert!(stored.is_some());
                assert_eq!(table.remove(id), stored, "id {id}: its value comes back");
                assert!(table.get_mut(id).is_none());
                assert!(table.remove(id).is_none(), "id {id} removed twice");
            }
            for (id, value) in &model {
                assert_eq!(table.get_mut(*id), Some(&mut value.clone()), "id {id}");
            }
            assert_eq!(table.len, model.len());
        }
        assert!(table.get_mut(u32::MAX).is_none());
    }

    #[test]
    fn an_empty_table_finds_nothing() {
        let mut table: IdTable<u8> = IdTable::new();
        assert!(table.get_mut(7).is_none());
        assert!(table.get_mut(7).is_none());
        assert!(table.remove(7).is_none());
    }
}
