//! One stable sort for the whole module. `slice::sort_by` is generic: every element type and
//! comparator got its own ~5 KB copy of the standard library's driftsort (eleven copies, ~60 KB
//! of the .wasm, all of it configure-time code). Here a single non-generic merge sort orders
//! indices and a small generic shim moves the elements; n log n, so a 1,000-flag config still
//! sorts in a few thousand comparisons.
use std::cmp::Ordering;

/// The stable order of `0..len` under `cmp` (which compares two indices): the returned
/// permutation lists the indices smallest first, equal ones in their original order.
pub fn permutation(len: usize, cmp: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<usize> {
    let mut from: Vec<usize> = (0..len).collect();
    let mut into: Vec<usize> = vec![0; len];
    // Bottom-up merge sort: runs of `width` merged pairwise until one run is left.
    let mut width = 1;
    while width < len {
        let mut start = 0;
        while start < len {
            let mid = (start + width).min(len);
            let end = (start + 2 * width).min(len);
            let (mut i, mut j, mut k) = (start, mid, start);
            while k < end {
                // Take from the left run on ties: that is what keeps the sort stable.
                let left = i < mid && (j >= end || cmp(from[i], from[j]) != Ordering::Greater);
                if left {
                    into[k] = from[i];
                    i += 1;
                } else {
                    into[k] = from[j];
                    j += 1;
                }
                k += 1;
            }
            start = end;
        }
        std::mem::swap(&mut from, &mut into);
        width *= 2;
    }
    from
}

/// Sorts `items` stably by `cmp`, like `slice::sort_by`, with one shared sort routine: only
/// the two index closures are generic, so each caller keeps a call instead of an inlined sort.
pub fn sort_by<T>(items: &mut [T], cmp: impl Fn(&T, &T) -> Ordering) {
    let Some(order) = sorted_order(items.len(), &mut |a, b| cmp(&items[a], &items[b])) else {
        return;
    };
    permute(order, &mut |a, b| items.swap(a, b));
}

/// The permutation that sorts `0..len` under `cmp`, or `None` when it is in order already
/// (short lists, names written sorted): n - 1 comparisons and no allocation then.
#[inline(never)]
fn sorted_order(len: usize, cmp: &mut dyn FnMut(usize, usize) -> Ordering) -> Option<Vec<usize>> {
    if (1..len).all(|i| cmp(i - 1, i) != Ordering::Greater) {
        return None;
    }
    Some(permutation(len, cmp))
}

/// Moves, by swaps, the element at `order[k]` to position `k` for every `k`.
#[inline(never)]
fn permute(order: Vec<usize>, swap: &mut dyn FnMut(usize, usize)) {
    for k in 0..order.len() {
        // Positions before `k` are final; an element that was there has been swapped out to
        // the position its index maps to, so follow the chain until it leaves them.
        let mut from = order.get(k).copied().unwrap_or(k);
        while from < k {
            from = order.get(from).copied().unwrap_or(k);
        }
        swap(k, from);
    }
}

/// Sorts `items` stably by a key, like `slice::sort_by_key`.
pub fn sort_by_key<T, K: Ord>(items: &mut [T], key: impl Fn(&T) -> K) {
    sort_by(items, |a, b| key(a).cmp(&key(b)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_the_standard_stable_sort() {
        // Pseudo-random keys with many ties, at lengths around the merge widths.
        let mut seed: u32 = 7;
        for len in [0, 1, 2, 3, 5, 8, 9, 31, 64, 65, 1000] {
            let mut items: Vec<(u32, usize)> = (0..len)
                .map(|i| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    ((seed >> 16) % 17, i)
                })
                .collect();
            let mut expected = items.clone();
            expected.sort_by_key(|p| p.0);
            sort_by_key(&mut items, |p| p.0);
            assert_eq!(items, expected, "length {len}");
        }
    }

    #[test]
    fn equal_elements_keep_their_order() {
        let mut items = vec![("b", 1), ("a", 2), ("b", 3), ("a", 4), ("b", 5)];
        sort_by(&mut items, |x, y| x.0.cmp(y.0));
        assert_eq!(items, [("a", 2), ("a", 4), ("b", 1), ("b", 3), ("b", 5)]);
    }

    #[test]
    fn sorted_input_and_one_element_out_of_place() {
        // In order already, with ties: left as it is.
        let mut items = vec![("a", 1), ("a", 2), ("b", 3), ("c", 4)];
        sort_by(&mut items, |x, y| x.0.cmp(y.0));
        assert_eq!(items, [("a", 1), ("a", 2), ("b", 3), ("c", 4)]);
        // In order but for the last pair: sorted, ties still in their order.
        let mut items = vec![("a", 1), ("b", 2), ("b", 3), ("d", 4), ("c", 5)];
        sort_by(&mut items, |x, y| x.0.cmp(y.0));
        assert_eq!(items, [("a", 1), ("b", 2), ("b", 3), ("c", 5), ("d", 4)]);
    }

    #[test]
    fn the_permutation_lists_indices_smallest_first() {
        let keys = [30, 10, 20, 10];
        let order = permutation(keys.len(), &mut |a, b| keys[a].cmp(&keys[b]));
        assert_eq!(order, [1, 3, 2, 0]);
    }
}
