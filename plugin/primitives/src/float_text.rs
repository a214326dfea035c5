//! f64 as text, byte for byte as Rust's `core::fmt` writes it, without linking core's float
//! formatting (`flt2dec`: Grisu with a Dragon4 fallback, its bignum and the `float_to_*`
//! drivers, ~19 KB of .wasm in functions of up to 5.4 KB that V8 compiles in every Envoy).
//!
//! - [`shortest`]: the shortest digits that read back as the value (what `{}` and `{:e}` print).
//! - [`Plain`]: `{}` of an f64 (shortest digits, never an exponent: `1e21` is 22 digits).
//! - [`Fixed`]: `{:.N}` of an f64 for N up to 3 (round half to even on the exact binary value).
//!
//! Both use exact integer arithmetic ([`big`]): `shortest` is core's own Dragon4
//! (`flt2dec::strategy::dragon::format_shortest`) ported, which gives the same digits as core's
//! Grisu fast path. Slower than Grisu, which does not matter here: these only write error
//! messages, guard trip reports and the few numbers a config or an Unleash payload turns into
//! text. Width, fill and sign flags of the format string are not supported (no caller uses them).
//! The tests compare with `format!` over many values.
mod big;

use big::Big;
use core::fmt;

/// The most digits [`shortest`] gives (17), plus one for core's carry case.
const MAX_DIGITS: usize = 18;

/// Decimal digits and the exponent of the first: 1.5e-7 is "15" and -7.
pub struct Digits {
    buf: [u8; MAX_DIGITS],
    len: usize,
    exp: i32,
}

impl Digits {
    /// The digits, ASCII, without a point.
    pub fn as_str(&self) -> &str {
        self.buf
            .get(..self.len)
            .and_then(|d| core::str::from_utf8(d).ok())
            .unwrap_or("0")
    }

    /// The power of ten of the first digit, as `{:e}` prints it.
    pub fn exponent(&self) -> i32 {
        self.exp
    }
}

/// An f64's integer mantissa and binary exponent (`x = mant * 2^exp`), as core's
/// `integer_decode` gives them: a subnormal's mantissa is doubled and its exponent is -1075.
fn integer_decode(x: f64) -> (u64, i32) {
    let bits = x.to_bits();
    let frac = bits & ((1 << 52) - 1);
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        (frac << 1, -1075)
    } else {
        (frac | (1 << 52), biased - 1075)
    }
}

/// The shortest digits that read back as `|x|`, and among those the closest (core's choice);
/// `x` finite. Zero is "0" with exponent 0, as `{:e}` prints it.
#[inline(never)]
pub fn shortest(x: f64) -> Digits {
    let mut out = Digits {
        buf: [b'0'; MAX_DIGITS],
        len: 1,
        exp: 0,
    };
    let (mant, exp) = integer_decode(x);
    if mant == 0 {
        return out;
    }
    // The values that read back as x: (mant - minus, mant + plus) * 2^exp, the bounds included
    // when mant is even (core's `flt2dec::decoder::decode`).
    let inclusive = mant & 1 == 0;
    let (mant, minus, plus, exp) = if exp > -1075 && mant == 1 << 52 {
        // Below a power of two the gap to the next lower value is half as wide.
        (mant << 2, 1, 2, exp - 2)
    } else if exp > -1075 {
        (mant << 1, 1, 1, exp - 1)
    } else {
        (mant, 1, 1, exp)
    };
    let (len, k) = dragon_shortest(mant, minus, plus, exp, inclusive, &mut out.buf);
    out.len = len;
    out.exp = k - 1;
    out
}

/// `a < b`, or `a <= b` when the bounds are inclusive.
fn below(a: &Big, b: &Big, inclusive: bool) -> bool {
    if inclusive {
        a <= b
    } else {
        a < b
    }
}

/// core's `dragon::format_shortest`: digits of `mant * 2^exp` into `buf` until they identify the
/// value; the number of digits and `k`, the value being `0.digits * 10^k`.
#[inline(never)]
fn dragon_shortest(
    mant: u64,
    minus: u64,
    plus: u64,
    exp: i32,
    inclusive: bool,
    buf: &mut [u8; MAX_DIGITS],
) -> (usize, i32) {
    let mut k = estimate_scaling_factor(mant + plus, exp);
    let mut mant = Big::from_u64(mant);
    let mut minus = Big::from_u64(minus);
    let mut plus = Big::from_u64(plus);
    let mut scale = Big::from_u64(1);
    let e = exp.unsigned_abs() as usize;
    if exp < 0 {
        scale.mul_pow2(e);
    } else {
        mant.mul_pow2(e);
        minus.mul_pow2(e);
        plus.mul_pow2(e);
    }
    // x = mant / scale; divided by 10^k it is below 1 (or 10, when k was estimated one low).
    let p = k.unsigned_abs() as usize;
    if k >= 0 {
        scale.mul_pow10(p);
    } else {
        mant.mul_pow10(p);
        minus.mul_pow10(p);
        plus.mul_pow10(p);
    }
    // The estimate may be one low.
    if below(&scale, &sum(&mant, &plus), inclusive) {
        k += 1;
    } else {
        mant.mul_small(10);
        minus.mul_small(10);
        plus.mul_small(10);
    }
    let mut scales = [scale; 4];
    for (s, bits) in scales.iter_mut().zip([3, 2, 1]) {
        s.mul_pow2(bits);
    }
    let (mut down, mut up) = (false, false);
    let mut len = 0;
    for slot in buf.iter_mut() {
        *slot = b'0' + next_digit(&mut mant, &scales);
        len += 1;
        down = below(&mant, &minus, inclusive);
        up = below(&scale, &sum(&mant, &plus), inclusive);
        if down || up {
            break;
        }
        mant.mul_small(10);
        minus.mul_small(10);
        plus.mul_small(10);
    }
    // Between two candidates the closer one; a tie rounds up, as core does.
    if up && (!down || *mant.mul_pow2(1) >= scale) {
        let digits = buf.get_mut(..len).unwrap_or(&mut []);
        if round_up(digits) {
            if let Some(slot) = buf.get_mut(len) {
                *slot = b'0';
                len += 1;
            }
            k += 1;
        }
    }
    (len, k)
}

/// core's `estimate_scaling_factor`: `floor(log10(v * 2^exp))` or one less.
fn estimate_scaling_factor(v: u64, exp: i32) -> i32 {
    let nbits = 64 - i64::from((v - 1).leading_zeros());
    // 1292913986 = floor(2^32 * log10(2)).
    (((nbits + i64::from(exp)) * 1_292_913_986) >> 32) as i32
}

/// `mant / scale`, a digit (`mant < 10 * scale`), leaving the remainder in `mant`; `scales` are
/// `scale` times 8, 4, 2 and 1.
fn next_digit(mant: &mut Big, scales: &[Big; 4]) -> u8 {
    let mut digit = 0;
    for (scale, bit) in scales.iter().zip([8, 4, 2, 1]) {
        if *mant >= *scale {
            mant.sub(scale);
            digit += bit;
        }
    }
    digit
}

/// `a + b`.
fn sum(a: &Big, b: &Big) -> Big {
    let mut s = *a;
    s.add(b);
    s
}

/// Adds one to the last of the ASCII digits; true when all were 9 (now "100...").
fn round_up(digits: &mut [u8]) -> bool {
    for d in digits.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return false;
        }
    }
    if let Some(first) = digits.first_mut() {
        *first = b'1';
    }
    true
}

/// Writes `n` zeros.
pub(crate) fn write_zeros(f: &mut fmt::Formatter<'_>, mut n: usize) -> fmt::Result {
    const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
    while n > 0 {
        let chunk = n.min(ZEROS.len());
        f.write_str(ZEROS.get(..chunk).unwrap_or(""))?;
        n -= chunk;
    }
    Ok(())
}

/// Writes NaN, the sign and infinity as core does; true when nothing is left to write.
fn write_special(f: &mut fmt::Formatter<'_>, x: f64) -> Result<bool, fmt::Error> {
    if x.is_nan() {
        f.write_str("NaN")?;
        return Ok(true);
    }
    if x.is_sign_negative() {
        f.write_str("-")?;
    }
    if x.is_infinite() {
        f.write_str("inf")?;
        return Ok(true);
    }
    Ok(false)
}

/// `{}` of an f64: `0.1`, `1`, `-0`, `1000000000000000000000`, `0.0000001`, `NaN`, `inf`.
pub struct Plain(pub f64);

impl fmt::Display for Plain {
    #[inline(never)]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if write_special(f, self.0)? {
            return Ok(());
        }
        if self.0 == 0.0 {
            return f.write_str("0");
        }
        let digits = shortest(self.0);
        let text = digits.as_str();
        // The point goes after `point` digits.
        let point = digits.exponent() + 1;
        let len = text.len();
        match usize::try_from(point) {
            Err(_) | Ok(0) => {
                f.write_str("0.")?;
                write_zeros(f, point.unsigned_abs() as usize)?;
                f.write_str(text)
            }
            Ok(p) if p < len => {
                let (int, frac) = text.split_at_checked(p).unwrap_or((text, ""));
                f.write_str(int)?;
                f.write_str(".")?;
                f.write_str(frac)
            }
            Ok(p) => {
                f.write_str(text)?;
                write_zeros(f, p - len)
            }
        }
    }
}

/// `{:.N}` of an f64, N at most 3: `Fixed::<2>(0.125)` is `0.12`, `Fixed::<0>(2.5)` is `2`.
pub struct Fixed<const N: u32>(pub f64);

impl<const N: u32> fmt::Display for Fixed<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const { assert!(N <= 3, "x * 10^N must fit a u64") };
        write_fixed(f, self.0, N)
    }
}

/// The digits of `|x| * 10^decimals` rounded half to even, with a point before the last
/// `decimals` (<= 3) of them.
#[inline(never)]
fn write_fixed(f: &mut fmt::Formatter<'_>, x: f64, decimals: u32) -> fmt::Result {
    if write_special(f, x)? {
        return Ok(());
    }
    // An f64 below 2^1024, times 1000, has at most 312 digits.
    let mut buf = [b'0'; 36 * 9];
    scaled_digits(x, decimals, &mut buf);
    let keep = decimals as usize + 1;
    let first = buf.iter().position(|&d| d != b'0').unwrap_or(buf.len());
    let digits = buf.get(first.min(buf.len() - keep)..).unwrap_or(&[]);
    let text = core::str::from_utf8(digits).unwrap_or("0");
    let (int, frac) = text
        .split_at_checked(text.len().saturating_sub(decimals as usize))
        .unwrap_or((text, ""));
    f.write_str(int)?;
    if decimals > 0 {
        f.write_str(".")?;
        f.write_str(frac)?;
    }
    Ok(())
}

/// The digits of `|x| * 10^decimals` rounded half to even, at the end of `buf` (the zeros
/// before them left as they are).
#[inline(never)]
fn scaled_digits(x: f64, decimals: u32, buf: &mut [u8; 36 * 9]) {
    let (mant, exp) = integer_decode(x);
    // Below 2^53 * 1000 < 2^63: no overflow.
    let scaled = mant * 10u64.pow(decimals);
    let mut n = if exp >= 0 {
        let mut n = Big::from_u64(scaled);
        n.mul_pow2(exp.unsigned_abs() as usize);
        n
    } else {
        Big::from_u64(shift_right_even(scaled, exp.unsigned_abs()))
    };
    for chunk in buf.rchunks_exact_mut(9) {
        let mut part = n.div_rem_1e9();
        for d in chunk.iter_mut().rev() {
            *d = b'0' + (part % 10) as u8;
            part /= 10;
        }
        if n.is_zero() {
            break;
        }
    }
}

/// `v / 2^shift` rounded half to even.
fn shift_right_even(v: u64, shift: u32) -> u64 {
    // v < 2^63 <= half of 2^shift: rounds to 0.
    if shift >= 64 {
        return 0;
    }
    let q = v >> shift;
    let rem = v & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    if rem > half || (rem == half && q & 1 == 1) {
        q + 1
    } else {
        q
    }
}

#[cfg(test)]
mod tests {
    use super::{shortest, Fixed, Plain};

    /// xorshift64: reproducible random bit patterns.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// A finite f64 of any magnitude, either sign.
        fn any_finite(&mut self) -> f64 {
            loop {
                let x = f64::from_bits(self.next());
                if x.is_finite() {
                    return x;
                }
            }
        }

        /// A value of the magnitudes configs and guards see: up to 1e6, often on a grid of
        /// 1/1000 (rounding ties and near-ties), often an exact binary fraction.
        fn everyday(&mut self) -> f64 {
            let r = self.next();
            let sign = if r & 1 == 1 { -1.0 } else { 1.0 };
            let n = (r >> 8) % 100_000_000;
            sign * match (r >> 1) % 4 {
                0 => n as f64 / 1000.0,
                1 => n as f64 / 1024.0,
                2 => n as f64 / 8.0 / 1000.0,
                _ => f64::from_bits(0x3f00_0000_0000_0000 + ((r >> 8) % (1 << 56))),
            }
        }
    }

    fn edge_cases() -> Vec<f64> {
        let mut v = vec![
            0.0,
            -0.0,
            5e-324,
            1e-323,
            2.225_073_858_507_201e-308,
            2.225_073_858_507_201_4e-308,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::EPSILON,
            0.1,
            0.2,
            0.3,
            1.0 / 3.0,
            2.0 / 3.0,
            1e15,
            1e16,
            1e17,
            1e21,
            1e22,
            1e23,
            1e-5,
            1e-6,
            1e-7,
            123_456.789,
            0.125,
            0.375,
            0.625,
            2.5,
            0.5,
            1.5,
            0.0005,
            0.0015,
            0.0025,
            1.005,
            1.0005,
            9.995,
            9.9995,
            99.995,
            0.9995,
            0.999_999,
            999.9995,
            1e300,
            1e-300,
            9_007_199_254_740_993.0,
            4_503_599_627_370_496.5,
            1.797_693_134_862_315_7e308,
            100.0,
            0.05,
            0.01,
            20.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        // Integers, powers of two and ten, and their neighbours.
        for i in 0..=1100 {
            v.push(i as f64);
            v.push(2f64.powi(i - 1075));
            if i < 330 {
                v.push(10f64.powi(i));
                v.push(10f64.powi(-i));
            }
        }
        let mut near: Vec<f64> = v
            .iter()
            .filter(|x| x.is_finite())
            .flat_map(|x| {
                [
                    f64::from_bits(x.to_bits() + 1),
                    f64::from_bits(x.to_bits().wrapping_sub(1)),
                ]
            })
            .filter(|x| x.is_finite())
            .collect();
        v.append(&mut near);
        v.extend(v.clone().iter().map(|x| -x));
        v
    }

    fn check_shortest(x: f64) {
        if !x.is_finite() {
            return;
        }
        let sci = format!("{:e}", x.abs());
        let (mantissa, exp) = sci.split_once('e').unwrap();
        let want: String = mantissa.chars().filter(|c| *c != '.').collect();
        let got = shortest(x);
        assert_eq!(
            (got.as_str(), got.exponent()),
            (want.as_str(), exp.parse().unwrap()),
            "{x:e} ({:#x})",
            x.to_bits()
        );
    }

    fn check_text(x: f64) {
        let bits = x.to_bits();
        assert_eq!(Plain(x).to_string(), format!("{x}"), "{bits:#x}");
        assert_eq!(Fixed::<0>(x).to_string(), format!("{x:.0}"), "{bits:#x}");
        assert_eq!(Fixed::<1>(x).to_string(), format!("{x:.1}"), "{bits:#x}");
        assert_eq!(Fixed::<2>(x).to_string(), format!("{x:.2}"), "{bits:#x}");
        assert_eq!(Fixed::<3>(x).to_string(), format!("{x:.3}"), "{bits:#x}");
    }

    #[test]
    fn edge_cases_match_core() {
        for x in edge_cases() {
            check_shortest(x);
            check_text(x);
        }
    }

    #[test]
    fn shortest_matches_core_on_random_bits() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..1_000_000 {
            check_shortest(rng.any_finite());
        }
    }

    #[test]
    fn shortest_matches_core_on_everyday_values() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..300_000 {
            check_shortest(rng.everyday());
        }
    }

    #[test]
    fn text_matches_core_on_random_bits() {
        let mut rng = Rng(0xd1b5_4a32_d192_ed03);
        for _ in 0..100_000 {
            check_text(rng.any_finite());
        }
    }

    #[test]
    fn text_matches_core_on_everyday_values() {
        let mut rng = Rng(0x8cb9_2ba7_2f3d_8dd7);
        for _ in 0..300_000 {
            check_text(rng.everyday());
        }
    }

    #[test]
    fn rounds_half_to_even() {
        assert_eq!(Fixed::<2>(0.125).to_string(), "0.12");
        assert_eq!(Fixed::<2>(0.375).to_string(), "0.38");
        assert_eq!(Fixed::<0>(0.5).to_string(), "0");
        assert_eq!(Fixed::<0>(2.5).to_string(), "2");
        assert_eq!(Fixed::<1>(-0.04).to_string(), "-0.0");
        assert_eq!(Plain(1e21).to_string(), "1000000000000000000000");
        assert_eq!(Plain(-0.0).to_string(), "-0");
    }
}
