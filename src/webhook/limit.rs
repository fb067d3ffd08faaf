//! Token buckets, per source and overall, checked before a body is read or a MAC computed.
//!
//! Why both: the per-source bucket stops one flooding address without touching anyone else,
//! and a source refused by its own bucket costs the overall bucket nothing, so it cannot
//! drain the budget legitimate senders share. The overall bucket bounds what many addresses
//! together can make berth do. Everything refused is answered 429 with `Retry-After`, and
//! refilling never stops, so a flood delays legitimate deliveries at worst until it ends
//! (and the poll timer still syncs meanwhile).
//!
//! A source is an IPv4 address or an IPv6 /64 (one host usually owns a whole /64). Memory is
//! bounded: at `max_sources`, buckets that have refilled (they remember nothing) are dropped
//! first, then the least recently used.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::WebhookError;

/// A bucket of `burst` tokens, one added back every `refill`. A request takes one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    pub burst: u32,
    pub refill: Duration,
}

/// The limits of the webhook receivers, all providers together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// For each source address. Default: 20 at once, then one every 2 s (30 a minute).
    pub per_source: TokenBucket,
    /// For all sources together. Default: 60 at once, then 4 a second.
    pub overall: TokenBucket,
    /// How many sources are remembered. Default 4,096.
    pub max_sources: usize,
    /// Requests being read or verified at once; a slow sender holds one until
    /// `body_timeout`. Default 32.
    pub max_in_flight: usize,
}

impl Default for RateLimits {
    /// Generous for webhooks (a push sends one delivery per hook), tight for a flood.
    fn default() -> Self {
        RateLimits {
            per_source: TokenBucket {
                burst: 20,
                refill: Duration::from_secs(2),
            },
            overall: TokenBucket {
                burst: 60,
                refill: Duration::from_millis(250),
            },
            max_sources: 4096,
            max_in_flight: 32,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SourceKey {
    V4(u32),
    V6Prefix(u64),
}

fn key(source: IpAddr) -> SourceKey {
    match source.to_canonical() {
        IpAddr::V4(a) => SourceKey::V4(a.to_bits()),
        IpAddr::V6(a) => SourceKey::V6Prefix((a.to_bits() >> 64) as u64),
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(config: TokenBucket, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(config.burst),
            updated: now,
        }
    }

    fn refill(&mut self, config: TokenBucket, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated);
        let added = elapsed.as_secs_f64() / config.refill.as_secs_f64().max(1e-9);
        self.tokens = (self.tokens + added).min(f64::from(config.burst));
        self.updated = now;
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, config: TokenBucket, now: Instant) -> Result<(), Duration> {
        self.refill(config, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(config.refill.mul_f64(1.0 - self.tokens))
        }
    }

    fn is_full(&self, config: TokenBucket, now: Instant) -> bool {
        let mut b = *self;
        b.refill(config, now);
        b.tokens >= f64::from(config.burst)
    }
}

/// The buckets. Pure over the `Instant` it is given, so tests need no clock.
#[derive(Debug)]
pub(crate) struct Limiter {
    limits: RateLimits,
    overall: Bucket,
    sources: HashMap<SourceKey, Bucket>,
}

impl Limiter {
    pub fn new(limits: RateLimits, now: Instant) -> Limiter {
        Limiter {
            overall: Bucket::full(limits.overall, now),
            limits,
            sources: HashMap::new(),
        }
    }

    /// Takes a token from `source`'s bucket, then from the overall one.
    pub fn admit(&mut self, source: IpAddr, now: Instant) -> Result<(), WebhookError> {
        let k = key(source);
        if !self.sources.contains_key(&k) {
            self.make_room(now);
        }
        let per_source = self.limits.per_source;
        let bucket = self
            .sources
            .entry(k)
            .or_insert_with(|| Bucket::full(per_source, now));
        bucket
            .take(per_source, now)
            .map_err(|retry_after| WebhookError::RateLimited {
                scope: "from this address",
                retry_after,
            })?;
        self.overall
            .take(self.limits.overall, now)
            .map_err(|retry_after| WebhookError::RateLimited {
                scope: "overall",
                retry_after,
            })
    }

    fn make_room(&mut self, now: Instant) {
        if self.sources.len() < self.limits.max_sources {
            return;
        }
        let per_source = self.limits.per_source;
        self.sources.retain(|_, b| !b.is_full(per_source, now));
        if self.sources.len() >= self.limits.max_sources {
            if let Some(oldest) = self
                .sources
                .iter()
                .min_by_key(|(_, b)| b.updated)
                .map(|(k, _)| *k)
            {
                self.sources.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(burst: u32, overall: u32) -> RateLimits {
        RateLimits {
            per_source: TokenBucket {
                burst,
                refill: Duration::from_secs(1),
            },
            overall: TokenBucket {
                burst: overall,
                refill: Duration::from_secs(1),
            },
            max_sources: 2,
            max_in_flight: 1,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_gets_its_burst_then_waits_for_the_refill() {
        let t0 = Instant::now();
        let mut l = Limiter::new(limits(2, 100), t0);
        assert!(l.admit(ip("10.0.0.1"), t0).is_ok());
        assert!(l.admit(ip("10.0.0.1"), t0).is_ok());
        let Err(WebhookError::RateLimited { retry_after, scope }) = l.admit(ip("10.0.0.1"), t0)
        else {
            panic!("third request should be limited");
        };
        assert_eq!(scope, "from this address");
        assert_eq!(retry_after, Duration::from_secs(1));
        assert!(l.admit(ip("10.0.0.1"), t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn a_flooding_source_does_not_drain_the_overall_budget() {
        let t0 = Instant::now();
        let mut l = Limiter::new(limits(2, 3), t0);
        for _ in 0..1000 {
            let _ = l.admit(ip("10.0.0.1"), t0);
        }
        assert!(l.admit(ip("10.0.0.2"), t0).is_ok());
    }

    #[test]
    fn many_sources_together_meet_the_overall_limit() {
        let t0 = Instant::now();
        let mut l = Limiter::new(limits(5, 2), t0);
        assert!(l.admit(ip("10.0.0.1"), t0).is_ok());
        assert!(l.admit(ip("10.0.0.2"), t0).is_ok());
        let e = l.admit(ip("10.0.0.3"), t0).unwrap_err();
        assert!(e.to_string().contains("overall"), "{e}");
    }

    #[test]
    fn an_ipv6_host_is_one_source_across_its_64() {
        let t0 = Instant::now();
        let mut l = Limiter::new(limits(1, 100), t0);
        assert!(l.admit(ip("2001:db8:1:2::1"), t0).is_ok());
        assert!(l.admit(ip("2001:db8:1:2::ffff"), t0).is_err());
        assert!(l.admit(ip("2001:db8:1:3::1"), t0).is_ok());
        // An IPv4-mapped address is the IPv4 address.
        assert!(l.admit(ip("10.9.9.9"), t0).is_ok());
        assert!(l.admit(ip("::ffff:10.9.9.9"), t0).is_err());
    }

    #[test]
    fn memory_stays_bounded_and_refilled_buckets_go_first() {
        let t0 = Instant::now();
        let mut l = Limiter::new(limits(1, 100), t0);
        assert!(l.admit(ip("10.0.0.1"), t0).is_ok());
        assert!(l.admit(ip("10.0.0.2"), t0).is_ok());
        let later = t0 + Duration::from_secs(5);
        assert!(l.admit(ip("10.0.0.3"), later).is_ok());
        assert!(l.sources.len() <= 2);
    }
}
