//! `SimNet`: a sans-IO emulator of one direction of a UDP path, like str0m's `crates/netem`.
//!
//! Datagrams go in with [`SimNet::send`] and come out of [`SimNet::poll_delivery`] once their
//! delivery time has come. Latency, jitter, loss, reordering, duplication and partitions are
//! applied at send time from one seeded generator, so the same seed, parameters and sends give
//! the same deliveries at the same instants. Time comes only from the `now` arguments.
//!
//! Jitter alone never reorders: a datagram is never delivered before one sent earlier, unless
//! [`NetParams::reorder`] picks it. A reordered datagram is held back by an extra
//! `max(latency, 20 ms)` and does not hold back the ones sent after it, so they overtake it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The smallest extra delay of a reordered datagram (one audio frame).
const MIN_REORDER_DELAY: Duration = Duration::from_millis(20);

/// How the emulated path treats datagrams. Probabilities are per datagram, from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetParams {
    /// One-way delay of every datagram.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` per datagram.
    pub jitter: Duration,
    /// Probability that a datagram is lost.
    pub loss: f32,
    /// Probability that a datagram is held back so later ones overtake it.
    pub reorder: f32,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f32,
}

impl Default for NetParams {
    /// 20 ms latency; no jitter, loss, reordering or duplication.
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(20),
            jitter: Duration::ZERO,
            loss: 0.0,
            reorder: 0.0,
            duplicate: 0.0,
        }
    }
}

/// What a [`SimNet`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams given to [`SimNet::send`].
    pub sent: u64,
    /// Datagrams handed out by [`SimNet::poll_delivery`], duplicates included.
    pub delivered: u64,
    /// Datagrams dropped, by random loss or by a partition.
    pub lost: u64,
    /// Of `lost`, those dropped by a partition.
    pub partitioned: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Datagrams held back so later ones could overtake them.
    pub reordered: u64,
}

/// One direction of an emulated UDP path carrying payloads of type `T`. See the module docs.
#[derive(Debug)]
pub struct SimNet<T> {
    rng: fastrand::Rng,
    params: NetParams,
    /// In flight, keyed by (delivery time, send order): FIFO among equal times.
    queue: BTreeMap<(Instant, u64), T>,
    seq: u64,
    /// Delivery time of the latest datagram that was not reordered.
    last_due: Option<Instant>,
    partitions: Vec<(Instant, Option<Instant>)>,
    stats: NetStats,
}

impl<T: Clone> SimNet<T> {
    /// An empty path whose randomness comes only from `seed`.
    pub fn new(seed: u64, params: NetParams) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
            params,
            queue: BTreeMap::new(),
            seq: 0,
            last_due: None,
            partitions: Vec::new(),
            stats: NetStats::default(),
        }
    }

    /// The parameters datagrams sent from now on get; those in flight keep theirs.
    pub fn set_params(&mut self, params: NetParams) {
        self.params = params;
    }

    /// The current parameters.
    pub fn params(&self) -> NetParams {
        self.params
    }

    /// Drops every datagram sent from `from` until `until` (exclusive; `None` means forever).
    /// Datagrams already in flight are still delivered.
    pub fn partition(&mut self, from: Instant, until: Option<Instant>) {
        self.partitions.push((from, until));
    }

    /// Whether a datagram sent at `now` would be dropped by a partition.
    pub fn is_partitioned(&self, now: Instant) -> bool {
        self.partitions
            .iter()
            .any(|&(from, until)| now >= from && until.is_none_or(|u| now < u))
    }

    /// Puts a datagram on the path at `now`; it is delivered, lost or duplicated per the params.
    pub fn send(&mut self, now: Instant, packet: T) {
        self.stats.sent += 1;
        // Draw every random number each time, so one parameter does not shift the others' draws.
        let lose = self.rng.f32() < self.params.loss;
        let jitter_nanos = u64::try_from(self.params.jitter.as_nanos()).unwrap_or(u64::MAX);
        let jitter = Duration::from_nanos(self.rng.u64(0..=jitter_nanos));
        let reorder = self.rng.f32() < self.params.reorder;
        let duplicate = self.rng.f32() < self.params.duplicate;
        if self.is_partitioned(now) {
            self.stats.lost += 1;
            self.stats.partitioned += 1;
            return;
        }
        if lose {
            self.stats.lost += 1;
            return;
        }
        let Some(mut due) = now
            .checked_add(self.params.latency)
            .and_then(|t| t.checked_add(jitter))
        else {
            self.stats.lost += 1;
            return;
        };
        if let Some(last) = self.last_due {
            due = due.max(last);
        }
        if reorder {
            let extra = self.params.latency.max(MIN_REORDER_DELAY);
            due = due.checked_add(extra).unwrap_or(due);
            self.stats.reordered += 1;
        } else {
            self.last_due = Some(due);
        }
        if duplicate {
            self.stats.duplicated += 1;
            self.enqueue(due, packet.clone());
        }
        self.enqueue(due, packet);
    }

    fn enqueue(&mut self, due: Instant, packet: T) {
        self.seq += 1;
        self.queue.insert((due, self.seq), packet);
    }

    /// The earliest datagram due at or before `now`, FIFO among equal times; `None` when none is
    /// due yet.
    #[must_use]
    pub fn poll_delivery(&mut self, now: Instant) -> Option<T> {
        let (&(due, _), _) = self.queue.first_key_value()?;
        if due > now {
            return None;
        }
        let (_, packet) = self.queue.pop_first()?;
        self.stats.delivered += 1;
        Some(packet)
    }

    /// When the next datagram is due; `None` when nothing is in flight.
    #[must_use]
    pub fn next_delivery(&self) -> Option<Instant> {
        self.queue.first_key_value().map(|(&(due, _), _)| due)
    }

    /// Datagrams in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// The counters so far.
    pub fn stats(&self) -> NetStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::tests::origin;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Sends `n` datagrams 20 ms apart and returns (number, delivery offset) in delivery order.
    fn run(params: NetParams, seed: u64, n: u32) -> (Vec<(u32, Duration)>, NetStats) {
        let base = origin();
        let mut net = SimNet::new(seed, params);
        let mut out = Vec::new();
        for i in 0..n {
            let now = base + ms(20 * u64::from(i));
            net.send(now, i);
            while let Some(p) = net.poll_delivery(now) {
                out.push((p, now - base));
            }
        }
        while let Some(t) = net.next_delivery() {
            while let Some(p) = net.poll_delivery(t) {
                out.push((p, t - base));
            }
        }
        (out, net.stats())
    }

    #[test]
    fn default_is_20ms_latency_fifo() {
        let base = origin();
        let mut net = SimNet::new(1, NetParams::default());
        net.send(base, "a");
        net.send(base, "b");
        assert_eq!(net.next_delivery(), Some(base + ms(20)));
        assert_eq!(net.poll_delivery(base + ms(19)), None);
        assert_eq!(net.poll_delivery(base + ms(20)), Some("a"));
        assert_eq!(net.poll_delivery(base + ms(20)), Some("b"));
        assert_eq!(net.poll_delivery(base + ms(99)), None);
        assert_eq!(net.next_delivery(), None);
        let s = net.stats();
        assert_eq!((s.sent, s.delivered, s.lost), (2, 2, 0));
    }

    #[test]
    fn jitter_delays_but_never_reorders() {
        let params = NetParams {
            latency: ms(30),
            jitter: ms(60),
            ..NetParams::default()
        };
        let (out, stats) = run(params, 7, 500);
        assert_eq!(out.len(), 500);
        let order: Vec<u32> = out.iter().map(|(p, _)| *p).collect();
        assert_eq!(order, (0..500).collect::<Vec<_>>());
        let delays: Vec<Duration> = out
            .iter()
            .map(|&(p, t)| t - ms(20 * u64::from(p)))
            .collect();
        assert!(delays.iter().all(|d| *d >= ms(30)));
        assert!(delays.iter().any(|d| *d > ms(60)), "jitter shows");
        assert_eq!(stats.reordered, 0);
    }

    #[test]
    fn loss_reorder_duplicate_rates_follow_params() {
        let params = NetParams {
            latency: ms(20),
            jitter: ms(5),
            loss: 0.1,
            reorder: 0.05,
            duplicate: 0.02,
        };
        let (out, s) = run(params, 42, 10_000);
        assert!((800..1200).contains(&s.lost), "{s:?}");
        assert!((300..700).contains(&s.reordered), "{s:?}");
        assert!((100..300).contains(&s.duplicated), "{s:?}");
        assert_eq!(s.delivered, s.sent - s.lost + s.duplicated);
        assert_eq!(out.len() as u64, s.delivered);
        let inversions = out.windows(2).filter(|w| w[1].0 < w[0].0).count();
        assert!(
            inversions > 100,
            "reordered datagrams arrive late: {inversions}"
        );
    }

    #[test]
    fn same_seed_same_deliveries() {
        let params = NetParams {
            latency: ms(15),
            jitter: ms(40),
            loss: 0.2,
            reorder: 0.1,
            duplicate: 0.1,
        };
        assert_eq!(run(params, 3, 1000), run(params, 3, 1000));
        assert_ne!(run(params, 3, 1000).0, run(params, 4, 1000).0);
    }

    #[test]
    fn partitions_drop_what_is_sent_inside_them() {
        let base = origin();
        let mut net = SimNet::new(1, NetParams::default());
        net.send(base, 0);
        net.partition(base + ms(10), Some(base + ms(50)));
        net.partition(base + ms(100), None);
        for (i, t) in [5u64, 10, 30, 49, 50, 99, 100, 5000]
            .into_iter()
            .enumerate()
        {
            net.send(base + ms(t), i + 1);
        }
        let mut got = Vec::new();
        while let Some(t) = net.next_delivery() {
            while let Some(p) = net.poll_delivery(t) {
                got.push(p);
            }
        }
        assert_eq!(got, [0, 1, 5, 6]);
        let s = net.stats();
        assert_eq!((s.sent, s.lost, s.partitioned, s.delivered), (9, 5, 5, 4));
        assert!(net.is_partitioned(base + ms(1_000_000)));
    }

    #[test]
    fn set_params_applies_to_later_sends_only() {
        let base = origin();
        let mut net = SimNet::new(9, NetParams::default());
        net.send(base, 1);
        net.set_params(NetParams {
            latency: ms(5),
            ..NetParams::default()
        });
        assert_eq!(net.params().latency, ms(5));
        net.send(base, 2);
        // FIFO: the second cannot overtake the first without `reorder`.
        assert_eq!(net.poll_delivery(base + ms(5)), None);
        assert_eq!(net.poll_delivery(base + ms(20)), Some(1));
        assert_eq!(net.poll_delivery(base + ms(20)), Some(2));
        assert_eq!(net.in_flight(), 0);
    }
}
