//! The portal's subscribe form read into the engine's [`Inputs`]: every input a subscriber sets
//! (sizing by lots × multiplier or by a share of the available margin, the largest exposure, open
//! positions, orders a day, the day's loss limit, the product, which of the strategy's
//! instruments, paper or live), each wrong field said in words that name it. The bounds are
//! checked by the engine afterwards, every problem at once.

use std::str::FromStr;

use rust_decimal::Decimal;
use stoxide_engine::subscription::{Inputs, Sizing};
use stoxide_portal::CatalogEntry;
use upstox_types::{InstrumentKey, Product};

/// A form's fields as the browser sent them (a name may repeat: `only`).
pub(crate) type Fields = [(String, String)];

/// The first value of `name`.
pub(crate) fn get<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// `raw` read as a number, or the words that say `what` is wrong with it.
pub(crate) fn parse_number<T: FromStr>(raw: &str, what: &str) -> Result<T, String> {
    if raw.trim().is_empty() {
        return Err(format!("{what} is missing: enter a number."));
    }
    raw.trim()
        .parse()
        .map_err(|_| format!("{what} must be a number (it was {raw:?})."))
}

fn number<T: FromStr>(fields: &Fields, name: &str, what: &str) -> Result<T, String> {
    parse_number(get(fields, name).unwrap_or_default(), what)
}

/// Reads the subscribe form for `strategy`.
///
/// # Errors
/// The first field that is missing or not what it should be, in words.
pub(crate) fn subscribe_inputs(fields: &Fields, strategy: &CatalogEntry) -> Result<Inputs, String> {
    let sizing = match get(fields, "sizing").unwrap_or("lots") {
        "lots" => Sizing::FixedLots {
            lots: number(fields, "lots", "Lots per signal")?,
            multiplier: match get(fields, "multiplier").map(str::trim) {
                None | Some("") => 1,
                Some(_) => number(fields, "multiplier", "The multiplier")?,
            },
        },
        "margin" => Sizing::MarginPercent {
            percent: number(fields, "margin_percent", "The share of your margin (%)")?,
        },
        other => {
            return Err(format!(
                "{other:?} is not a way to size orders: choose lots or a share of margin."
            ));
        }
    };
    let product = get(fields, "product").unwrap_or_default().trim();
    let product = Product::from_str(product)
        .map_err(|_| format!("{product:?} is not a product: choose Intraday or Delivery."))?;
    let chosen: Vec<InstrumentKey> = fields
        .iter()
        .filter(|(n, _)| n == "only")
        .map(|(_, v)| {
            InstrumentKey::from_str(v).map_err(|_| format!("{v:?} is not an instrument of {}.", strategy.name))
        })
        .collect::<Result<_, _>>()?;
    // Every instrument ticked is no whitelist at all: a later version's new instruments then
    // come with its new consent.
    let whitelist = if fields.iter().any(|(n, _)| n == "instruments_shown") || !chosen.is_empty() {
        if chosen.is_empty() {
            return Err("Choose at least one instrument to trade.".into());
        }
        let all = strategy
            .instruments
            .iter()
            .all(|i| chosen.iter().any(|c| c.to_string() == *i));
        (!all).then_some(chosen)
    } else {
        None
    };
    let bounds = &strategy.bounds;
    let or_bound = |name: &str, what: &str, bound: u32| -> Result<u32, String> {
        match get(fields, name).map(str::trim) {
            None | Some("") => Ok(bound),
            Some(_) => number(fields, name, what),
        }
    };
    Ok(Inputs {
        sizing,
        max_exposure: number::<Decimal>(fields, "max_exposure", "The largest exposure")?,
        max_open_positions: or_bound(
            "max_open_positions",
            "The most open positions",
            bounds.max_open_positions,
        )?,
        max_orders_per_day: or_bound("max_orders_per_day", "The most orders a day", bounds.max_orders_per_day)?,
        daily_max_loss: number::<Decimal>(fields, "daily_max_loss", "The day's loss limit")?,
        product,
        whitelist,
        paper: get(fields, "paper") == Some("on"),
    })
}

/// What a subscribe or edit form shows in its fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FormValues {
    /// Sized by a share of margin (else fixed lots).
    pub(crate) margin: bool,
    pub(crate) lots: String,
    pub(crate) multiplier: String,
    pub(crate) margin_percent: String,
    pub(crate) max_exposure: String,
    pub(crate) daily_max_loss: String,
    pub(crate) max_open_positions: String,
    pub(crate) max_orders_per_day: String,
    pub(crate) delivery: bool,
    /// The instruments ticked.
    pub(crate) chosen: Vec<String>,
    pub(crate) paper: bool,
}

impl FormValues {
    /// A new subscription's: one lot, the strategy's limits, every instrument.
    pub(crate) fn defaults(c: &CatalogEntry) -> Self {
        Self {
            margin: false,
            lots: "1".into(),
            multiplier: "1".into(),
            margin_percent: String::new(),
            max_exposure: c.default_exposure().to_string(),
            daily_max_loss: "5000".into(),
            max_open_positions: c.bounds.max_open_positions.to_string(),
            max_orders_per_day: c.bounds.max_orders_per_day.to_string(),
            delivery: false,
            chosen: c.instruments.clone(),
            paper: false,
        }
    }

    /// A subscription's current inputs.
    pub(crate) fn of(i: &Inputs, c: &CatalogEntry) -> Self {
        let (margin, lots, multiplier, margin_percent) = match &i.sizing {
            Sizing::FixedLots { lots, multiplier } => (false, lots.to_string(), multiplier.to_string(), String::new()),
            Sizing::MarginPercent { percent } => (true, "1".into(), "1".into(), percent.to_string()),
        };
        Self {
            margin,
            lots,
            multiplier,
            margin_percent,
            max_exposure: i.max_exposure.to_string(),
            daily_max_loss: i.daily_max_loss.to_string(),
            max_open_positions: i.max_open_positions.to_string(),
            max_orders_per_day: i.max_orders_per_day.to_string(),
            delivery: i.product == Product::Delivery,
            chosen: i.whitelist.as_ref().map_or_else(
                || c.instruments.clone(),
                |w| w.iter().map(ToString::to_string).collect(),
            ),
            paper: i.paper,
        }
    }

    pub(crate) fn chosen(&self, key: &str) -> bool {
        self.chosen.iter().any(|c| c == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stoxide_engine::catalog::InputBounds;

    fn strategy() -> CatalogEntry {
        CatalogEntry {
            id: "momo".into(),
            name: "Momentum".into(),
            description: String::new(),
            version: 1,
            algo_name: "MOMO".into(),
            external: true,
            instruments: vec!["NSE_EQ|INE002A01018".into(), "NSE_EQ|INE467B01029".into()],
            bounds: InputBounds {
                max_lots: 5,
                max_multiplier: 3,
                max_margin_percent: Decimal::from(50),
                max_exposure: Decimal::from(500_000),
                max_orders_per_day: 40,
                max_open_positions: 4,
            },
        }
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    const BASE: [(&str, &str); 4] = [
        ("lots", "2"),
        ("max_exposure", "100000"),
        ("daily_max_loss", "5000"),
        ("product", "I"),
    ];

    #[test]
    fn the_plain_form_is_lots_with_the_strategy_s_limits() {
        let i = subscribe_inputs(&form(&BASE), &strategy()).expect("inputs");
        assert_eq!(i.sizing, Sizing::FixedLots { lots: 2, multiplier: 1 });
        assert_eq!(i.max_open_positions, 4);
        assert_eq!(i.max_orders_per_day, 40);
        assert_eq!(i.whitelist, None);
        assert!(!i.paper);
    }

    #[test]
    fn every_input_is_read() {
        let mut f = form(&BASE);
        f.extend(form(&[
            ("sizing", "margin"),
            ("margin_percent", "12.5"),
            ("max_open_positions", "2"),
            ("max_orders_per_day", "10"),
            ("instruments_shown", "1"),
            ("only", "NSE_EQ|INE467B01029"),
            ("paper", "on"),
        ]));
        let i = subscribe_inputs(&f, &strategy()).expect("inputs");
        assert_eq!(
            i.sizing,
            Sizing::MarginPercent {
                percent: "12.5".parse().expect("d")
            }
        );
        assert_eq!((i.max_open_positions, i.max_orders_per_day), (2, 10));
        assert_eq!(i.whitelist, Some(vec!["NSE_EQ|INE467B01029".parse().expect("key")]));
        assert!(i.paper);
    }

    #[test]
    fn every_instrument_ticked_is_no_whitelist_and_none_is_refused() {
        let mut f = form(&BASE);
        f.extend(form(&[
            ("instruments_shown", "1"),
            ("only", "NSE_EQ|INE002A01018"),
            ("only", "NSE_EQ|INE467B01029"),
        ]));
        assert_eq!(subscribe_inputs(&f, &strategy()).expect("inputs").whitelist, None);
        let mut f = form(&BASE);
        f.push(("instruments_shown".into(), "1".into()));
        assert_eq!(
            subscribe_inputs(&f, &strategy()).expect_err("none"),
            "Choose at least one instrument to trade."
        );
    }

    #[test]
    fn a_subscription_s_inputs_read_back_through_its_form() {
        let mut f = form(&BASE);
        f.extend(form(&[
            ("sizing", "margin"),
            ("margin_percent", "12.5"),
            ("max_open_positions", "2"),
            ("instruments_shown", "1"),
            ("only", "NSE_EQ|INE467B01029"),
            ("paper", "on"),
        ]));
        let s = strategy();
        let i = subscribe_inputs(&f, &s).expect("inputs");
        let v = FormValues::of(&i, &s);
        assert!(v.margin && v.paper && !v.delivery);
        assert_eq!(
            (v.margin_percent.as_str(), v.max_open_positions.as_str()),
            ("12.5", "2")
        );
        assert!(v.chosen("NSE_EQ|INE467B01029") && !v.chosen("NSE_EQ|INE002A01018"));
        let shown = vec![
            ("sizing".to_owned(), "margin".to_owned()),
            ("lots".to_owned(), v.lots.clone()),
            ("margin_percent".to_owned(), v.margin_percent.clone()),
            ("max_exposure".to_owned(), v.max_exposure.clone()),
            ("daily_max_loss".to_owned(), v.daily_max_loss.clone()),
            ("max_open_positions".to_owned(), v.max_open_positions.clone()),
            ("max_orders_per_day".to_owned(), v.max_orders_per_day.clone()),
            ("product".to_owned(), "I".to_owned()),
            ("instruments_shown".to_owned(), "1".to_owned()),
            ("only".to_owned(), "NSE_EQ|INE467B01029".to_owned()),
            ("paper".to_owned(), "on".to_owned()),
        ];
        assert_eq!(
            subscribe_inputs(&shown, &s).expect("again"),
            i,
            "what the form shows is what was set"
        );
        assert!(FormValues::defaults(&s).chosen("NSE_EQ|INE002A01018"));
    }

    #[test]
    fn a_wrong_field_is_named() {
        let mut f = form(&BASE);
        f[0].1 = "two".into();
        assert_eq!(
            subscribe_inputs(&f, &strategy()).expect_err("lots"),
            "Lots per signal must be a number (it was \"two\")."
        );
        let f = form(&[("lots", "1"), ("daily_max_loss", "1"), ("product", "I")]);
        assert_eq!(
            subscribe_inputs(&f, &strategy()).expect_err("exposure"),
            "The largest exposure is missing: enter a number."
        );
        let mut f = form(&BASE);
        f[3].1 = "X".into();
        assert!(
            subscribe_inputs(&f, &strategy())
                .expect_err("product")
                .contains("not a product")
        );
        let mut f = form(&BASE);
        f.push(("sizing".into(), "vibes".into()));
        assert!(
            subscribe_inputs(&f, &strategy())
                .expect_err("sizing")
                .contains("not a way to size")
        );
        let mut f = form(&BASE);
        f.push(("only".into(), "no pipe".into()));
        assert!(
            subscribe_inputs(&f, &strategy())
                .expect_err("key")
                .contains("not an instrument of Momentum")
        );
    }
}
