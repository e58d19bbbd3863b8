//! Black–Scholes prices and greeks for European index and stock options.

/// Standard normal CDF (Abramowitz & Stegun 26.2.17; absolute error below 7.5e-8).
pub fn norm_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.231_641_9 * x.abs());
    let poly =
        t * (0.319_381_530 + t * (-0.356_563_782 + t * (1.781_477_937 + t * (-1.821_255_978 + t * 1.330_274_429))));
    let tail = norm_pdf(x) * poly;
    if x >= 0.0 { 1.0 - tail } else { tail }
}

pub fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Price and greeks of one option. Theta is per calendar day, vega and rho per 1% move.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Greeks {
    pub price: f64,
    pub delta: f64,
    pub gamma: f64,
    pub theta: f64,
    pub vega: f64,
    pub rho: f64,
}

/// Black–Scholes for spot `s`, strike `k`, `t` years, rate `r`, volatility `sigma`.
pub fn black_scholes(call: bool, s: f64, k: f64, t: f64, r: f64, sigma: f64) -> Greeks {
    let intrinsic = if call { (s - k).max(0.0) } else { (k - s).max(0.0) };
    if t <= 1e-9 || sigma <= 1e-9 || s <= 0.0 || k <= 0.0 {
        let itm = intrinsic > 0.0;
        let delta = match (call, itm) {
            (true, true) => 1.0,
            (false, true) => -1.0,
            _ => 0.0,
        };
        return Greeks {
            price: intrinsic,
            delta,
            gamma: 0.0,
            theta: 0.0,
            vega: 0.0,
            rho: 0.0,
        };
    }
    let sqrt_t = t.sqrt();
    let d1 = ((s / k).ln() + (r + 0.5 * sigma * sigma) * t) / (sigma * sqrt_t);
    let d2 = d1 - sigma * sqrt_t;
    let disc = (-r * t).exp();
    let pdf = norm_pdf(d1);
    let gamma = pdf / (s * sigma * sqrt_t);
    let vega = s * pdf * sqrt_t / 100.0;
    if call {
        let price = s * norm_cdf(d1) - k * disc * norm_cdf(d2);
        let theta = (-s * pdf * sigma / (2.0 * sqrt_t) - r * k * disc * norm_cdf(d2)) / 365.0;
        Greeks {
            price,
            delta: norm_cdf(d1),
            gamma,
            theta,
            vega,
            rho: k * t * disc * norm_cdf(d2) / 100.0,
        }
    } else {
        let price = k * disc * norm_cdf(-d2) - s * norm_cdf(-d1);
        let theta = (-s * pdf * sigma / (2.0 * sqrt_t) + r * k * disc * norm_cdf(-d2)) / 365.0;
        Greeks {
            price,
            delta: norm_cdf(d1) - 1.0,
            gamma,
            theta,
            vega,
            rho: -k * t * disc * norm_cdf(-d2) / 100.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn textbook_value() {
        // Hull's example: S=42, K=40, r=10%, sigma=20%, T=0.5 → call 4.76, put 0.81.
        let c = black_scholes(true, 42.0, 40.0, 0.5, 0.1, 0.2);
        let p = black_scholes(false, 42.0, 40.0, 0.5, 0.1, 0.2);
        assert!((c.price - 4.76).abs() < 0.01, "{c:?}");
        assert!((p.price - 0.81).abs() < 0.01, "{p:?}");
    }

    proptest! {
        #[test]
        fn put_call_parity(s in 50.0f64..50_000.0, m in 0.7f64..1.3, t in 0.001f64..1.0, sigma in 0.05f64..0.8) {
            let k = s * m;
            let r = 0.065;
            let c = black_scholes(true, s, k, t, r, sigma);
            let p = black_scholes(false, s, k, t, r, sigma);
            let parity = s - k * (-r * t).exp();
            prop_assert!((c.price - p.price - parity).abs() < 1e-4 * s);
            prop_assert!(c.delta >= 0.0 && c.delta <= 1.0 && p.delta <= 0.0 && p.delta >= -1.0);
        }
    }
}
