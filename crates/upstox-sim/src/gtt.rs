//! GTT (good-till-triggered) orders, v3: the rules, their validation and their state changes as
//! plain functions over plain state. The engine ([`crate::engine`]) owns them, fires them from
//! the price path and places their orders in the paper book.
//!
//! What the simulator does (api-facts §4.11 gives the shapes; the behaviour below is the most
//! plausible reading where Upstox's documentation is silent, and is said so in the README):
//! - `SINGLE`: one `ENTRY` rule. `MULTIPLE`: an `ENTRY` and a `TARGET` and/or a `STOPLOSS`.
//! - The entry fires when the last price is at or `ABOVE` / at or `BELOW` its trigger, or at
//!   once (`IMMEDIATE`); it places a MARKET order of the GTT's side and quantity.
//! - Exit rules are `SCHEDULED` until the entry's order completes, then `PENDING`. Their
//!   direction comes from their strategy (their `trigger_type` is kept as sent): for a BUY, the
//!   target fires at or above its trigger and the stop loss at or below (the reverse for a
//!   SELL); each places a MARKET order of the other side. The first to fire cancels the other.
//! - A stop loss with a `trailing_gap` follows the price: its trigger never stays further than
//!   the gap from the best price seen since it was armed.
//! - A rule whose order is rejected or cancelled is `FAILED` with the order's message; a failed
//!   entry cancels the exit rules. Rules not final by `expires_at` (a year after creation) are
//!   `EXPIRED`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use upstox_types::{GttRuleStatus, GttStrategy, GttTriggerType, GttType, Product, TransactionType};

/// A GTT stays live this many days.
pub const LIFETIME_DAYS: i64 = 365;

/// One rule as asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub strategy: GttStrategy,
    pub trigger_type: GttTriggerType,
    pub trigger_price: f64,
    pub trailing_gap: Option<f64>,
    pub market_protection: Option<f64>,
}

/// A GTT as asked for (place, or the changeable part for modify).
#[derive(Debug, Clone, PartialEq)]
pub struct GttSpec {
    pub kind: GttType,
    pub instrument: u32,
    pub quantity: u64,
    pub product: Product,
    pub side: TransactionType,
    pub rules: Vec<RuleSpec>,
}

/// One rule and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub spec: RuleSpec,
    pub status: GttRuleStatus,
    pub message: Option<String>,
    pub order_id: Option<String>,
}

/// One GTT order.
#[derive(Debug, Clone, PartialEq)]
pub struct Gtt {
    pub id: String,
    pub kind: GttType,
    pub instrument: u32,
    pub quantity: u64,
    pub product: Product,
    pub side: TransactionType,
    pub rules: Vec<Rule>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// How a rule's order ended.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderOutcome {
    Working,
    Complete,
    Failed(String),
}

/// Checks a GTT's rules against each other; the message says what to change.
///
/// # Errors
/// A message naming the rule at fault.
pub fn validate(spec: &GttSpec, tick: f64) -> Result<(), String> {
    let count = |s: GttStrategy| spec.rules.iter().filter(|r| r.strategy == s).count();
    if count(GttStrategy::Entry) != 1 {
        return Err("a GTT needs exactly one ENTRY rule".into());
    }
    if count(GttStrategy::Target) > 1 || count(GttStrategy::StopLoss) > 1 {
        return Err("a GTT takes at most one TARGET and one STOPLOSS rule".into());
    }
    match spec.kind {
        GttType::Single if spec.rules.len() != 1 => {
            return Err("a SINGLE GTT has only its ENTRY rule; use MULTIPLE to add a TARGET or STOPLOSS".into());
        }
        GttType::Multiple if spec.rules.len() < 2 => {
            return Err("a MULTIPLE GTT needs a TARGET or a STOPLOSS rule beside its ENTRY".into());
        }
        _ => {}
    }
    for r in &spec.rules {
        let name = r.strategy.as_str();
        // Only an IMMEDIATE entry may go without a price; an exit's price is its level.
        let priceless = r.strategy == GttStrategy::Entry && r.trigger_type == GttTriggerType::Immediate;
        let priced = r.trigger_price > 0.0 && r.trigger_price.is_finite();
        if !(priceless || priced) {
            return Err(format!("the {name} rule needs a trigger_price above 0"));
        }
        let steps = r.trigger_price / tick;
        if r.trigger_price > 0.0 && (steps - steps.round()).abs() > 1e-6 {
            return Err(format!(
                "the {name} rule's trigger_price {} is not a multiple of the tick size {tick}",
                r.trigger_price
            ));
        }
        if let Some(gap) = r.trailing_gap {
            if r.strategy != GttStrategy::StopLoss {
                return Err(format!("trailing_gap belongs to the STOPLOSS rule, not {name}"));
            }
            if !(gap > 0.0 && gap.is_finite()) {
                return Err("trailing_gap must be above 0".into());
            }
        }
        if let Some(mp) = r.market_protection
            && (mp > 25.0 || (mp < 0.0 && mp != -1.0))
        {
            return Err(format!(
                "the {name} rule's market_protection must be -1 or between 0 and 25"
            ));
        }
    }
    let price = |s: GttStrategy| spec.rules.iter().find(|r| r.strategy == s).map(|r| r.trigger_price);
    let entry = spec.rules.iter().find(|r| r.strategy == GttStrategy::Entry);
    if let Some(entry) = entry.filter(|e| e.trigger_type != GttTriggerType::Immediate) {
        let up = spec.side == TransactionType::Buy;
        if let Some(t) = price(GttStrategy::Target)
            && (t > entry.trigger_price) != up
        {
            return Err(format!(
                "the TARGET trigger {t} must be {} the ENTRY trigger {} for a {}",
                if up { "above" } else { "below" },
                entry.trigger_price,
                spec.side
            ));
        }
        if let Some(s) = price(GttStrategy::StopLoss)
            && (s < entry.trigger_price) != up
        {
            return Err(format!(
                "the STOPLOSS trigger {s} must be {} the ENTRY trigger {} for a {}",
                if up { "below" } else { "above" },
                entry.trigger_price,
                spec.side
            ));
        }
    }
    Ok(())
}

fn round_to(x: f64, tick: f64) -> f64 {
    ((x / tick).round() * tick * 100.0).round() / 100.0
}

impl Gtt {
    /// A new GTT: its entry watching the price, its exits waiting on the entry.
    pub fn new(id: String, spec: GttSpec, now: DateTime<Utc>) -> Self {
        let rules = spec
            .rules
            .into_iter()
            .map(|s| Rule {
                status: if s.strategy == GttStrategy::Entry {
                    GttRuleStatus::Pending
                } else {
                    GttRuleStatus::Scheduled
                },
                spec: s,
                message: None,
                order_id: None,
            })
            .collect();
        Self {
            id,
            kind: spec.kind,
            instrument: spec.instrument,
            quantity: spec.quantity,
            product: spec.product,
            side: spec.side,
            rules,
            created_at: now,
            expires_at: now + chrono::Duration::days(LIFETIME_DAYS),
        }
    }

    /// Whether every rule is final.
    pub fn is_finished(&self) -> bool {
        self.rules.iter().all(|r| r.status.is_final())
    }

    fn entry(&self) -> Option<&Rule> {
        self.rules.iter().find(|r| r.spec.strategy == GttStrategy::Entry)
    }

    /// The side a rule's order takes.
    pub fn side_of(&self, strategy: GttStrategy) -> TransactionType {
        if strategy == GttStrategy::Entry {
            self.side
        } else {
            self.side.opposite()
        }
    }

    /// Replaces the rules (and quantity and type) by a modify. Before the entry fires everything
    /// may change; after it, only the exit rules still waiting — the entry and quantity stay.
    ///
    /// # Errors
    /// A message saying what cannot change.
    pub fn modify(&mut self, spec: GttSpec, tick: f64) -> Result<(), String> {
        if self.is_finished() {
            return Err(format!("GTT {} is finished and cannot be modified", self.id));
        }
        let entry_waiting = self.entry().is_some_and(|e| e.status == GttRuleStatus::Pending);
        if entry_waiting {
            validate(&spec, tick)?;
            let id = std::mem::take(&mut self.id);
            let (created, expires) = (self.created_at, self.expires_at);
            *self = Gtt::new(id, spec, created);
            self.expires_at = expires;
            return Ok(());
        }
        if spec.quantity != self.quantity {
            return Err(format!(
                "GTT {}'s entry has fired: its quantity stays {}; only the TARGET and STOPLOSS can change",
                self.id, self.quantity
            ));
        }
        let sent_entry = spec.rules.iter().find(|r| r.strategy == GttStrategy::Entry);
        if let (Some(sent), Some(entry)) = (sent_entry, self.entry())
            && (sent.trigger_type != entry.spec.trigger_type || sent.trigger_price != entry.spec.trigger_price)
        {
            return Err(format!(
                "GTT {}'s ENTRY rule is {} and cannot change; send it as it was ({} {})",
                self.id, entry.status, entry.spec.trigger_type, entry.spec.trigger_price
            ));
        }
        let mut check = spec.clone();
        check.side = self.side;
        validate(&check, tick)?;
        for new in spec.rules.iter().filter(|r| r.strategy != GttStrategy::Entry) {
            match self.rules.iter_mut().find(|r| r.spec.strategy == new.strategy) {
                Some(old) if old.status.is_final() || old.status == GttRuleStatus::Triggered => {
                    return Err(format!(
                        "GTT {}'s {} rule is {} and cannot change",
                        self.id, new.strategy, old.status
                    ));
                }
                Some(old) => old.spec = new.clone(),
                None => {
                    let entry_done = self.entry().is_some_and(|e| e.status == GttRuleStatus::Completed);
                    self.rules.push(Rule {
                        spec: new.clone(),
                        status: if entry_done {
                            GttRuleStatus::Pending
                        } else {
                            GttRuleStatus::Scheduled
                        },
                        message: None,
                        order_id: None,
                    });
                }
            }
        }
        self.kind = spec.kind;
        Ok(())
    }

    /// Cancels every rule not yet final. Answers whether anything changed.
    pub fn cancel(&mut self, why: &str) -> bool {
        let mut changed = false;
        for r in self.rules.iter_mut().filter(|r| !r.status.is_final()) {
            r.status = GttRuleStatus::Cancelled;
            r.message = Some(why.to_owned());
            changed = true;
        }
        changed
    }

    /// Expires the rules still open at `now` past `expires_at`. Answers whether anything changed.
    pub fn expire(&mut self, now: DateTime<Utc>) -> bool {
        if now < self.expires_at {
            return false;
        }
        let mut changed = false;
        for r in self.rules.iter_mut().filter(|r| !r.status.is_final()) {
            r.status = GttRuleStatus::Expired;
            r.message = Some("the GTT expired".into());
            changed = true;
        }
        changed
    }

    /// Moves a trailing stop loss with the price: the trigger follows the best price at `gap`.
    /// Answers whether the trigger moved.
    pub fn trail(&mut self, last: f64, tick: f64) -> bool {
        let buy = self.side == TransactionType::Buy;
        let Some(sl) = self
            .rules
            .iter_mut()
            .find(|r| r.spec.strategy == GttStrategy::StopLoss && r.status == GttRuleStatus::Pending)
        else {
            return false;
        };
        let Some(gap) = sl.spec.trailing_gap else {
            return false;
        };
        let follow = round_to(if buy { last - gap } else { last + gap }, tick);
        let better = if buy {
            follow > sl.spec.trigger_price
        } else {
            follow < sl.spec.trigger_price && follow > 0.0
        };
        if better {
            sl.spec.trigger_price = follow;
        }
        better
    }

    /// The rule that fires at `last`, if one does (at most one at a time: an exit fires only
    /// after the entry's order completed, and the first exit cancels the other when it fires).
    pub fn due(&self, last: f64) -> Option<usize> {
        let buy = self.side == TransactionType::Buy;
        self.rules.iter().position(|r| {
            r.status == GttRuleStatus::Pending
                && match r.spec.strategy {
                    GttStrategy::Entry => r.spec.trigger_type.fires(r.spec.trigger_price, last),
                    GttStrategy::Target => {
                        if buy {
                            last >= r.spec.trigger_price
                        } else {
                            last <= r.spec.trigger_price
                        }
                    }
                    GttStrategy::StopLoss => {
                        if buy {
                            last <= r.spec.trigger_price
                        } else {
                            last >= r.spec.trigger_price
                        }
                    }
                }
        })
    }

    /// Records that rule `i` placed order `order_id`; a firing exit cancels the other exit.
    pub fn fired(&mut self, i: usize, order_id: String) {
        let strategy = self.rules[i].spec.strategy;
        self.rules[i].status = GttRuleStatus::Triggered;
        self.rules[i].order_id = Some(order_id);
        if strategy != GttStrategy::Entry {
            for (j, r) in self.rules.iter_mut().enumerate() {
                if j != i && r.spec.strategy != GttStrategy::Entry && !r.status.is_final() {
                    r.status = GttRuleStatus::Cancelled;
                    r.message = Some(format!("the {strategy} rule triggered first"));
                }
            }
        }
    }

    /// Records how rule `i`'s order ended. Answers whether anything changed.
    pub fn settle(&mut self, i: usize, outcome: OrderOutcome) -> bool {
        if self.rules[i].status != GttRuleStatus::Triggered {
            return false;
        }
        let entry = self.rules[i].spec.strategy == GttStrategy::Entry;
        match outcome {
            OrderOutcome::Working => false,
            OrderOutcome::Complete => {
                self.rules[i].status = GttRuleStatus::Completed;
                if entry {
                    for r in &mut self.rules {
                        if r.status == GttRuleStatus::Scheduled {
                            r.status = GttRuleStatus::Pending;
                        }
                    }
                }
                true
            }
            OrderOutcome::Failed(message) => {
                self.rules[i].status = GttRuleStatus::Failed;
                self.rules[i].message = Some(message);
                if entry {
                    for r in &mut self.rules {
                        if r.status == GttRuleStatus::Scheduled {
                            r.status = GttRuleStatus::Cancelled;
                            r.message = Some("the ENTRY rule failed".into());
                        }
                    }
                }
                true
            }
        }
    }

    /// The GTT as `GET /v3/order/gtt` answers it (times in epoch microseconds).
    pub fn json(&self, exchange: &str, trading_symbol: &str, instrument_key: &str) -> Value {
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|r| {
                json!({
                    "strategy": r.spec.strategy,
                    "status": r.status,
                    "message": r.message,
                    "trigger_type": r.spec.trigger_type,
                    "trigger_price": r.spec.trigger_price,
                    "transaction_type": self.side_of(r.spec.strategy),
                    "order_id": r.order_id,
                    "trailing_gap": r.spec.trailing_gap,
                })
            })
            .collect();
        json!({
            "type": self.kind,
            "exchange": exchange,
            "quantity": self.quantity,
            "product": self.product,
            "rules": rules,
            "trading_symbol": trading_symbol,
            "instrument_token": instrument_key,
            "gtt_order_id": self.id,
            "expires_at": self.expires_at.timestamp_micros(),
            "created_at": self.created_at.timestamp_micros(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(strategy: GttStrategy, trigger_type: GttTriggerType, price: f64) -> RuleSpec {
        RuleSpec {
            strategy,
            trigger_type,
            trigger_price: price,
            trailing_gap: None,
            market_protection: None,
        }
    }

    fn spec(side: TransactionType, rules: Vec<RuleSpec>) -> GttSpec {
        GttSpec {
            kind: if rules.len() == 1 {
                GttType::Single
            } else {
                GttType::Multiple
            },
            instrument: 0,
            quantity: 10,
            product: Product::Delivery,
            side,
            rules,
        }
    }

    fn bracket(side: TransactionType, entry: f64, target: f64, stop: f64) -> GttSpec {
        spec(
            side,
            vec![
                rule(GttStrategy::Entry, GttTriggerType::Below, entry),
                rule(GttStrategy::Target, GttTriggerType::Immediate, target),
                rule(GttStrategy::StopLoss, GttTriggerType::Immediate, stop),
            ],
        )
    }

    #[test]
    fn rules_that_contradict_each_other_are_refused_with_the_reason() {
        use GttStrategy::*;
        use GttTriggerType::*;
        let buy = TransactionType::Buy;
        assert!(validate(&bracket(buy, 100.0, 110.0, 95.0), 0.05).is_ok());
        let cases = [
            (spec(buy, vec![rule(Target, Above, 110.0)]), "exactly one ENTRY"),
            (
                spec(buy, vec![rule(Entry, Below, 100.0), rule(Entry, Above, 101.0)]),
                "exactly one ENTRY",
            ),
            (bracket(buy, 100.0, 90.0, 95.0), "TARGET trigger 90 must be above"),
            (bracket(buy, 100.0, 110.0, 105.0), "STOPLOSS trigger 105 must be below"),
            (bracket(TransactionType::Sell, 100.0, 110.0, 95.0), "must be below"),
            (
                spec(buy, vec![rule(Entry, Below, 100.01)]),
                "not a multiple of the tick",
            ),
            (spec(buy, vec![rule(Entry, Below, 0.0)]), "above 0"),
        ];
        for (s, want) in cases {
            let err = validate(&s, 0.05).expect_err(want);
            assert!(err.contains(want), "{err} lacks {want}");
        }
        let mut single_with_exit = bracket(buy, 100.0, 110.0, 95.0);
        single_with_exit.kind = GttType::Single;
        assert!(validate(&single_with_exit, 0.05).is_err());
        let mut trailing_target = bracket(buy, 100.0, 110.0, 95.0);
        trailing_target.rules[1].trailing_gap = Some(1.0);
        assert!(
            validate(&trailing_target, 0.05)
                .expect_err("a trailing target")
                .contains("trailing_gap")
        );
    }

    #[test]
    fn an_entry_arms_its_exits_and_the_first_exit_cancels_the_other() {
        let now = Utc::now();
        let mut g = Gtt::new("GTT-1".into(), bracket(TransactionType::Buy, 100.0, 110.0, 95.0), now);
        assert_eq!(g.due(101.0), None, "a BELOW entry waits above its trigger");
        assert_eq!(g.due(100.0), Some(0));
        g.fired(0, "o1".into());
        assert_eq!(g.due(80.0), None, "exits wait for the entry's fill");
        assert!(!g.settle(0, OrderOutcome::Working));
        assert!(g.settle(0, OrderOutcome::Complete));
        assert_eq!(g.rules[1].status, GttRuleStatus::Pending);
        assert_eq!(g.due(100.0), None, "between stop and target nothing fires");
        assert_eq!(g.due(94.0), Some(2), "the stop loss fires at or below 95");
        g.fired(2, "o2".into());
        assert_eq!(g.rules[1].status, GttRuleStatus::Cancelled);
        assert!(g.settle(2, OrderOutcome::Complete));
        assert!(g.is_finished());
        let v = g.json("NSE_EQ", "X", "NSE_EQ|X");
        assert_eq!(v["rules"][2]["transaction_type"], "SELL");
        assert_eq!(v["rules"][2]["order_id"], "o2");
        assert_eq!(v["rules"][1]["status"], "CANCELLED");
    }

    #[test]
    fn a_failed_entry_cancels_the_exits_and_expiry_ends_what_is_left() {
        let now = Utc::now();
        let mut g = Gtt::new("GTT-2".into(), bracket(TransactionType::Buy, 100.0, 110.0, 95.0), now);
        g.fired(0, "o1".into());
        assert!(g.settle(0, OrderOutcome::Failed("margin".into())));
        assert!(g.is_finished());
        assert_eq!(g.rules[2].status, GttRuleStatus::Cancelled);

        let mut g = Gtt::new("GTT-3".into(), bracket(TransactionType::Buy, 100.0, 110.0, 95.0), now);
        assert!(!g.expire(now + chrono::Duration::days(364)));
        assert!(g.expire(now + chrono::Duration::days(LIFETIME_DAYS)));
        assert!(g.rules.iter().all(|r| r.status == GttRuleStatus::Expired));
    }

    #[test]
    fn a_trailing_stop_follows_the_best_price_and_never_backs_off() {
        let mut s = bracket(TransactionType::Buy, 100.0, 130.0, 95.0);
        s.rules[2].trailing_gap = Some(5.0);
        let mut g = Gtt::new("GTT-4".into(), s, Utc::now());
        g.fired(0, "o1".into());
        g.settle(0, OrderOutcome::Complete);
        assert!(g.trail(104.0, 0.05));
        assert_eq!(g.rules[2].spec.trigger_price, 99.0);
        assert!(!g.trail(102.0, 0.05), "a fall does not lower the stop");
        assert_eq!(g.due(99.5), None);
        assert_eq!(g.due(99.0), Some(2));
    }

    #[test]
    fn after_the_entry_fires_only_waiting_exits_change() {
        let now = Utc::now();
        let mut g = Gtt::new("GTT-5".into(), bracket(TransactionType::Buy, 100.0, 110.0, 95.0), now);
        let mut wider = bracket(TransactionType::Buy, 100.0, 120.0, 90.0);
        g.modify(wider.clone(), 0.05).expect("before the entry, anything");
        assert_eq!(g.rules[1].spec.trigger_price, 120.0);
        g.fired(0, "o1".into());
        wider.quantity = 20;
        assert!(
            g.modify(wider.clone(), 0.05)
                .expect_err("a new quantity")
                .contains("quantity stays 10")
        );
        wider.quantity = 10;
        let mut moved_entry = wider.clone();
        moved_entry.rules[0].trigger_price = 99.0;
        assert!(
            g.modify(moved_entry, 0.05)
                .expect_err("a fired entry")
                .contains("ENTRY rule is TRIGGERED and cannot change")
        );
        wider.rules[2].trigger_price = 92.0;
        g.modify(wider, 0.05).expect("exits may change");
        assert_eq!(g.rules[2].spec.trigger_price, 92.0);
        assert_eq!(g.rules[0].status, GttRuleStatus::Triggered, "the entry is untouched");
        assert!(g.cancel("asked"));
        assert!(
            g.modify(bracket(TransactionType::Buy, 100.0, 110.0, 95.0), 0.05)
                .is_err()
        );
    }
}
