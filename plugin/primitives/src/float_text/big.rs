//! Just enough of an unsigned bignum for exact float-to-decimal conversion: an f64 is
//! `mant * 2^exp`, so its digits (and the bounds of the values that read back as it) are ratios of
//! integers of up to ~1,130 bits. Fixed capacity, no heap; limbs above `len` are always zero.
//! The operations stay out of line: inlined into the digit loop they made one 7 KB function.
use core::cmp::Ordering;

/// 40 x 32 bits = 1,280 bits: the largest product needed is a subnormal's `mant * 10^324 * 10`
/// (~1,130 bits), as in core's own `Big32x40`.
const LIMBS: usize = 40;

#[derive(Clone, Copy)]
pub(super) struct Big {
    /// Little-endian 32-bit limbs.
    limbs: [u32; LIMBS],
    /// Limbs in use: the top one is non-zero (zero is `len == 0`).
    len: usize,
}

impl Big {
    pub(super) fn from_u64(v: u64) -> Big {
        let mut limbs = [0; LIMBS];
        for (limb, word) in limbs.iter_mut().zip([v as u32, (v >> 32) as u32]) {
            *limb = word;
        }
        let mut big = Big { limbs, len: 2 };
        big.trim();
        big
    }

    pub(super) fn is_zero(&self) -> bool {
        self.len == 0
    }

    fn used(&self) -> &[u32] {
        self.limbs.get(..self.len).unwrap_or(&[])
    }

    /// Drops zero limbs from the top.
    fn trim(&mut self) {
        while self.len > 0 && self.limbs.get(self.len - 1) == Some(&0) {
            self.len -= 1;
        }
    }

    /// Appends a non-zero carry (capacity is never exceeded for an f64's values).
    fn push(&mut self, carry: u32) {
        if carry != 0 {
            if let Some(slot) = self.limbs.get_mut(self.len) {
                *slot = carry;
                self.len += 1;
            }
        }
    }

    #[inline(never)]
    pub(super) fn mul_small(&mut self, k: u32) -> &mut Big {
        let mut carry = 0u64;
        for limb in self.limbs.iter_mut().take(self.len) {
            let v = u64::from(*limb) * u64::from(k) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        self.push(carry as u32);
        self
    }

    #[inline(never)]
    pub(super) fn mul_pow2(&mut self, bits: usize) -> &mut Big {
        let (words, shift) = (bits / 32, bits % 32);
        let mut out = [0u32; LIMBS];
        let mut carry = 0u64;
        // One limb past `len` (zero) so the last carry lands too.
        for (to, from) in out
            .iter_mut()
            .skip(words)
            .zip(self.limbs.iter().take(self.len + 1))
        {
            let v = (u64::from(*from) << shift) | carry;
            *to = v as u32;
            carry = v >> 32;
        }
        self.limbs = out;
        self.len = (self.len + words + 1).min(LIMBS);
        self.trim();
        self
    }

    pub(super) fn mul_pow10(&mut self, mut n: usize) -> &mut Big {
        const SMALL: [u32; 9] = [
            1,
            10,
            100,
            1_000,
            10_000,
            100_000,
            1_000_000,
            10_000_000,
            100_000_000,
        ];
        while n >= 9 {
            self.mul_small(1_000_000_000);
            n -= 9;
        }
        self.mul_small(SMALL.get(n).copied().unwrap_or(1))
    }

    #[inline(never)]
    pub(super) fn add(&mut self, other: &Big) -> &mut Big {
        let len = self.len.max(other.len);
        let mut carry = 0u64;
        for (limb, o) in self.limbs.iter_mut().zip(&other.limbs).take(len) {
            let v = u64::from(*limb) + u64::from(*o) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        self.len = len;
        self.push(carry as u32);
        self
    }

    /// `self - other`; `self >= other`.
    #[inline(never)]
    pub(super) fn sub(&mut self, other: &Big) -> &mut Big {
        let mut borrow = false;
        for (limb, o) in self.limbs.iter_mut().zip(&other.limbs).take(self.len) {
            let (v, b1) = limb.overflowing_sub(*o);
            let (v, b2) = v.overflowing_sub(u32::from(borrow));
            *limb = v;
            borrow = b1 || b2;
        }
        self.trim();
        self
    }

    /// Divides by 10^9 and returns the remainder: the next nine decimal digits from the bottom.
    #[inline(never)]
    pub(super) fn div_rem_1e9(&mut self) -> u32 {
        const D: u64 = 1_000_000_000;
        let mut rem = 0u64;
        for limb in self.limbs.iter_mut().take(self.len).rev() {
            let v = (rem << 32) | u64::from(*limb);
            *limb = (v / D) as u32;
            rem = v % D;
        }
        self.trim();
        rem as u32
    }
}

impl Ord for Big {
    #[inline(never)]
    fn cmp(&self, other: &Big) -> Ordering {
        self.len
            .cmp(&other.len)
            .then_with(|| self.used().iter().rev().cmp(other.used().iter().rev()))
    }
}

impl PartialOrd for Big {
    fn partial_cmp(&self, other: &Big) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Big {
    fn eq(&self, other: &Big) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Big {}

#[cfg(test)]
mod tests {
    use super::Big;

    fn value(b: &Big) -> u128 {
        b.used()
            .iter()
            .rev()
            .fold(0u128, |acc, &w| (acc << 32) | u128::from(w))
    }

    #[test]
    fn arithmetic_matches_u128() {
        let mut b = Big::from_u64(0xdead_beef_1234_5678);
        let mut v = 0xdead_beef_1234_5678u128;
        b.mul_small(1000);
        v *= 1000;
        assert_eq!(value(&b), v);
        b.mul_pow2(13);
        v <<= 13;
        assert_eq!(value(&b), v);
        let c = Big::from_u64(u64::MAX);
        b.add(&c);
        v += u128::from(u64::MAX);
        assert_eq!(value(&b), v);
        b.sub(&c);
        v -= u128::from(u64::MAX);
        assert_eq!(value(&b), v);
        let rem = b.div_rem_1e9();
        assert_eq!(
            (value(&b), u128::from(rem)),
            (v / 1_000_000_000, v % 1_000_000_000)
        );
        let mut p = Big::from_u64(7);
        p.mul_pow10(20);
        assert_eq!(value(&p), 7 * 10u128.pow(20));
        assert!(Big::from_u64(0).is_zero());
        assert!(Big::from_u64(1 << 40) > Big::from_u64(u32::MAX.into()));
        assert!(Big::from_u64(5) == *Big::from_u64(10).sub(&Big::from_u64(5)));
    }
}
