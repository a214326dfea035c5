//! A small-block pool in front of an allocator, for the filter's single-threaded VM.
//!
//! Under wasm, the libc allocator (dlmalloc) spends 150–300 instructions per small `malloc` or
//! `free`: a request's few boxes and hostcall buffers cost more than its header lookups, and
//! loading a 1,000-flag config spends a quarter of its work there. Blocks of up to
//! [`MAX_POOLED`] bytes are instead kept, once freed, on a free list per size class (8-byte
//! steps up to 256 bytes, then 512 and 1024, which a request's header map fits) and
//! handed out again last-in first-out; everything larger, or aligned beyond 8, goes to the inner
//! allocator. Pooled blocks are never returned to it, which costs nothing under wasm (linear
//! memory never shrinks) and bounds the pool by the peak use of each size class.
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;

/// The largest block the pool serves.
pub const MAX_POOLED: usize = 1024;
/// Classes of 8-byte steps up to this size, then powers of two.
const STEPPED: usize = 256;
const STEP: usize = 8;
const CLASSES: usize = STEPPED / STEP + 2;
/// Pooled blocks are aligned to this (dlmalloc gives at least 8; a free block holds a pointer).
const ALIGN: usize = 8;

/// The pool over `inner`. Not thread-safe: see the `Sync` impl.
pub struct Pool<A> {
    inner: A,
    /// Per size class, the most recently freed block; each free block holds the next.
    free: UnsafeCell<[*mut u8; CLASSES]>,
}

impl<A> Pool<A> {
    pub const fn new(inner: A) -> Pool<A> {
        Pool {
            inner,
            free: UnsafeCell::new([ptr::null_mut(); CLASSES]),
        }
    }

    /// The allocator behind the pool.
    pub fn inner(&self) -> &A {
        &self.inner
    }
}

/// The size class of a layout the pool serves, else `None`.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size();
    if size == 0 || size > MAX_POOLED || layout.align() > ALIGN {
        return None;
    }
    if size <= STEPPED {
        return Some((size - 1) / STEP);
    }
    // 257..=512 → the first class after the steps, 513..=1024 → the next.
    let bits = usize::BITS - (size - 1).leading_zeros();
    Some(STEPPED / STEP + (bits as usize - 9))
}

/// The size of a class's blocks.
#[inline]
fn class_size(class: usize) -> usize {
    if class < STEPPED / STEP {
        (class + 1) * STEP
    } else {
        512 << (class - STEPPED / STEP)
    }
}

#[inline]
fn class_layout(class: usize) -> Layout {
    // In range by construction: at most MAX_POOLED bytes, alignment 8.
    unsafe { Layout::from_size_align_unchecked(class_size(class), ALIGN) }
}

// SAFETY: the filter's VM runs one thread (wasm32 without the threads proposal), the only
// place this is installed as the global allocator. Native tests use a pool from one thread.
#[cfg(target_arch = "wasm32")]
unsafe impl<A: Sync> Sync for Pool<A> {}

// Not inlined: every `Box`, `Vec` and `String` drop would carry a copy (+29 KB of module).
unsafe impl<A: GlobalAlloc> GlobalAlloc for Pool<A> {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            return self.inner.alloc(layout);
        };
        let free = &mut *self.free.get();
        let head = free[class];
        if head.is_null() {
            return self.inner.alloc(class_layout(class));
        }
        free[class] = *(head as *mut *mut u8);
        head
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if class_of(layout).is_none() {
            return self.inner.alloc_zeroed(layout);
        }
        // A pooled block may have been used before.
        let block = self.alloc(layout);
        if !block.is_null() {
            ptr::write_bytes(block, 0, layout.size());
        }
        block
    }

    #[inline(never)]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            return self.inner.dealloc(block, layout);
        };
        let free = &mut *self.free.get();
        *(block as *mut *mut u8) = free[class];
        free[class] = block;
    }

    #[inline(never)]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Both layouts share the alignment; only the size changes.
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        match (class_of(layout), class_of(new_layout)) {
            // The block already has room (a pooled block is its whole class).
            (Some(old), Some(new)) if old == new => block,
            // Neither is pooled: the inner allocator may grow in place.
            (None, None) => self.inner.realloc(block, layout, new_size),
            _ => {
                let moved = self.alloc(new_layout);
                if !moved.is_null() {
                    ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                    self.dealloc(block, layout);
                }
                moved
            }
        }
    }
}
