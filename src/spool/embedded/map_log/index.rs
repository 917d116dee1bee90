//! Where each message's newest write is, by `ts`: one sorted list per day. A process mints its
//! `ts` in order, so a new message's goes at the end of its day's list (a push, where a hash
//! table's insert missed the cache once its table outgrew it), and a day past
//! `message_max_age` goes whole.

use std::collections::{BTreeMap, HashMap};

pub const DAY_US: u64 = 86_400_000_000;

/// A write: its segment (an index into the log's segments) and its bytes; `len` 0 for a
/// forgotten message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub segment: u32,
    pub at: u32,
    pub len: u32,
}

#[derive(Default)]
pub struct Index {
    days: BTreeMap<u64, Vec<(u64, Loc)>>,
    /// The order (`n`) of the newest write of each message changed after its first write.
    order: HashMap<u64, u64>,
}

impl Index {
    pub fn get(&self, ts: u64) -> Option<Loc> {
        let day = self.days.get(&(ts / DAY_US))?;
        day.binary_search_by_key(&ts, |(t, _)| *t).ok().map(|i| day[i].1)
    }

    /// Takes the write `n` of message `ts` unless a later one of it is known.
    pub fn set(&mut self, ts: u64, n: u64, loc: Loc) {
        let day = self.days.entry(ts / DAY_US).or_default();
        if day.last().is_none_or(|(last, _)| *last < ts) {
            day.push((ts, loc));
        } else {
            match day.binary_search_by_key(&ts, |(t, _)| *t) {
                Err(i) => day.insert(i, (ts, loc)),
                Ok(i) => {
                    if n < self.order.get(&ts).copied().unwrap_or(0) {
                        return;
                    }
                    day[i].1 = loc;
                }
            }
        }
        if n > 0 {
            self.order.insert(ts, n);
        }
    }

    /// Forgets every day before `first_day`.
    pub fn prune(&mut self, first_day: u64) {
        self.days = self.days.split_off(&first_day);
        self.order.retain(|ts, _| ts / DAY_US >= first_day);
    }

    pub fn newest(&self) -> Option<u64> {
        self.days.values().next_back()?.last().map(|(ts, _)| *ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(at: u32) -> Loc {
        Loc { segment: 0, at, len: 1 }
    }

    #[test]
    fn the_newest_write_of_each_message_is_kept() {
        let d = 20_000 * DAY_US;
        // (ts, n, where): in the order they are set.
        let writes = [(d + 5, 0, 1), (d + 9, 0, 2), (d + 7, 0, 3), (d + 9, 4, 4), (d + 9, 2, 5), (d + 9, 0, 6)];
        let mut index = Index::default();
        for (ts, n, at) in writes {
            index.set(ts, n, loc(at));
        }
        let got: Vec<_> = [d + 5, d + 7, d + 9, d + 6].iter().map(|ts| index.get(*ts).map(|l| l.at)).collect();
        assert_eq!(
            got,
            [Some(1), Some(3), Some(4), None],
            "a message's change 4 outlives 2 and a first write read late"
        );
        index.set(d + 9, 4, loc(7));
        assert_eq!(index.get(d + 9), Some(loc(7)), "the same write read again");
        assert_eq!(index.newest(), Some(d + 9));
    }

    #[test]
    fn days_go_whole() {
        let mut index = Index::default();
        for day in 20_000..20_003 {
            index.set(day * DAY_US + 1, 0, loc(day as u32));
            index.set(day * DAY_US + 2, 3, loc(day as u32));
        }
        index.prune(20_002);
        assert_eq!(index.get(20_001 * DAY_US + 1), None);
        assert_eq!(index.get(20_002 * DAY_US + 1), Some(loc(20_002)));
        index.set(20_001 * DAY_US + 2, 0, loc(9));
        assert_eq!(index.get(20_001 * DAY_US + 2), Some(loc(9)), "its order went with its day");
        assert_eq!(index.newest(), Some(20_002 * DAY_US + 2));
    }
}
