//! A subscription: one linked Upstox account following one strategy with that user's own inputs,
//! and the consent that lets it trade. Activation records exactly what was agreed (the inputs,
//! the strategy version, who, when, from where) under a hash; any change of inputs or a new
//! strategy version puts it back to awaiting consent. The transitions are plain functions.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use upstox_types::{InstrumentKey, Product};

/// How a subscription sizes its orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Sizing {
    /// `lots` lots per signal, times `multiplier`.
    FixedLots { lots: u32, multiplier: u32 },
    /// As many whole lots as `percent` % of the available margin pays for.
    MarginPercent { percent: Decimal },
}

/// What a user sets for one subscription. Money in rupees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    pub sizing: Sizing,
    /// The largest notional exposure (₹) the subscription may hold.
    pub max_exposure: Decimal,
    pub max_open_positions: u32,
    pub max_orders_per_day: u32,
    /// The day's loss (₹, realised + mark-to-market) at which only exits are allowed.
    pub daily_max_loss: Decimal,
    pub product: Product,
    /// When set, only these instruments are traded.
    #[serde(default)]
    pub whitelist: Option<Vec<InstrumentKey>>,
    /// Orders go to the paper broker, not to Upstox.
    #[serde(default)]
    pub paper: bool,
}

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubState {
    /// Created, or its inputs or its strategy's version changed: no order until activated.
    AwaitingConsent,
    /// Trading.
    Active,
    /// Held by the user; resumes without a new consent.
    Paused,
    /// Upstox refused the account's token (401): waits for a new login.
    NeedsLogin,
    /// Ended for good.
    Stopped,
}

impl SubState {
    /// The state in plain words.
    pub const fn words(self) -> &'static str {
        match self {
            Self::AwaitingConsent => "awaiting consent",
            Self::Active => "active",
            Self::Paused => "paused",
            Self::NeedsLogin => "waiting for a new Upstox login",
            Self::Stopped => "stopped",
        }
    }
}

/// What a user agreed to, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// SHA-256 (hex) over the subscription, account, strategy, version and the exact inputs.
    pub hash: String,
    pub strategy_version: u32,
    /// Who consented (the user's sign-in name).
    pub by: String,
    pub at: DateTime<Utc>,
    /// From where (the client's address).
    pub from: String,
}

/// One subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    /// The vault account (Upstox user id).
    pub account: String,
    pub strategy: String,
    pub inputs: Inputs,
    pub state: SubState,
    pub consent: Option<Consent>,
}

/// A transition that is not allowed from the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("the subscription is stopped; create a new one")]
    Stopped,
    #[error("the account needs a new Upstox login first")]
    NeedsLogin,
    #[error("the subscription has never been activated: activate it (and consent) first")]
    NotConsented,
}

/// The hash a consent records: the subscription, the account, the strategy and its version, and
/// the inputs as canonical JSON.
pub fn consent_hash(id: &str, account: &str, strategy: &str, version: u32, inputs: &Inputs) -> String {
    let inputs = serde_json::to_string(inputs).unwrap_or_default();
    let mut h = sha2::Sha256::new();
    for part in [id, account, strategy, &version.to_string(), &inputs] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Subscription {
    /// A new subscription, awaiting consent.
    pub fn new(id: impl Into<String>, account: impl Into<String>, strategy: impl Into<String>, inputs: Inputs) -> Self {
        Self {
            id: id.into(),
            account: account.into(),
            strategy: strategy.into(),
            inputs,
            state: SubState::AwaitingConsent,
            consent: None,
        }
    }

    fn hash_for(&self, version: u32) -> String {
        consent_hash(&self.id, &self.account, &self.strategy, version, &self.inputs)
    }

    /// New inputs: unchanged inputs change nothing; changed ones need a new consent.
    ///
    /// # Errors
    /// [`TransitionError::Stopped`].
    pub fn change_inputs(&mut self, inputs: Inputs) -> Result<bool, TransitionError> {
        if self.state == SubState::Stopped {
            return Err(TransitionError::Stopped);
        }
        if inputs == self.inputs {
            return Ok(false);
        }
        self.inputs = inputs;
        self.consent = None;
        self.state = SubState::AwaitingConsent;
        Ok(true)
    }

    /// The strategy moved to `version`: a consent given for another version no longer counts.
    pub fn strategy_version_is(&mut self, version: u32) {
        if self.consent.as_ref().is_some_and(|c| c.strategy_version != version) && self.state != SubState::Stopped {
            self.consent = None;
            self.state = SubState::AwaitingConsent;
        }
    }

    /// Activation: the user agrees to exactly these inputs and this strategy version.
    ///
    /// # Errors
    /// A stopped subscription, or an account that needs a login.
    pub fn activate(
        &mut self,
        strategy_version: u32,
        by: &str,
        at: DateTime<Utc>,
        from: &str,
    ) -> Result<Consent, TransitionError> {
        match self.state {
            SubState::Stopped => return Err(TransitionError::Stopped),
            SubState::NeedsLogin => return Err(TransitionError::NeedsLogin),
            _ => {}
        }
        let consent = Consent {
            hash: self.hash_for(strategy_version),
            strategy_version,
            by: by.to_owned(),
            at,
            from: from.to_owned(),
        };
        self.consent = Some(consent.clone());
        self.state = SubState::Active;
        Ok(consent)
    }

    /// Holds the subscription (before the next signal).
    ///
    /// # Errors
    /// A stopped subscription.
    pub fn pause(&mut self) -> Result<(), TransitionError> {
        match self.state {
            SubState::Stopped => Err(TransitionError::Stopped),
            SubState::Active => {
                self.state = SubState::Paused;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Resumes a paused subscription under its existing consent.
    ///
    /// # Errors
    /// A stopped subscription, or one never consented to.
    pub fn resume(&mut self) -> Result<(), TransitionError> {
        match self.state {
            SubState::Stopped => Err(TransitionError::Stopped),
            SubState::Paused if self.consent.is_some() => {
                self.state = SubState::Active;
                Ok(())
            }
            SubState::Paused | SubState::AwaitingConsent => Err(TransitionError::NotConsented),
            _ => Ok(()),
        }
    }

    /// Ends the subscription for good.
    pub fn stop(&mut self) {
        self.state = SubState::Stopped;
    }

    /// Upstox refused the account's token: no orders until a new login.
    pub fn needs_login(&mut self) {
        if self.state == SubState::Active {
            self.state = SubState::NeedsLogin;
        }
    }

    /// A new login came: back to trading under the existing consent.
    pub fn logged_in(&mut self) {
        if self.state == SubState::NeedsLogin {
            self.state = if self.consent.is_some() {
                SubState::Active
            } else {
                SubState::AwaitingConsent
            };
        }
    }

    /// Whether an order may be placed for this subscription now: active, with a consent whose
    /// hash matches these very inputs and the strategy's current version.
    pub fn may_trade(&self, strategy_version: u32) -> bool {
        self.state == SubState::Active
            && self
                .consent
                .as_ref()
                .is_some_and(|c| c.strategy_version == strategy_version && c.hash == self.hash_for(strategy_version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn inputs(lots: u32) -> Inputs {
        Inputs {
            sizing: Sizing::FixedLots { lots, multiplier: 1 },
            max_exposure: Decimal::from(1_000_000),
            max_open_positions: 3,
            max_orders_per_day: 20,
            daily_max_loss: Decimal::from(10_000),
            product: Product::Intraday,
            whitelist: None,
            paper: false,
        }
    }

    #[test]
    fn only_an_activated_subscription_with_unchanged_inputs_may_trade() {
        let mut s = Subscription::new("s1", "SIM001", "ema", inputs(1));
        assert!(!s.may_trade(1), "awaiting consent");
        assert_eq!(s.resume(), Err(TransitionError::NotConsented));
        let c = s.activate(1, "client-a", Utc::now(), "127.0.0.1").expect("activate");
        assert_eq!(c.hash.len(), 64);
        assert!(s.may_trade(1));
        assert!(!s.may_trade(2), "a new strategy version is not what was agreed");

        assert_eq!(s.change_inputs(inputs(1)), Ok(false), "the same inputs change nothing");
        assert!(s.may_trade(1));
        assert_eq!(s.change_inputs(inputs(2)), Ok(true));
        assert_eq!(s.state, SubState::AwaitingConsent);
        assert!(!s.may_trade(1), "changed inputs need a new consent");
        s.activate(1, "client-a", Utc::now(), "127.0.0.1").expect("again");
        assert!(s.may_trade(1));

        s.pause().expect("pause");
        assert!(!s.may_trade(1));
        s.resume().expect("resume");
        assert!(s.may_trade(1));
        s.strategy_version_is(2);
        assert_eq!(s.state, SubState::AwaitingConsent);

        s.activate(2, "client-a", Utc::now(), "127.0.0.1").expect("v2");
        s.needs_login();
        assert!(!s.may_trade(2));
        assert_eq!(s.activate(2, "x", Utc::now(), "y"), Err(TransitionError::NeedsLogin));
        s.logged_in();
        assert!(s.may_trade(2));
        s.stop();
        assert!(!s.may_trade(2));
        assert_eq!(s.change_inputs(inputs(3)), Err(TransitionError::Stopped));
        assert_eq!(s.resume(), Err(TransitionError::Stopped));
    }

    proptest! {
        /// A consent is for exactly one set of inputs: any other inputs hash differently.
        #[test]
        fn the_consent_hash_binds_every_input(a in 1u32..50, b in 1u32..50, loss in 1i64..1_000_000) {
            let mut x = inputs(a);
            x.daily_max_loss = Decimal::from(loss);
            let mut y = inputs(b);
            y.daily_max_loss = Decimal::from(loss);
            let hx = consent_hash("s", "u", "st", 1, &x);
            let hy = consent_hash("s", "u", "st", 1, &y);
            prop_assert_eq!(hx == hy, a == b);
            prop_assert_ne!(consent_hash("s", "u", "st", 2, &x), hx.clone());
            prop_assert_ne!(consent_hash("s", "v", "st", 1, &x), hx);
        }
    }
}
