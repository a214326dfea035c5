#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! RFC 3339 times as schedules and Unleash date constraints carry them: every valid calendar
//! date parses to the right instant (one day after the date before it, from year 0 to 2500),
//! every impossible one is refused, and what the usage reports write reads back the same.
use sluice_primitives::time::{format_rfc3339_millis, parse_rfc3339_millis as parse};

const DAY: i64 = 86_400_000;

fn leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Month lengths from the Gregorian rules, written out rather than computed.
fn month_days(year: i64, month: i64) -> i64 {
    [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][month as usize - 1]
}

fn midnight(year: i64, month: i64, day: i64) -> String {
    format!("{year:04}-{month:02}-{day:02}T00:00:00Z")
}

#[test]
fn new_year_follows_the_last_year_by_its_length() {
    // 1 January 1970 is the epoch; each new year is 365 or 366 days after the one before,
    // from year 0 (a leap year, before the epoch) to 2500 (1900 and 2100 are not leap years,
    // 2000 and 2400 are).
    assert_eq!(parse("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse("0000-01-01T00:00:00Z"), Some(-62_167_219_200_000));
    let mut previous = parse(&midnight(0, 1, 1)).unwrap();
    for year in 1..=2500 {
        let this = parse(&midnight(year, 1, 1)).unwrap();
        let length = if leap(year - 1) { 366 } else { 365 };
        assert_eq!(this - previous, length * DAY, "{year}-01-01");
        previous = this;
    }
}

#[test]
fn each_month_starts_its_length_after_the_one_before() {
    for year in 0..=2500 {
        let mut start = parse(&midnight(year, 1, 1)).unwrap();
        for month in 2..=12 {
            let next = parse(&midnight(year, month, 1)).unwrap();
            assert_eq!(
                next - start,
                month_days(year, month - 1) * DAY,
                "{year}-{month:02}-01"
            );
            start = next;
        }
    }
}

#[test]
fn every_day_of_a_month_is_one_day_on_and_the_day_after_its_last_is_refused() {
    for year in [
        0, 1, 4, 100, 399, 400, 1900, 1969, 1970, 1972, 2000, 2023, 2024, 2100, 2400,
    ] {
        for month in 1..=12 {
            let first = parse(&midnight(year, month, 1)).unwrap();
            let last = month_days(year, month);
            for day in 1..=last {
                let text = midnight(year, month, day);
                assert_eq!(parse(&text), Some(first + (day - 1) * DAY), "{text}");
            }
            assert_eq!(
                parse(&midnight(year, month, last + 1)),
                None,
                "{year}-{month} day {}",
                last + 1
            );
            assert_eq!(
                parse(&midnight(year, month, 0)),
                None,
                "{year}-{month} day 0"
            );
        }
        assert_eq!(parse(&midnight(year, 0, 1)), None, "{year} month 0");
        assert_eq!(parse(&midnight(year, 13, 1)), None, "{year} month 13");
    }
}

#[test]
fn the_time_of_day_adds_hours_minutes_seconds_and_milliseconds() {
    let day = parse("2026-03-14T00:00:00Z").unwrap();
    for hour in 0..24 {
        for minute in [0, 1, 7, 30, 59] {
            for second in [0, 1, 29, 59, 60] {
                let text = format!("2026-03-14T{hour:02}:{minute:02}:{second:02}Z");
                let at = day + ((hour * 60 + minute) * 60 + second) * 1000;
                assert_eq!(parse(&text), Some(at), "{text}");
            }
        }
    }
    // A leap second (:60) is the first second of the next minute.
    assert_eq!(parse("2016-12-31T23:59:60Z"), parse("2017-01-01T00:00:00Z"));
    for bad in [
        "2026-03-14T24:00:00Z",
        "2026-03-14T12:60:00Z",
        "2026-03-14T12:00:61Z",
    ] {
        assert_eq!(parse(bad), None, "{bad}");
    }
}

#[test]
fn fractions_are_milliseconds_cut_not_rounded() {
    let second = parse("2026-03-14T15:09:26Z").unwrap();
    for (fraction, millis) in [
        (".0", 0),
        (".5", 500),
        (".05", 50),
        (".53", 530),
        (".535", 535),
        (".5358", 535),
        (".999999999", 999),
        (".001", 1),
    ] {
        let text = format!("2026-03-14T15:09:26{fraction}Z");
        assert_eq!(parse(&text), Some(second + millis), "{text}");
        let offset = format!("2026-03-14T16:09:26{fraction}+01:00");
        assert_eq!(parse(&offset), Some(second + millis), "{offset}");
    }
    for bad in [
        "2026-03-14T15:09:26.Z",
        "2026-03-14T15:09:26.",
        "2026-03-14T15:09:26.5",
        "2026-03-14T15:09:26,5Z",
    ] {
        assert_eq!(parse(bad), None, "{bad}");
    }
}

#[test]
fn offsets_name_the_same_instant_in_another_zone() {
    let utc = parse("2026-06-01T12:00:00Z").unwrap();
    for (hours, minutes) in [(0, 0), (0, 30), (1, 0), (5, 45), (9, 30), (14, 0), (23, 59)] {
        let shift = (hours * 60 + minutes) * 60_000;
        let east = format_offset('+', hours, minutes);
        let west = format_offset('-', hours, minutes);
        // The wall clock east of UTC shows a later time for the same instant.
        assert_eq!(
            parse(&format!("2026-06-01T12:00:00{east}")),
            Some(utc - shift),
            "{east}"
        );
        assert_eq!(
            parse(&format!("2026-06-01T12:00:00{west}")),
            Some(utc + shift),
            "{west}"
        );
    }
    // Across midnight and the end of a month.
    assert_eq!(
        parse("2026-05-31T23:30:00-01:00"),
        parse("2026-06-01T00:30:00Z")
    );
    assert_eq!(
        parse("2026-06-01T00:15:00+02:00"),
        parse("2026-05-31T22:15:00Z")
    );
    for bad in [
        "2026-06-01T12:00:00+24:00",
        "2026-06-01T12:00:00+01:60",
        "2026-06-01T12:00:00+0100",
        "2026-06-01T12:00:00+01-00",
        "2026-06-01T12:00:00+01:0",
        "2026-06-01T12:00:00+01:000",
        "2026-06-01T12:00:00+1a:00",
        "2026-06-01T12:00:00+01:a0",
        "2026-06-01T12:00:00*01:00",
        "2026-06-01T12:00:00 01:00",
        "2026-06-01T12:00:00ZZ",
        "2026-06-01T12:00:00UTC",
        "2026-06-01T12:00:00+",
    ] {
        assert_eq!(parse(bad), None, "{bad}");
    }
}

fn format_offset(sign: char, hours: i64, minutes: i64) -> String {
    format!("{sign}{hours:02}:{minutes:02}")
}

#[test]
fn the_separators_and_the_zone_letter_may_be_lower_case_or_a_space() {
    let at = parse("2026-11-26T15:00:00Z");
    assert!(at.is_some());
    for same in [
        "2026-11-26t15:00:00Z",
        "2026-11-26 15:00:00Z",
        "2026-11-26T15:00:00z",
        "2026-11-26 15:00:00+00:00",
    ] {
        assert_eq!(parse(same), at, "{same}");
    }
}

#[test]
fn misplaced_separators_and_non_digits_are_refused() {
    let good = "2026-11-26T15:04:05Z";
    assert!(parse(good).is_some());
    // Each separator replaced, each digit replaced by a letter, a sign or a space.
    for at in 0..19 {
        for with in [b'x', b'+', b'-', b':', b' '] {
            let mut bytes = good.as_bytes().to_vec();
            if bytes[at] == with || (at == 10 && with == b' ') {
                continue;
            }
            bytes[at] = with;
            let text = String::from_utf8(bytes).unwrap();
            assert_eq!(parse(&text), None, "{text}");
        }
    }
    for bad in [
        "",
        "2026-11-26",
        "2026-11-26T15:04:05",
        "2026-11-26T15:04Z",
        "2026-11-26T15:04:5Z",
        "26-11-26T15:04:05Z",
        "+026-11-26T15:04:05Z",
        "2026-11-26T15:04:05é",
        "2026-11-2éT15:04:05Z",
        "2026-11-26T15:04:0é",
        "2026-11-26T15:04:0éZ",
        "éééééééééééééééééééé",
    ] {
        assert_eq!(parse(bad), None, "{bad}");
    }
}

#[test]
fn written_times_read_back_to_the_same_millisecond() {
    // Reports write each day's first and last millisecond; they parse back the same, from
    // the epoch to 2500 across every month.
    for year in 1970..=2500 {
        for month in 1..=12 {
            let last = month_days(year, month);
            let start = format!("{year:04}-{month:02}-01T00:00:00.000Z");
            let end = format!("{year:04}-{month:02}-{last:02}T23:59:59.999Z");
            for text in [start, end] {
                let ms = parse(&text).unwrap();
                assert_eq!(format_rfc3339_millis(ms), text);
            }
        }
    }
    let ms = parse("2026-11-30T13:37:42.069Z").unwrap();
    assert_eq!(format_rfc3339_millis(ms), "2026-11-30T13:37:42.069Z");
    assert_eq!(
        format_rfc3339_millis(ms + DAY + 3_600_000 + 60_000 + 1000 + 1),
        "2026-12-01T14:38:43.070Z"
    );
}

#[test]
fn times_before_the_epoch_are_written_as_the_epoch() {
    for ms in [-1, -999, -DAY, i64::MIN] {
        assert_eq!(
            format_rfc3339_millis(ms),
            "1970-01-01T00:00:00.000Z",
            "{ms}"
        );
    }
    assert_eq!(format_rfc3339_millis(1), "1970-01-01T00:00:00.001Z");
}
