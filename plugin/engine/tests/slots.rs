//! The request path's small lists: a list filled to the inline size keeps growing on push.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_engine::slots::Slots;

#[test]
fn a_list_filled_to_the_inline_size_takes_one_more() {
    let mut s: Slots<u8, 4> = Slots::filled(7, 4);
    s.push(9);
    assert_eq!(&s[..], &[7, 7, 7, 7, 9]);
}
