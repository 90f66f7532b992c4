//! Fault injection: the misbehaving network and device that the protocol must survive.
//!
//! Given as `name=value` pairs, comma separated (`--faults drop-in=0.2,dup-in=0.1,slow-ms=500`):
//!
//! | name | meaning |
//! |---|---|
//! | `drop-in`, `drop-out` | probability of losing an incoming command / outgoing response |
//! | `dup-in`, `dup-out` | probability of handling a command twice / publishing a response twice |
//! | `delay-in-ms`, `delay-out-ms` | each message waits a random time up to this long |
//! | `reorder-in`, `reorder-out` | probability of holding a message back so later ones overtake it |
//! | `cut` | probability of losing power mid-command (the connection drops, the device reboots) |
//! | `slow-ms` | how long acting on a command takes |
//! | `stuck` | probability that the relay is held when a command comes (something else drives it, Tasmota's `PowerLock`): it does not switch; a device of another family answers as its firmware does (a Shelly with its lock error, the others with their unchanged state), a Switchboard device answers `failed` |

use std::time::Duration;

use tokio::time::Instant;

/// What can go wrong, with what probability.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Lose an incoming command.
    pub drop_in: f64,
    /// Handle an incoming command twice.
    pub dup_in: f64,
    /// Delay incoming commands up to this long.
    pub delay_in: Duration,
    /// Hold an incoming command back.
    pub reorder_in: f64,
    /// Lose an outgoing response.
    pub drop_out: f64,
    /// Publish an outgoing response twice.
    pub dup_out: f64,
    /// Delay outgoing responses up to this long.
    pub delay_out: Duration,
    /// Hold an outgoing response back.
    pub reorder_out: f64,
    /// Lose power mid-command.
    pub cut: f64,
    /// Time spent acting on each command.
    pub slow: Duration,
    /// The relay is held: a command does not switch it.
    pub stuck: f64,
}

/// How long a held-back message waits, so that later ones overtake it.
pub const HOLD_BACK: Duration = Duration::from_millis(300);

/// A fault specification that cannot be understood.
#[derive(Debug, thiserror::Error)]
#[error("fault {item:?}: {why}")]
pub struct FaultError {
    item: String,
    why: &'static str,
}

impl Faults {
    /// Parses `name=value,name=value`.
    pub fn parse(spec: &str) -> Result<Faults, FaultError> {
        let mut f = Faults::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let err = |why| FaultError {
                item: item.to_owned(),
                why,
            };
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| err("expected name=value"))?;
            let prob = || -> Result<f64, FaultError> {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| err("expected a probability between 0 and 1"))
            };
            let ms = || -> Result<Duration, FaultError> {
                value
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| err("expected milliseconds"))
            };
            match name.trim() {
                "drop-in" => f.drop_in = prob()?,
                "dup-in" => f.dup_in = prob()?,
                "delay-in-ms" => f.delay_in = ms()?,
                "reorder-in" => f.reorder_in = prob()?,
                "drop-out" => f.drop_out = prob()?,
                "dup-out" => f.dup_out = prob()?,
                "delay-out-ms" => f.delay_out = ms()?,
                "reorder-out" => f.reorder_out = prob()?,
                "cut" => f.cut = prob()?,
                "slow-ms" => f.slow = ms()?,
                "stuck" => f.stuck = prob()?,
                _ => return Err(err("unknown fault")),
            }
        }
        Ok(f)
    }

    /// How many copies of an incoming message to handle (0, 1 or 2), and after how long.
    pub fn incoming(&self, rng: &mut fastrand::Rng) -> Vec<Duration> {
        plan(
            rng,
            self.drop_in,
            self.dup_in,
            self.delay_in,
            self.reorder_in,
        )
    }

    /// How many copies of an outgoing message to publish (0, 1 or 2), and after how long.
    pub fn outgoing(&self, rng: &mut fastrand::Rng) -> Vec<Duration> {
        plan(
            rng,
            self.drop_out,
            self.dup_out,
            self.delay_out,
            self.reorder_out,
        )
    }
}

fn plan(
    rng: &mut fastrand::Rng,
    drop: f64,
    dup: f64,
    delay: Duration,
    reorder: f64,
) -> Vec<Duration> {
    if rng.f64() < drop {
        return Vec::new();
    }
    let copies = if rng.f64() < dup { 2 } else { 1 };
    (0..copies)
        .map(|_| {
            let max = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
            let mut d = Duration::from_millis(if max == 0 { 0 } else { rng.u64(0..=max) });
            if rng.f64() < reorder {
                d += HOLD_BACK;
            }
            d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let f = Faults::parse("drop-in=0.5, dup-out=1,slow-ms=20,cut=0").unwrap();
        assert_eq!(f.drop_in, 0.5);
        assert_eq!(f.dup_out, 1.0);
        assert_eq!(f.slow, Duration::from_millis(20));
        assert!(Faults::parse("drop-in=2").is_err());
        assert!(Faults::parse("explode=1")
            .unwrap_err()
            .to_string()
            .contains("explode"));
        assert_eq!(Faults::parse("").unwrap(), Faults::default());
    }

    #[test]
    fn plans_follow_probabilities() {
        let mut rng = fastrand::Rng::with_seed(1);
        let none = Faults::default();
        assert_eq!(none.incoming(&mut rng), vec![Duration::ZERO]);
        let lossy = Faults::parse("drop-in=1").unwrap();
        assert!(lossy.incoming(&mut rng).is_empty());
        let dup = Faults::parse("dup-out=1,delay-out-ms=10").unwrap();
        let p = dup.outgoing(&mut rng);
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|d| *d <= Duration::from_millis(10)));
    }
}

/// Messages waiting out an injected delay, each until its own instant.
#[derive(Debug)]
pub struct Delayed<T> {
    waiting: Vec<(Instant, T)>,
}

impl<T> Default for Delayed<T> {
    fn default() -> Self {
        Delayed {
            waiting: Vec::new(),
        }
    }
}

impl<T> Delayed<T> {
    /// Holds `item` back for `delay` from now.
    pub fn push(&mut self, delay: Duration, item: T) {
        self.waiting.push((Instant::now() + delay, item));
    }

    /// Takes out what is due at `now`, in the order it was held back.
    pub fn take_due(&mut self, now: Instant) -> Vec<T> {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.waiting = later;
        due.into_iter().map(|(_, item)| item).collect()
    }

    /// When the next one is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.waiting.iter().map(|(at, _)| *at).min()
    }

    /// How many are held back.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether none is held back.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Forgets every one held back.
    pub fn clear(&mut self) {
        self.waiting.clear();
    }
}
