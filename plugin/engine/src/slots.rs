//! A vector that lives on the stack while it is small: the request path's per-request lists
//! (header values, cookies) without a heap allocation in the common case.
use std::ops::{Deref, DerefMut};

#[derive(Debug, Clone)]
pub struct Slots<T: Copy, const INLINE: usize = 16> {
    inline: [T; INLINE],
    len: usize,
    /// Used instead of `inline` once the list outgrows it.
    heap: Vec<T>,
}

impl<T: Copy, const INLINE: usize> Slots<T, INLINE> {
    /// An empty list; `fill` is only a placeholder for the unused inline slots.
    pub fn new(fill: T) -> Self {
        Slots {
            inline: [fill; INLINE],
            len: 0,
            heap: Vec::new(),
        }
    }

    /// `len` copies of `fill`.
    pub fn filled(fill: T, len: usize) -> Self {
        let mut slots = Slots::new(fill);
        if len <= INLINE {
            slots.len = len;
        } else {
            slots.heap = vec![fill; len];
        }
        slots
    }

    pub fn push(&mut self, value: T) {
        if self.heap.is_empty() && self.len < INLINE {
            self.inline[self.len] = value;
            self.len += 1;
            return;
        }
        self.spill(value);
    }

    /// `push` past the inline slots: the list moves to (or grows on) the heap.
    #[cold]
    #[inline(never)]
    fn spill(&mut self, value: T) {
        if self.heap.is_empty() {
            self.heap.extend_from_slice(&self.inline[..self.len]);
        }
        self.heap.push(value);
    }
}

impl<T: Copy + Default, const INLINE: usize> Default for Slots<T, INLINE> {
    fn default() -> Self {
        Slots::new(T::default())
    }
}

impl<T: Copy, const INLINE: usize> Deref for Slots<T, INLINE> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }
}

impl<T: Copy, const INLINE: usize> DerefMut for Slots<T, INLINE> {
    fn deref_mut(&mut self) -> &mut [T] {
        if self.heap.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.heap
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;

    #[test]
    fn grows_from_the_stack_to_the_heap_keeping_order() {
        let mut s: Slots<u32> = Slots::new(0u32);
        for i in 0..40 {
            s.push(i);
            assert_eq!(s.len(), i as usize + 1);
        }
        assert_eq!(&s[..3], &[0, 1, 2]);
        assert_eq!(s[39], 39);
        let big: Slots<u8> = Slots::filled(7u8, 20);
        assert_eq!(big.len(), 20);
        assert!(big.iter().all(|v| *v == 7));
        let small: Slots<Option<u8>, 4> = Slots::filled(None::<u8>, 3);
        assert_eq!(&small[..], &[None, None, None]);
    }
}
