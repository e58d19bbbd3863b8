//! `stoxide-people`: who may use the portal and how they get in. Operators (the vendor's staff)
//! invite clients with single-use links that expire; an invited person sets a password (hashed
//! with argon2id, never kept in clear); sign-in is throttled per account and per address and
//! answers the same for an unknown email as for a wrong password.
//!
//! The portal's pages and API drive these use cases; the store keeps the records
//! (`stoxide_store::PersonRow`, `InvitationRow`, account ownership). Scoping — that a client
//! reaches only their own accounts — starts from [`People::accounts_of`].

mod throttle;
mod view;

use std::net::IpAddr;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use stoxide_store::{InvitationRow, PersonRow, Store};

pub use throttle::{Limits, Throttle};
pub use view::{AccountView, AuditView, MAX_ORDERS, OrderView, PositionView, SubscriptionView, Viewer, token_state};

/// What a person is to the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs everything: clients, strategies, kill switches, compliance.
    Operator,
    /// Sees and acts on their own accounts only.
    Client,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Client => "client",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "operator" => Ok(Self::Operator),
            "client" => Ok(Self::Client),
            other => Err(Error::Corrupt(format!("a person's role is {other:?}"))),
        }
    }
}

/// A person as the portal sees them (no password hash, no TOTP secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Person {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    /// Whether they have set a password (accepted their invitation).
    pub active: bool,
    pub two_factor: bool,
}

impl Person {
    fn of(row: &PersonRow) -> Result<Self> {
        Ok(Self {
            id: row.id.clone(),
            email: row.email.clone(),
            name: row.name.clone(),
            role: Role::parse(&row.role)?,
            disabled: row.disabled != 0,
            active: row.password_phc.is_some(),
            two_factor: row.totp_sealed.is_some(),
        })
    }
}

/// A new invitation: the link's secret is shown once (to be sent to the person) and kept only as
/// its hash.
#[derive(Debug)]
pub struct Invitation {
    pub person: Person,
    pub secret: SecretString,
    /// Epoch milliseconds.
    pub expires_at: i64,
}

/// What went wrong, in words a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} is already invited or signed up; use another email or ask the operator")]
    EmailTaken(String),
    #[error("this invitation link is unknown, used or expired: ask the operator for a new one")]
    InvitationInvalid,
    #[error("wrong email or password")]
    BadCredentials,
    #[error("the password is wrong: nothing was done")]
    WrongPassword,
    #[error("this account is disabled: ask the operator")]
    Disabled,
    #[error("too many failed sign-ins: try again in {} s", retry_after.as_secs().max(1))]
    Throttled { retry_after: Duration },
    #[error("only an operator may do that")]
    NotOperator,
    #[error("operators act only with two-factor sign-in: set it up first (POST /api/v1/me/two-factor)")]
    TwoFactorNeeded,
    #[error("the records are not what they should be: {0}")]
    Corrupt(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] stoxide_store::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Passwords: at least this many characters.
pub const MIN_PASSWORD: usize = 12;
/// Passwords: at most this many characters (argon2 of a megabyte is a denial of service).
pub const MAX_PASSWORD: usize = 128;

/// The people use cases over a store.
#[derive(Debug, Clone)]
pub struct People {
    store: Store,
    throttle: Throttle,
    /// Operators may act only once they have two-factor sign-in.
    operator_two_factor: bool,
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An email as stored: trimmed, lower case; refused when it cannot be one.
fn email_of(raw: &str) -> Result<String> {
    let e = raw.trim().to_lowercase();
    let plausible = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !e.chars().any(char::is_whitespace);
    if plausible {
        Ok(e)
    } else {
        Err(Error::Invalid(format!(
            "{raw:?} is not an email address (name@example.com)"
        )))
    }
}

fn check_password(p: &SecretString) -> Result<()> {
    let n = p.expose_secret().chars().count();
    if n < MIN_PASSWORD {
        return Err(Error::Invalid(format!(
            "the password needs at least {MIN_PASSWORD} characters"
        )));
    }
    if n > MAX_PASSWORD {
        return Err(Error::Invalid(format!(
            "the password may have at most {MAX_PASSWORD} characters"
        )));
    }
    Ok(())
}

impl People {
    pub fn new(store: Store, limits: Limits) -> Self {
        Self {
            store,
            throttle: Throttle::new(limits),
            operator_two_factor: true,
        }
    }

    /// Whether operators must have two-factor sign-in before they may act (the default; a
    /// throwaway demo turns it off).
    #[must_use]
    pub fn with_operator_two_factor(mut self, required: bool) -> Self {
        self.operator_two_factor = required;
        self
    }

    /// Counts a failed second factor against the sign-in throttle.
    pub fn second_factor_failed(&self, email: &str, from: IpAddr) {
        self.throttle.failed(&email.trim().to_lowercase(), from);
    }

    /// The first operator, for a new installation (no invitation: there is nobody to invite
    /// them). Refused once anyone exists.
    ///
    /// # Errors
    /// Bad email, name or password; someone exists already; store errors.
    pub async fn first_operator(&self, email: &str, name: &str, password: &SecretString, now: i64) -> Result<Person> {
        if !self.store.people(None).await?.is_empty() {
            return Err(Error::Invalid(
                "the portal has people already: an operator invites the next one".into(),
            ));
        }
        let person = self.new_person(email, name, Role::Operator, now).await?;
        check_password(password)?;
        let phc = hash(password)?;
        self.store.set_credentials(&person.id, Some(&phc), now).await?;
        self.person(&person.id).await?.ok_or(Error::BadCredentials)
    }

    async fn new_person(&self, email: &str, name: &str, role: Role, now: i64) -> Result<Person> {
        let email = email_of(email)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::Invalid("a name needs 1 to 100 characters".into()));
        }
        if self.store.person_by_email(&email).await?.is_some() {
            return Err(Error::EmailTaken(email));
        }
        let row = PersonRow {
            id: format!("p-{}", &random_hex()[..16]),
            email,
            name: name.to_owned(),
            role: role.as_str().to_owned(),
            password_phc: None,
            totp_sealed: None,
            disabled: 0,
            created_at: now,
            updated_at: now,
        };
        self.store.put_person(&row).await?;
        Person::of(&row)
    }

    /// `by` (an operator) invites a person: the link's secret, valid for `ttl`.
    ///
    /// # Errors
    /// `by` is not an operator; bad email or name; the email is taken; store errors.
    pub async fn invite(
        &self,
        by: &Person,
        email: &str,
        name: &str,
        role: Role,
        ttl: Duration,
        now: i64,
    ) -> Result<Invitation> {
        if by.role != Role::Operator || by.disabled {
            return Err(Error::NotOperator);
        }
        let person = self.new_person(email, name, role, now).await?;
        let secret = random_hex();
        let expires_at = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        self.store
            .put_invitation(&InvitationRow {
                token_hash: sha256_hex(&secret),
                person_id: person.id.clone(),
                created_by: by.id.clone(),
                created_at: now,
                expires_at,
                used_at: None,
            })
            .await?;
        tracing::info!(person = %person.id, by = %by.id, role = role.as_str(), "invited");
        Ok(Invitation {
            person,
            secret: SecretString::from(secret),
            expires_at,
        })
    }

    /// The invited person sets their password through the link: once, before it expires.
    ///
    /// # Errors
    /// A bad password (checked before the link is used up); an unknown, used or expired link;
    /// store errors.
    pub async fn accept(&self, secret: &SecretString, password: &SecretString, now: i64) -> Result<Person> {
        check_password(password)?;
        let Some(id) = self
            .store
            .use_invitation(&sha256_hex(secret.expose_secret()), now)
            .await?
        else {
            return Err(Error::InvitationInvalid);
        };
        let phc = hash(password)?;
        self.store.set_credentials(&id, Some(&phc), now).await?;
        self.person(&id).await?.ok_or(Error::InvitationInvalid)
    }

    /// Signs a person in by email and password from `from`: throttled per account and per
    /// address; an unknown email and a wrong password take the same time and say the same.
    ///
    /// # Errors
    /// Throttled, bad credentials, disabled, store errors.
    pub async fn sign_in(&self, email: &str, password: &SecretString, from: IpAddr) -> Result<Person> {
        let email = email.trim().to_lowercase();
        self.throttle.check(&email, from)?;
        let row = self.store.person_by_email(&email).await?;
        let phc = row.as_ref().and_then(|r| r.password_phc.clone());
        let ok = verify(password, phc.as_deref());
        let Some(row) = row.filter(|_| ok) else {
            self.throttle.failed(&email, from);
            return Err(Error::BadCredentials);
        };
        if row.disabled != 0 {
            return Err(Error::Disabled);
        }
        self.throttle.succeeded(&email);
        Person::of(&row)
    }

    /// Checks a signed-in person's password again before an act that needs it (a consent):
    /// throttled like a sign-in.
    ///
    /// # Errors
    /// [`Error::WrongPassword`], throttled, disabled, store errors.
    pub async fn confirm(&self, person: &Person, password: &SecretString, from: IpAddr) -> Result<()> {
        self.throttle.check(&person.email, from)?;
        let row = self.store.person(&person.id).await?;
        let Some(row) = row.filter(|r| verify(password, r.password_phc.as_deref())) else {
            self.throttle.failed(&person.email, from);
            return Err(Error::WrongPassword);
        };
        if row.disabled != 0 {
            return Err(Error::Disabled);
        }
        Ok(())
    }

    /// The person with this id.
    ///
    /// # Errors
    /// Store errors; a corrupt record.
    pub async fn person(&self, id: &str) -> Result<Option<Person>> {
        self.store.person(id).await?.as_ref().map(Person::of).transpose()
    }

    /// Everyone with `role` (or everyone), by email.
    ///
    /// # Errors
    /// Store errors; a corrupt record.
    pub async fn list(&self, role: Option<Role>) -> Result<Vec<Person>> {
        self.store
            .people(role.map(Role::as_str))
            .await?
            .iter()
            .map(Person::of)
            .collect()
    }

    /// `by` (an operator) disables or enables `id`.
    ///
    /// # Errors
    /// `by` is not an operator; store errors.
    pub async fn set_disabled(&self, by: &Person, id: &str, disabled: bool, now: i64) -> Result<bool> {
        if by.role != Role::Operator || by.disabled {
            return Err(Error::NotOperator);
        }
        Ok(self.store.set_disabled(id, disabled, now).await?)
    }

    /// Ties a linked account to a person; false when it already belongs to someone.
    ///
    /// # Errors
    /// Store errors.
    pub async fn link_account(&self, person: &Person, account: &str, now: i64) -> Result<bool> {
        Ok(self.store.link_account(&person.id, account, now).await?)
    }

    /// The accounts `person` may see and act on.
    ///
    /// # Errors
    /// Store errors.
    pub async fn accounts_of(&self, person: &Person) -> Result<Vec<String>> {
        Ok(self.store.accounts_of_person(&person.id).await?)
    }
}

fn hash(password: &SecretString) -> Result<String> {
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Hash(e.to_string()))
}

/// Whether `password` matches `phc`; with no hash, argon2 still runs so the time taken does not
/// tell an unknown email from a wrong password.
fn verify(password: &SecretString, phc: Option<&str>) -> bool {
    let bytes = password.expose_secret().as_bytes();
    match phc.and_then(|p| PasswordHash::new(p).ok()) {
        Some(p) => Argon2::default().verify_password(bytes, &p).is_ok(),
        None => {
            let _ = Argon2::default().hash_password(bytes);
            false
        }
    }
}
