//! Per-user tallies and the tables `sluice simulate` and `sluice-demo` print: which value (a
//! version, a variant) each user got, the share of users and requests per value, the users who
//! saw more than one value, and between rounds the users who moved forward or backward.
use std::collections::{BTreeMap, BTreeSet};

/// Users and requests per value, and the values each user saw.
#[derive(Default, Debug, Clone)]
pub struct Tally {
    users: BTreeMap<String, BTreeSet<usize>>,
    requests: BTreeMap<String, usize>,
    per_user: BTreeMap<usize, BTreeSet<String>>,
}

impl Tally {
    pub fn add(&mut self, user: usize, value: &str) {
        self.users
            .entry(value.to_string())
            .or_default()
            .insert(user);
        *self.requests.entry(value.to_string()).or_default() += 1;
        self.per_user
            .entry(user)
            .or_default()
            .insert(value.to_string());
    }

    pub fn user_count(&self) -> usize {
        self.per_user.len()
    }

    pub fn request_count(&self) -> usize {
        self.requests.values().sum()
    }

    /// Users who got `value` at least once.
    pub fn users_of(&self, value: &str) -> usize {
        self.users.get(value).map_or(0, BTreeSet::len)
    }

    /// Requests answered with `value`.
    pub fn requests_of(&self, value: &str) -> usize {
        self.requests.get(value).copied().unwrap_or(0)
    }

    /// The values seen, in `order` first, then the others.
    pub fn values(&self, order: &[String]) -> Vec<String> {
        let mut values: Vec<String> = order.to_vec();
        for value in self.requests.keys() {
            if !values.contains(value) {
                values.push(value.clone());
            }
        }
        values
    }

    /// Users who got more than one value.
    pub fn unsticky(&self) -> usize {
        self.per_user
            .values()
            .filter(|values| values.len() > 1)
            .count()
    }

    /// A table: value, users (count, share), requests (count, share); `order` first, then any
    /// other value seen.
    pub fn table(&self, heading: &str, order: &[String]) -> String {
        let (users, requests) = (self.user_count(), self.request_count());
        let mut rows = vec![vec![
            heading.to_string(),
            "users".to_string(),
            "share".to_string(),
            "requests".to_string(),
            "share".to_string(),
        ]];
        for value in self.values(order) {
            let (u, r) = (self.users_of(&value), self.requests_of(&value));
            rows.push(vec![
                value,
                thousands(u),
                percent(u, users),
                thousands(r),
                percent(r, requests),
            ]);
        }
        render_table(&rows)
    }
}

/// How users' values changed from one round to the next. `rank` orders values: moving to a
/// higher rank is forward (into the canary, the ramp, the new color), to a lower one backward.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moves {
    pub forward: usize,
    pub backward: usize,
    /// Changed between values of the same rank (an A/B split's arms).
    pub sideways: usize,
}

impl Moves {
    /// Compares each user's value now with the previous round's.
    pub fn between(
        before: &BTreeMap<usize, String>,
        now: &BTreeMap<usize, String>,
        rank: impl Fn(&str) -> u8,
    ) -> Moves {
        let mut moves = Moves::default();
        for (user, value) in now {
            let Some(old) = before.get(user) else {
                continue;
            };
            if old == value {
                continue;
            }
            match rank(value).cmp(&rank(old)) {
                std::cmp::Ordering::Greater => moves.forward += 1,
                std::cmp::Ordering::Less => moves.backward += 1,
                std::cmp::Ordering::Equal => moves.sideways += 1,
            }
        }
        moves
    }
}

/// Column 0 left-aligned, the others right-aligned, indented two spaces.
pub fn render_table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from("  ");
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c].saturating_sub(cell.chars().count());
            if c == 0 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(if c % 2 == 1 { "    " } else { "  " });
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `part` of `whole` as `12.3%`; `-` when there is no whole.
pub fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "-".to_string();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(6000), "6,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(1, 0), "-");
    }

    #[test]
    fn tally_counts_users_once_and_finds_the_unsticky() {
        let mut tally = Tally::default();
        tally.add(1, "v1");
        tally.add(1, "v1");
        tally.add(2, "v2");
        tally.add(3, "v1");
        tally.add(3, "v2");
        assert_eq!((tally.user_count(), tally.request_count()), (3, 5));
        assert_eq!(tally.unsticky(), 1);
        let table = tally.table(
            "version",
            &["v1".to_string(), "v2".to_string(), "v3".to_string()],
        );
        assert!(table.contains("v3"), "{table}");
    }

    #[test]
    fn moves_count_forward_and_backward() {
        let before: BTreeMap<usize, String> = [(1, "v1"), (2, "v2"), (3, "v1")]
            .map(|(u, v)| (u, v.to_string()))
            .into();
        let now: BTreeMap<usize, String> = [(1, "v2"), (2, "v1"), (3, "v1")]
            .map(|(u, v)| (u, v.to_string()))
            .into();
        let moves = Moves::between(&before, &now, |v| u8::from(v == "v2"));
        assert_eq!((moves.forward, moves.backward, moves.sideways), (1, 1, 0));
    }
}
