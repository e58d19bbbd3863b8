//! `stoxide-portal`: what a signed-in person does in the portal, over the people
//! (`stoxide-people`) and the engine's desk (`stoxide-engine`): read the strategy catalog,
//! subscribe one of their accounts, read exactly what a consent agrees to, consent with their
//! password, change inputs (back to awaiting consent), pause and resume, and pull their own kill
//! switch; set up two-factor sign-in (TOTP, sealed in the vault) and sign in with it. Every act
//! goes through the person's [`Viewer`]: an account or subscription outside their scope is
//! [`Error::NotFound`], exactly like one that does not exist.

mod control;
pub mod engine_link;
pub mod notify;
mod two_factor;

use std::net::IpAddr;

use rust_decimal::Decimal;
use secrecy::SecretString;
use serde::Serialize;
use stoxide_engine::catalog::Strategy;
use stoxide_engine::desk::{Actor, Desk};
use stoxide_engine::risk::{Level, TradingState};
use stoxide_engine::subscription::{Inputs, Sizing, SubState, Subscription, consent_hash};
use stoxide_people::{People, Viewer};

/// What went wrong, in words a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not there, or not theirs.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// What the consent page showed is not what would be agreed to now.
    #[error("the subscription changed since the consent page was shown: read it again and confirm")]
    ConsentChanged,
    /// A setting that will not do.
    #[error("{0}")]
    Invalid(String),
    /// Two-factor set-up or a code that does not fit.
    #[error("{0}")]
    TwoFactor(String),
    /// This person signs in with a code too.
    #[error("enter the 6-digit code from your authenticator app as well")]
    CodeNeeded,
    #[error(transparent)]
    Vault(#[from] stoxide_vault::Error),
    #[error(transparent)]
    People(#[from] stoxide_people::Error),
    #[error(transparent)]
    Engine(#[from] stoxide_engine::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

pub use control::{AccountHealth, AuditCheck, ClientHealth, MAX_SIGNALS, Registered, SignalFanout};
pub use two_factor::{ISSUER, TwoFactorSetup};

/// How a person confirms an act that needs it (a consent).
#[derive(Debug)]
pub enum Confirm {
    Password(SecretString),
    /// The current code of their authenticator app (only with two-factor set up).
    Code(String),
}

/// A strategy as the catalog shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatalogEntry {
    pub id: String,
    pub name: String,
    pub description: String,
    pub version: u32,
    pub algo_name: String,
    pub instruments: Vec<String>,
    /// The most each input may be.
    pub bounds: stoxide_engine::catalog::InputBounds,
    /// Its signals come from the vendor's servers (signed with its secret), not from our process.
    pub external: bool,
}

impl CatalogEntry {
    /// The largest exposure a subscribe form offers first: ₹1,00,000, or the bound when lower.
    pub fn default_exposure(&self) -> Decimal {
        self.bounds.max_exposure.min(Decimal::from(100_000))
    }
}

impl From<Strategy> for CatalogEntry {
    fn from(s: Strategy) -> Self {
        Self {
            external: s.source == stoxide_engine::catalog::SignalSource::External,
            instruments: s.instruments.iter().map(ToString::to_string).collect(),
            id: s.id,
            name: s.name,
            description: s.description,
            version: s.version,
            algo_name: s.algo_name,
            bounds: s.bounds,
        }
    }
}

/// Exactly what a consent agrees to, and the hash that names it (the confirmation must carry it
/// back, so a consent is to what was shown).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsentPreview {
    pub subscription: String,
    pub account: String,
    pub state: SubState,
    pub strategy: CatalogEntry,
    /// How orders are sized, in words.
    pub sizing: String,
    pub product: String,
    pub instruments: Vec<String>,
    pub max_exposure: Decimal,
    pub daily_max_loss: Decimal,
    pub max_orders_per_day: u32,
    pub max_open_positions: u32,
    /// Orders go to the paper broker, not to Upstox.
    pub paper: bool,
    pub hash: String,
    /// One order's size at today's last prices, per instrument (filled in by whoever can read
    /// prices; not part of what the hash names).
    pub at_todays_prices: Vec<AtTodaysPrice>,
    /// The sizing itself, for pricing (`sizing` says it in words).
    #[serde(skip)]
    pub sizing_inputs: Sizing,
}

/// One order of a subscription at today's price: what a fixed size means in shares and rupees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtTodaysPrice {
    pub instrument: String,
    /// The trading symbol, when the instrument master knows it.
    pub symbol: Option<String>,
    pub lot_size: Option<u32>,
    pub last_price: Option<Decimal>,
    /// Units in one order (fixed lots only: a margin share depends on the margin at the time).
    pub units: Option<u64>,
    /// `units × last_price`.
    pub rupees: Option<Decimal>,
}

/// What one order of `sizing` is at today's prices, for each instrument: `lookup` gives an
/// instrument's (trading symbol, lot size) from the instrument master, `ltps` its last price.
pub fn at_todays_prices(
    sizing: &Sizing,
    instruments: &[String],
    lookup: impl Fn(&str) -> Option<(String, u32)>,
    ltps: &std::collections::HashMap<String, Decimal>,
) -> Vec<AtTodaysPrice> {
    instruments
        .iter()
        .map(|key| {
            let found = lookup(key);
            let lot_size = found.as_ref().map(|f| f.1);
            let units = match (sizing, lot_size) {
                (Sizing::FixedLots { lots, multiplier }, Some(lot)) => {
                    Some(u64::from(*lots) * u64::from(*multiplier) * u64::from(lot))
                }
                _ => None,
            };
            let last_price = ltps.get(key).copied();
            AtTodaysPrice {
                instrument: key.clone(),
                symbol: found.map(|f| f.0),
                lot_size,
                last_price,
                rupees: units.zip(last_price).map(|(u, p)| p * Decimal::from(u)),
                units,
            }
        })
        .collect()
}

fn sizing_words(s: &Sizing) -> String {
    match s {
        Sizing::FixedLots { lots, multiplier } => {
            let n = u64::from(*lots) * u64::from(*multiplier);
            format!("{n} lot(s) per signal ({lots} × {multiplier})")
        }
        Sizing::MarginPercent { percent } => {
            format!("as many whole lots as {percent}% of the available margin pays for")
        }
    }
}

/// What a person's kill switch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// Halt: no order goes out until let go (open positions stay).
    Halt,
    /// Halt, cancel the open orders and exit every open position (needs the running engine).
    HaltAndExit,
    /// Let go: trade again under the consents given.
    Release,
}

/// What a person's kill switch did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KillReport {
    /// The accounts now held (`halted`) or let go again (`active`).
    pub accounts: Vec<String>,
    pub state: TradingState,
    /// Exit orders the engine queued (with [`Switch::HaltAndExit`]).
    pub exits: usize,
    /// Why nothing could be cancelled or exited (no running engine, or it refused); the halt
    /// holds all the same.
    pub exit_problem: Option<String>,
}

/// The portal's use cases.
#[derive(Debug, Clone)]
pub struct Portal {
    people: People,
    desk: Desk,
    vault: stoxide_vault::Vault,
    /// The running engine, for cancels and exits (attached once it runs).
    engine: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<dyn engine_link::EngineControl>>>,
}

fn actor(v: &Viewer, from: IpAddr) -> Actor {
    Actor {
        by: format!("{} <{}>", v.person().id, v.person().email),
        from: from.to_string(),
    }
}

impl Portal {
    /// The portal over `people` and the vault (whose store they share).
    pub fn new(people: People, vault: stoxide_vault::Vault) -> Self {
        Self {
            people,
            desk: Desk::new(vault.clone()),
            vault,
            engine: std::sync::Arc::default(),
        }
    }

    /// The running engine that cancels and exits for a kill switch (once: later calls are
    /// ignored and answer `false`).
    pub fn attach_engine(&self, engine: std::sync::Arc<dyn engine_link::EngineControl>) -> bool {
        self.engine.set(engine).is_ok()
    }

    pub fn people(&self) -> &People {
        &self.people
    }

    /// The strategies anyone signed in may subscribe to.
    ///
    /// # Errors
    /// Store errors.
    pub async fn catalog(&self) -> Result<Vec<CatalogEntry>> {
        Ok(self
            .desk
            .strategies()
            .await?
            .into_iter()
            .map(CatalogEntry::from)
            .collect())
    }

    /// One strategy of the catalog, if there is one by that id.
    ///
    /// # Errors
    /// Store errors.
    pub async fn catalog_entry(&self, id: &str) -> Result<Option<CatalogEntry>> {
        match self.desk.strategy(id).await {
            Ok(s) => Ok(Some(CatalogEntry::from(s))),
            Err(stoxide_engine::Error::UnknownStrategy(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// One subscription in scope.
    async fn own(&self, v: &Viewer, id: &str) -> Result<Subscription> {
        if v.subscription(id).await?.is_none() {
            return Err(Error::NotFound("subscription"));
        }
        Ok(self.desk.subscription(id).await?)
    }

    /// Subscribes one of the person's accounts to `strategy` with `inputs`: awaiting consent.
    ///
    /// # Errors
    /// An account outside the scope or unknown strategy ([`Error::NotFound`]); inputs outside
    /// the bounds; the account already subscribed.
    pub async fn subscribe(
        &self,
        v: &Viewer,
        account: &str,
        strategy: &str,
        inputs: Inputs,
        from: IpAddr,
    ) -> Result<Subscription> {
        if !v.sees(account) {
            return Err(Error::NotFound("account"));
        }
        match self
            .desk
            .subscribe(None, account, strategy, inputs, &actor(v, from))
            .await
        {
            Err(stoxide_engine::Error::UnknownStrategy(_)) => Err(Error::NotFound("strategy")),
            Err(stoxide_engine::Error::UnknownAccount(_)) => Err(Error::NotFound("account")),
            other => Ok(other?),
        }
    }

    /// What consenting to `id` agrees to.
    ///
    /// # Errors
    /// Not in scope; store errors.
    pub async fn consent_preview(&self, v: &Viewer, id: &str) -> Result<ConsentPreview> {
        let sub = self.own(v, id).await?;
        let strategy = self.desk.strategy(&sub.strategy).await?;
        let i = &sub.inputs;
        let instruments = i
            .whitelist
            .as_ref()
            .unwrap_or(&strategy.instruments)
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok(ConsentPreview {
            hash: consent_hash(&sub.id, &sub.account, &sub.strategy, strategy.version, i),
            subscription: sub.id.clone(),
            account: sub.account.clone(),
            state: sub.state,
            sizing: sizing_words(&i.sizing),
            product: i.product.as_str().to_owned(),
            instruments,
            max_exposure: i.max_exposure,
            daily_max_loss: i.daily_max_loss,
            max_orders_per_day: i.max_orders_per_day,
            max_open_positions: i.max_open_positions,
            paper: i.paper,
            strategy: CatalogEntry::from(strategy),
            at_todays_prices: Vec::new(),
            sizing_inputs: i.sizing.clone(),
        })
    }

    /// The person consents to `id` as shown (`hash` from [`Portal::consent_preview`]),
    /// confirming with their password or their two-factor code: the subscription becomes
    /// active, the consent recorded with who, when and from where.
    ///
    /// # Errors
    /// Not in scope; a wrong password or code; the subscription changed since it was shown; a
    /// state that cannot be activated.
    pub async fn consent(
        &self,
        v: &Viewer,
        id: &str,
        hash: &str,
        confirm: &Confirm,
        from: IpAddr,
    ) -> Result<Subscription> {
        let shown = self.consent_preview(v, id).await?;
        match confirm {
            Confirm::Password(p) => self.people.confirm(v.person(), p, from).await?,
            Confirm::Code(c) => {
                if !self.check_code(v.person(), c).await? {
                    self.people.second_factor_failed(&v.person().email, from);
                    return Err(Error::TwoFactor("wrong two-factor code: nothing was activated".into()));
                }
            }
        }
        if shown.hash != hash {
            return Err(Error::ConsentChanged);
        }
        Ok(self.desk.activate(id, &actor(v, from)).await?)
    }

    /// New inputs for `id`: an active subscription goes back to awaiting consent.
    ///
    /// # Errors
    /// Not in scope; inputs outside the bounds; a stopped subscription.
    pub async fn change_inputs(&self, v: &Viewer, id: &str, inputs: Inputs, from: IpAddr) -> Result<Subscription> {
        self.own(v, id).await?;
        Ok(self.desk.change_inputs(id, inputs, &actor(v, from)).await?)
    }

    /// Holds `id` before its next signal.
    ///
    /// # Errors
    /// Not in scope; a stopped subscription.
    pub async fn pause(&self, v: &Viewer, id: &str, from: IpAddr) -> Result<Subscription> {
        self.own(v, id).await?;
        Ok(self.desk.pause(id, &actor(v, from)).await?)
    }

    /// Lets `id` trade again (under the consent it has).
    ///
    /// # Errors
    /// Not in scope; never consented; a stopped subscription.
    pub async fn resume(&self, v: &Viewer, id: &str, from: IpAddr) -> Result<Subscription> {
        self.own(v, id).await?;
        Ok(self.desk.resume(id, &actor(v, from)).await?)
    }

    /// The person's kill switch: every account of theirs (or the one given) halted — no order
    /// goes out for it until they let it go ([`Switch::Release`]); with [`Switch::HaltAndExit`]
    /// the running engine also cancels their open orders and exits their open positions.
    ///
    /// # Errors
    /// An account outside the scope; store errors.
    pub async fn kill_switch(
        &self,
        v: &Viewer,
        account: Option<&str>,
        switch: Switch,
        from: IpAddr,
        now: i64,
    ) -> Result<KillReport> {
        let accounts: Vec<String> = match account {
            Some(a) if v.sees(a) => vec![a.to_owned()],
            Some(_) => return Err(Error::NotFound("account")),
            None => v
                .accounts(now)
                .await?
                .into_iter()
                .filter(|a| a.token != "missing")
                .map(|a| a.id)
                .collect(),
        };
        let state = if switch == Switch::Release {
            TradingState::Active
        } else {
            TradingState::Halted
        };
        let note = Some(format!(
            "{} by {} in the portal",
            match switch {
                Switch::Halt => "kill switch",
                Switch::HaltAndExit => "kill switch with exit",
                Switch::Release => "kill switch released",
            },
            v.person().email
        ));
        let who = actor(v, from);
        let mut report = KillReport {
            accounts: Vec::new(),
            state,
            exits: 0,
            exit_problem: None,
        };
        for a in &accounts {
            if switch == Switch::HaltAndExit {
                match self.engine.get() {
                    Some(engine) => {
                        let kill = stoxide_engine::Kill {
                            level: Level::User,
                            target: a.clone(),
                            state,
                            cancel: true,
                            exit: true,
                            note: note.clone(),
                        };
                        // The engine records the state first, then cancels and exits.
                        match engine.kill(kill, &who).await {
                            Ok(n) => {
                                report.exits += n;
                                continue;
                            }
                            Err(e) => report.exit_problem = Some(e.0),
                        }
                    }
                    None => {
                        report.exit_problem =
                            Some("no engine is attached to this portal: nothing was cancelled or exited".into());
                    }
                }
            }
            // The state in the store: it holds whatever any engine does next.
            match self.desk.set_state(Level::User, a, state, note.clone(), &who).await {
                Err(stoxide_engine::Error::UnknownAccount(_)) => return Err(Error::NotFound("account")),
                other => {
                    other?;
                }
            }
        }
        report.accounts = accounts;
        Ok(report)
    }
}

/// One point of a strategy's P&L over time: epoch ms and rupees.
pub type PnlPoint = (i64, Decimal);

/// Each strategy's realised P&L over time, replayed from `orders`' fills in the order they
/// ended (every subscription and instrument its own position, through the engine's
/// [`stoxide_engine::positions::apply_fill`]); `lot_size` gives an instrument's lot size where
/// its quantities count lots (MCX: a unit's P&L is then a lot's; missing, one). Orders without
/// a fill, a side or a price add no point.
pub fn pnl_over_time(
    orders: &[stoxide_people::OrderView],
    lot_size: impl Fn(&upstox_types::InstrumentKey) -> Option<u32>,
) -> std::collections::BTreeMap<String, Vec<PnlPoint>> {
    use std::collections::{BTreeMap, HashMap};
    use stoxide_engine::positions::{Position, apply_fill};
    let mut fills: Vec<_> = orders
        .iter()
        .filter(|o| o.filled > 0)
        .filter_map(|o| {
            let plan: stoxide_engine::records::PlanRecord = serde_json::from_value(o.plan.clone()?).ok()?;
            let side = plan.order?.side;
            let price: Decimal = o.average_price.as_deref()?.parse().ok()?;
            let multiplier = if plan.instrument.segment().quantity_in_lots() {
                lot_size(&plan.instrument).unwrap_or(1).max(1)
            } else {
                1
            };
            Some((o.updated_at, o, plan.instrument.to_string(), side, price, multiplier))
        })
        .collect();
    fills.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.tag.cmp(&b.1.tag)));
    // One day for the whole replay, so realised P&L accumulates across it.
    let day = chrono::NaiveDate::MIN;
    let mut books: HashMap<(String, String), Position> = HashMap::new();
    let mut realised: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<PnlPoint>> = BTreeMap::new();
    for (at, o, instrument, side, price, multiplier) in fills {
        let key = (o.subscription.clone(), instrument);
        let before = books.get(&key).cloned().unwrap_or_default();
        let after = apply_fill(&before, side, o.filled.unsigned_abs(), price, multiplier, day);
        let gained = after.realised_on(day) - before.realised_on(day);
        books.insert(key, after);
        let total = realised.entry(o.strategy.clone()).or_default();
        *total += gained;
        out.entry(o.strategy.clone()).or_default().push((at, *total));
    }
    out
}

/// A position marked to the market: P&L in rupees, summed in decimals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarkedPosition {
    pub subscription: String,
    pub account: String,
    pub instrument: String,
    /// Signed units (negative: short).
    pub quantity: i64,
    pub avg_price: Decimal,
    pub realised: Decimal,
    /// The last price, when one could be read.
    pub ltp: Option<Decimal>,
    /// (ltp − average) × quantity.
    pub unrealised: Option<Decimal>,
}

/// Marks `positions` (subscription, account, position) to `ltps` (instrument key → last price):
/// unrealised P&L per open position; realised as booked. A stored price that does not read is
/// taken as zero (the position still shows).
pub fn mark_to_market(
    positions: &[(String, String, stoxide_people::PositionView)],
    ltps: &std::collections::HashMap<String, Decimal>,
) -> Vec<MarkedPosition> {
    positions
        .iter()
        .map(|(subscription, account, p)| {
            let avg: Decimal = p.avg_price.parse().unwrap_or_default();
            let ltp = ltps.get(&p.instrument).copied();
            MarkedPosition {
                subscription: subscription.clone(),
                account: account.clone(),
                instrument: p.instrument.clone(),
                quantity: p.quantity,
                avg_price: avg,
                realised: p.realised.parse().unwrap_or_default(),
                ltp,
                unrealised: ltp.map(|l| (l - avg) * Decimal::from(p.quantity)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_marked_in_decimals_long_and_short() {
        let pos = |instrument: &str, quantity: i64, avg: &str| stoxide_people::PositionView {
            instrument: instrument.into(),
            quantity,
            avg_price: avg.into(),
            realised: "12.5".into(),
            updated_at: 0,
        };
        let positions = vec![
            ("s1".to_owned(), "A".to_owned(), pos("NSE_EQ|X", 75, "100.10")),
            ("s1".to_owned(), "A".to_owned(), pos("NSE_EQ|Y", -10, "50")),
            ("s2".to_owned(), "A".to_owned(), pos("NSE_EQ|Z", 1, "1")),
        ];
        let ltps: std::collections::HashMap<String, Decimal> = [
            ("NSE_EQ|X".to_owned(), "100.30".parse().expect("d")),
            ("NSE_EQ|Y".to_owned(), Decimal::from(48)),
        ]
        .into();
        let m = mark_to_market(&positions, &ltps);
        assert_eq!(
            m[0].unrealised,
            Some("15.00".parse().expect("d")),
            "0.20 × 75, no float drift"
        );
        assert_eq!(
            m[1].unrealised,
            Some(Decimal::from(20)),
            "a short gains as the price falls"
        );
        assert_eq!(m[2].unrealised, None, "no price, no mark");
        assert_eq!(m[0].realised, "12.5".parse::<Decimal>().expect("d"));
    }

    fn filled(strategy: &str, sub: &str, at: i64, side: &str, qty: i64, price: &str) -> stoxide_people::OrderView {
        stoxide_people::OrderView {
            tag: format!("{sub}-{at}"),
            strategy: strategy.into(),
            signal_id: format!("s{at}"),
            subscription: sub.into(),
            account: "A".into(),
            state: "filled".into(),
            reason: None,
            order_ids: vec![],
            plan: Some(serde_json::json!({
                "instrument": "NSE_EQ|INE002A01018", "product": "I", "algo_name": "X", "paper": false,
                "order": {"side": side, "quantity": qty, "slice": false, "reduces": false, "target": 0},
            })),
            filled: qty,
            average_price: Some(price.into()),
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn pnl_accumulates_per_strategy_as_positions_close() {
        let orders = vec![
            filled("momo", "momo:A", 3, "SELL", 10, "105.5"),
            filled("momo", "momo:A", 1, "BUY", 10, "100"),
            filled("ema", "ema:A", 2, "SELL", 5, "50"),
            filled("ema", "ema:A", 4, "BUY", 5, "52.25"),
            filled("momo", "momo:A", 5, "BUY", 4, "104"),
            filled("momo", "momo:A", 6, "SELL", 4, "103"),
        ];
        let curves = pnl_over_time(&orders, |_| None);
        let d = |s: &str| s.parse::<Decimal>().expect("d");
        assert_eq!(
            curves["momo"],
            vec![(1, Decimal::ZERO), (3, d("55.0")), (5, d("55.0")), (6, d("51.0"))],
            "bought 10 at 100, sold at 105.5 (+55); bought 4 at 104, sold at 103 (−4)"
        );
        assert_eq!(
            curves["ema"],
            vec![(2, Decimal::ZERO), (4, d("-11.25"))],
            "a short bought back higher"
        );
        let mut unfilled = filled("momo", "momo:A", 7, "BUY", 1, "1");
        unfilled.filled = 0;
        assert!(pnl_over_time(&[unfilled], |_| None).is_empty(), "no fill, no point");
    }

    #[test]
    fn one_order_is_priced_in_units_and_rupees() {
        let keys = vec!["NSE_EQ|X".to_owned(), "NSE_FO|1".to_owned(), "NSE_EQ|GONE".to_owned()];
        let lookup = |k: &str| match k {
            "NSE_EQ|X" => Some(("X".to_owned(), 1)),
            "NSE_FO|1" => Some(("NIFTY FUT".to_owned(), 75)),
            _ => None,
        };
        let ltps: std::collections::HashMap<String, Decimal> = [
            ("NSE_EQ|X".to_owned(), "2500.05".parse().expect("d")),
            ("NSE_FO|1".to_owned(), "24000.10".parse().expect("d")),
        ]
        .into();
        let fixed = Sizing::FixedLots { lots: 2, multiplier: 3 };
        let p = at_todays_prices(&fixed, &keys, lookup, &ltps);
        assert_eq!(p[0].units, Some(6));
        assert_eq!(p[0].rupees, Some("15000.30".parse().expect("d")));
        assert_eq!(p[1].units, Some(450), "2 × 3 lots of 75");
        assert_eq!(p[1].rupees, Some("10800045.00".parse().expect("d")));
        assert_eq!(
            (p[2].units, p[2].rupees, p[2].symbol.clone()),
            (None, None, None),
            "unknown: no figure"
        );
        let share = Sizing::MarginPercent {
            percent: Decimal::from(10),
        };
        let p = at_todays_prices(&share, &keys, lookup, &ltps);
        assert_eq!(
            (p[0].units, p[0].rupees),
            (None, None),
            "a margin share is sized at the signal"
        );
        assert_eq!(p[0].last_price, Some("2500.05".parse().expect("d")));
    }
}
