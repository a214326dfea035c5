#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The pool's size classes, as its memory bound depends on them: a small block costs the
//! inner allocator its class's size (8-byte steps up to 256 bytes, then 512 and 1024), no
//! more, and a freed block serves any later size of its class, never one of another class.
use sluice_primitives::pool::{Pool, MAX_POOLED};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;

/// System's allocator, recording the layouts asked of it.
#[derive(Default)]
struct Recording {
    asked: RefCell<Vec<(usize, usize)>>,
}

unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.asked
            .borrow_mut()
            .push((layout.size(), layout.align()));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        System.dealloc(block, layout)
    }
}

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

/// The block size the module documents for a pooled size.
fn class_size(size: usize) -> usize {
    match size {
        1..=256 => size.div_ceil(8) * 8,
        257..=512 => 512,
        _ => 1024,
    }
}

#[test]
fn a_small_block_costs_its_class_size_and_is_reused_for_any_size_of_the_class() {
    let pool = Pool::new(Recording::default());
    let mut live = Vec::new();
    unsafe {
        for size in 1..=MAX_POOLED {
            let align = [1, 2, 4, 8][size % 4];
            let l = layout(size, align);
            let block = pool.alloc(l);
            assert!(!block.is_null());
            assert_eq!(block as usize % align, 0);
            // The whole class size is usable.
            std::ptr::write_bytes(block, 0x5A, class_size(size));
            live.push((block, l));
        }
        let asked = pool.inner().asked.borrow().clone();
        let expected: Vec<(usize, usize)> =
            (1..=MAX_POOLED).map(|size| (class_size(size), 8)).collect();
        assert_eq!(asked, expected);
        for (block, l) in live.drain(..) {
            pool.dealloc(block, l);
        }
        // Every class now holds freed blocks: each size is served without the inner allocator.
        for size in (1..=MAX_POOLED).rev() {
            let l = layout(size, 8);
            live.push((pool.alloc(l), l));
        }
        assert_eq!(pool.inner().asked.borrow().len(), MAX_POOLED);
        for (block, l) in live {
            pool.dealloc(block, l);
        }
    }
}

#[test]
fn a_freed_block_serves_its_own_class_only() {
    let edges = [
        1, 7, 8, 9, 16, 17, 64, 65, 248, 249, 255, 256, 257, 300, 511, 512, 513, 1000, 1024,
    ];
    for &freed in &edges {
        for &asked in &edges {
            let pool = Pool::new(Recording::default());
            unsafe {
                let block = pool.alloc(layout(freed, 8));
                pool.dealloc(block, layout(freed, 8));
                let next = pool.alloc(layout(asked, 8));
                let same_class = class_size(freed) == class_size(asked);
                assert_eq!(next == block, same_class, "freed {freed}, asked {asked}");
                pool.dealloc(next, layout(asked, 8));
            }
        }
    }
}

#[test]
fn blocks_the_pool_does_not_serve_are_asked_for_as_they_are() {
    let pool = Pool::new(Recording::default());
    unsafe {
        for l in [
            layout(MAX_POOLED + 1, 8),
            layout(16, 16),
            layout(100, 64),
            layout(5000, 1),
        ] {
            let block = pool.alloc(l);
            assert_eq!(block as usize % l.align(), 0);
            pool.dealloc(block, l);
        }
    }
    assert_eq!(
        *pool.inner().asked.borrow(),
        [(MAX_POOLED + 1, 8), (16, 16), (100, 64), (5000, 1)]
    );
}
