//! Durations as operators write them: `90s`, `10m`, `1h30m`, `2d`, `250ms`.

/// Milliseconds of a duration such as `1h30m`; units ms, s, m, h, d.
pub fn parse_duration_millis(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let value: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit_millis, unit_len) = if rest.starts_with("ms") {
            (1, 2)
        } else {
            match rest.bytes().next()? {
                b's' => (1000, 1),
                b'm' => (60_000, 1),
                b'h' => (3_600_000, 1),
                b'd' => (86_400_000, 1),
                _ => return None,
            }
        };
        total = total.checked_add(value.checked_mul(unit_millis)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::parse_duration_millis as d;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(d("250ms"), Some(250));
        assert_eq!(d("90s"), Some(90_000));
        assert_eq!(d("10m"), Some(600_000));
        assert_eq!(d("1h30m"), Some(5_400_000));
        assert_eq!(d("2d"), Some(172_800_000));
        for bad in ["", "10", "m", "1x", "1h 30m", "-5s"] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }
}
