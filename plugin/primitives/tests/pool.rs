#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The small-block pool keeps what every allocator promises: blocks of the asked size and
//! alignment that do not overlap while live, contents kept across `realloc`, zeroed memory from
//! `alloc_zeroed`; and it reuses freed small blocks instead of asking the inner allocator.
use sluice_primitives::pool::{Pool, MAX_POOLED};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// System's allocator, counting the calls that reach it.
#[derive(Default)]
struct Counting {
    allocs: Cell<usize>,
    deallocs: Cell<usize>,
    reallocs: Cell<usize>,
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocs.set(self.allocs.get() + 1);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        self.deallocs.set(self.deallocs.get() + 1);
        System.dealloc(block, layout)
    }
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.reallocs.set(self.reallocs.get() + 1);
        System.realloc(block, layout, new_size)
    }
}

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

unsafe fn fill(block: *mut u8, size: usize, byte: u8) {
    std::ptr::write_bytes(block, byte, size);
}

unsafe fn holds(block: *const u8, size: usize, byte: u8) -> bool {
    std::slice::from_raw_parts(block, size)
        .iter()
        .all(|b| *b == byte)
}

#[test]
fn live_blocks_keep_their_contents_and_alignment() {
    let pool = Pool::new(Counting::default());
    let sizes = [
        1, 7, 8, 9, 15, 16, 17, 31, 32, 100, 255, 256, 257, 512, 513, 1000, 1024, 1025, 9000,
    ];
    let aligns = [1, 2, 4, 8, 16, 64];
    let mut live = Vec::new();
    unsafe {
        for (i, &size) in sizes.iter().enumerate() {
            for &align in &aligns {
                let l = layout(size, align);
                let block = pool.alloc(l);
                assert!(!block.is_null());
                assert_eq!(block as usize % align, 0, "size {size} align {align}");
                let byte = (i * 7 + align) as u8;
                fill(block, size, byte);
                live.push((block, l, byte));
            }
        }
        // No block overwrote another.
        for &(block, l, byte) in &live {
            assert!(holds(block, l.size(), byte), "{l:?}");
        }
        for (block, l, _) in live {
            pool.dealloc(block, l);
        }
    }
}

#[test]
fn a_freed_small_block_is_reused_without_the_inner_allocator() {
    let pool = Pool::new(Counting::default());
    unsafe {
        let a = pool.alloc(layout(24, 8));
        let b = pool.alloc(layout(40, 8));
        assert_eq!(pool_inner(&pool).allocs.get(), 2);
        pool.dealloc(a, layout(24, 8));
        pool.dealloc(b, layout(40, 8));
        assert_eq!(
            pool_inner(&pool).deallocs.get(),
            0,
            "small blocks stay in the pool"
        );
        // Same 8-byte class (17..=24): the block freed last comes back first.
        let c = pool.alloc(layout(20, 4));
        assert_eq!(c, a);
        let d = pool.alloc(layout(33, 8));
        assert_eq!(d, b);
        let e = pool.alloc(layout(24, 8));
        assert_ne!(e, a, "an empty class asks the inner allocator");
        assert_eq!(pool_inner(&pool).allocs.get(), 3);
        for (block, size) in [(c, 20), (d, 33), (e, 24)] {
            pool.dealloc(block, layout(size, 8));
        }
    }
}

#[test]
fn large_and_over_aligned_blocks_go_to_the_inner_allocator() {
    let pool = Pool::new(Counting::default());
    unsafe {
        for l in [layout(MAX_POOLED + 1, 8), layout(64, 16), layout(10_000, 4)] {
            let block = pool.alloc(l);
            pool.dealloc(block, l);
        }
        assert_eq!(pool_inner(&pool).allocs.get(), 3);
        assert_eq!(pool_inner(&pool).deallocs.get(), 3);
    }
}

#[test]
fn realloc_keeps_the_contents_across_every_kind_of_move() {
    let pool = Pool::new(Counting::default());
    // (from, to): within a class, across classes (16-byte steps and powers of two), small →
    // large, large → small, large → large.
    let moves = [
        (20, 30),
        (20, 200),
        (200, 20),
        (100, 300),
        (300, 1000),
        (1000, 1024),
        (1000, 4096),
        (100, 9000),
        (9000, 100),
        (9000, 20_000),
    ];
    unsafe {
        for (from, to) in moves {
            let block = pool.alloc(layout(from, 8));
            fill(block, from, 0xAB);
            let moved = pool.realloc(block, layout(from, 8), to);
            assert!(!moved.is_null());
            assert!(holds(moved, from.min(to), 0xAB), "{from} → {to}");
            fill(moved, to, 0xCD);
            pool.dealloc(moved, layout(to, 8));
        }
        // Within a class the block stays where it is.
        for (from, to) in [(17, 24), (300, 512), (513, 1024)] {
            let block = pool.alloc(layout(from, 8));
            assert_eq!(
                pool.realloc(block, layout(from, 8), to),
                block,
                "{from} → {to}"
            );
            pool.dealloc(block, layout(to, 8));
        }
        let before = pool_inner(&pool).reallocs.get();
        let big = pool.alloc(layout(5000, 8));
        let grown = pool.realloc(big, layout(5000, 8), 10_000);
        assert_eq!(
            pool_inner(&pool).reallocs.get(),
            before + 1,
            "large blocks grow in place when they can"
        );
        pool.dealloc(grown, layout(10_000, 8));
    }
}

#[test]
fn alloc_zeroed_zeroes_a_reused_block() {
    let pool = Pool::new(Counting::default());
    unsafe {
        let block = pool.alloc(layout(48, 8));
        fill(block, 48, 0xFF);
        pool.dealloc(block, layout(48, 8));
        let zeroed = pool.alloc_zeroed(layout(48, 8));
        assert_eq!(zeroed, block);
        assert!(holds(zeroed, 48, 0));
        pool.dealloc(zeroed, layout(48, 8));
        let large = pool.alloc_zeroed(layout(10_000, 8));
        assert!(holds(large, 10_000, 0));
        pool.dealloc(large, layout(10_000, 8));
    }
}

fn pool_inner(pool: &Pool<Counting>) -> &Counting {
    pool.inner()
}
