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
                    if superseded(&self.order, ts, n) {
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

    /// Takes many writes at once, as read from segments in any order: one merge per day rather
    /// than an insert into the middle of its list for each write read out of order.
    pub fn set_all(&mut self, mut writes: Vec<(u64, u64, Loc)>) {
        // By `ts`, then `n`: of one message's writes, the newest comes last.
        writes.sort_by_key(|(ts, n, _)| (*ts, *n));
        let mut late: Vec<(u64, Loc)> = Vec::new();
        let mut at = 0;
        while at < writes.len() {
            let day_of = writes[at].0 / DAY_US;
            let day = self.days.entry(day_of).or_default();
            while let Some(&(ts, n, loc)) = writes.get(at).filter(|(ts, _, _)| ts / DAY_US == day_of) {
                at += 1;
                match day.binary_search_by_key(&ts, |(t, _)| *t) {
                    Ok(i) if !superseded(&self.order, ts, n) => day[i].1 = loc,
                    Ok(_) => continue,
                    Err(i) if i == day.len() => day.push((ts, loc)),
                    Err(_) => match late.last_mut() {
                        Some(last) if last.0 == ts => last.1 = loc,
                        _ => late.push((ts, loc)),
                    },
                }
                if n > 0 {
                    self.order.insert(ts, n);
                }
            }
            if !late.is_empty() {
                // Two sorted runs: the sort merges them.
                day.append(&mut late);
                day.sort_by_key(|(ts, _)| *ts);
            }
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

/// Whether `order` knows a later write of message `ts` than write `n`.
fn superseded(order: &HashMap<u64, u64>, ts: u64, n: u64) -> bool {
    n < order.get(&ts).copied().unwrap_or(0)
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

    /// Writes read in any order, in one batch, index as they do one by one in `ts` order.
    #[test]
    fn a_batch_indexes_as_writes_one_by_one() {
        let d = 20_000 * DAY_US;
        let mut writes: Vec<(u64, u64, Loc)> = Vec::new();
        for i in 0..300u64 {
            let ts = d + (i * 7919) % 1000 + (i % 3) * DAY_US;
            writes.push((ts, if i % 5 == 0 { i } else { 0 }, loc(i as u32)));
        }
        let mut sorted = writes.clone();
        sorted.sort_by_key(|(ts, n, _)| (*ts, *n));
        let mut one_by_one = Index::default();
        for (ts, n, loc) in sorted {
            one_by_one.set(ts, n, loc);
        }
        for split in [0, 1, 150, 299] {
            let mut batched = Index::default();
            batched.set_all(writes[..split].to_vec());
            batched.set_all(writes[split..].to_vec());
            for (ts, _, _) in &writes {
                assert_eq!(batched.get(*ts), one_by_one.get(*ts), "ts {ts}, batches split at {split}");
            }
            assert!(batched.days.values().all(|day| day.windows(2).all(|w| w[0].0 < w[1].0)), "sorted, no repeats");
        }
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
