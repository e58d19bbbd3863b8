//! A seeded random price path that can be read at any instant in O(levels).
//!
//! The log-price is a sum of layers of piecewise-linear noise; layer `j` has knots every `2^j`
//! seconds and an amplitude proportional to `sqrt(2^j)`, which gives increments whose variance
//! grows linearly with the horizon, like Brownian motion. Because any instant can be evaluated
//! directly, REST quotes, candles of any age and (later) feed ticks all read the same path, and
//! the same seed gives the same prices.

/// splitmix64: a fast, well-mixed 64-bit hash.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform number in [0, 1) from a hash.
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// An approximately standard normal value from a hash (Irwin–Hall of four 16-bit uniforms).
fn gaussian(h: u64) -> f64 {
    let sum: f64 = (0..4).map(|i| ((h >> (16 * i)) & 0xFFFF) as f64 / 65536.0).sum();
    (sum - 2.0) * 3f64.sqrt()
}

/// One instrument's path.
#[derive(Debug, Clone, Copy)]
pub struct PricePath {
    pub base: f64,
    /// Standard deviation of the log-price over 24 hours.
    pub daily_vol: f64,
    pub salt: u64,
    /// Number of noise layers; fewer layers give a mean-reverting path (used for India VIX).
    pub levels: u32,
}

/// Makes the layers' total variance match `daily_vol` (see the module docs).
const LAYER_SCALE: f64 = 0.353_553_390_593_273_8; // 1/sqrt(8)

/// How many instants a path remembers: a quote reads its underlying now, at the last whole
/// second and at the previous close, so one slot thrashed between them.
const RECENT: usize = 4;

/// A path's last evaluations: instants (bits; `u64::MAX`, a NaN, never matches) and values.
#[derive(Debug, Clone, Copy)]
struct Recent {
    at: [u64; RECENT],
    value: [f64; RECENT],
    next: usize,
}

/// Per thread: (salt, levels, vol bits) → the path's last evaluations.
type Memo = hashbrown::HashMap<(u64, u32, u64), Recent>;

thread_local! {
    /// Every option on an underlying reads that underlying's path at the same instants in one
    /// feed tick: its last values are kept instead of summing the layers again (the feed spent
    /// 44 % of its time here). The path is a pure function, so this changes no price.
    static LAST: std::cell::RefCell<Memo> = std::cell::RefCell::new(Memo::default());
}

impl PricePath {
    /// Log-return from `base` at `t` (seconds since the Unix epoch).
    pub fn log_return(&self, t: f64) -> f64 {
        let key = (self.salt, self.levels, self.daily_vol.to_bits());
        let at = t.to_bits();
        if let Some(v) = LAST.with(|m| {
            m.borrow()
                .get(&key)
                .and_then(|r| r.at.iter().position(|&a| a == at).map(|i| r.value[i]))
        }) {
            return v;
        }
        let v = self.sum_layers(t);
        LAST.with(|m| {
            let mut m = m.borrow_mut();
            let r = m.entry(key).or_insert(Recent {
                at: [u64::MAX; RECENT],
                value: [0.0; RECENT],
                next: 0,
            });
            let i = r.next;
            r.at[i] = at;
            r.value[i] = v;
            r.next = (i + 1) % RECENT;
        });
        v
    }

    fn sum_layers(&self, t: f64) -> f64 {
        let sigma_per_sqrt_sec = self.daily_vol / 86_400f64.sqrt();
        let mut acc = 0.0;
        for j in 0..self.levels {
            let step = (1u64 << j) as f64;
            let pos = t / step;
            let k = pos.floor();
            let frac = pos - k;
            let k = k as i64 as u64;
            let layer = self.salt ^ (u64::from(j) << 56);
            let z0 = gaussian(mix(layer ^ mix(k)));
            let z1 = gaussian(mix(layer ^ mix(k.wrapping_add(1))));
            acc += LAYER_SCALE * sigma_per_sqrt_sec * step.sqrt() * (z0 + (z1 - z0) * frac);
        }
        acc
    }

    /// The price at `t`.
    pub fn price(&self, t: f64) -> f64 {
        self.base * self.log_return(t).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> PricePath {
        PricePath {
            base: 26_000.0,
            daily_vol: 0.01,
            salt: 7,
            levels: 27,
        }
    }

    #[test]
    fn same_seed_same_price_and_continuity() {
        let p = path();
        let t = 1_795_000_000.0;
        assert_eq!(p.price(t), p.price(t));
        assert!((p.price(t) / p.price(t + 1.0) - 1.0).abs() < 0.002);
    }

    #[test]
    fn daily_moves_have_the_configured_scale() {
        let p = path();
        let t0 = 1_790_000_000.0;
        let n = 400;
        let var: f64 = (0..n)
            .map(|i| {
                let a = t0 + f64::from(i) * 86_400.0;
                let r = p.log_return(a + 86_400.0) - p.log_return(a);
                r * r
            })
            .sum::<f64>()
            / f64::from(n);
        let sd = var.sqrt();
        assert!(sd > 0.005 && sd < 0.02, "daily sd {sd}");
    }
}
