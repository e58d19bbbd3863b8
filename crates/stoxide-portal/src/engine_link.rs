//! The running engine as the portal reaches it, for what only a running engine can do: cancel a
//! person's open orders and exit their positions when they pull "halt and exit everything". In
//! `stoxide demo` the engine runs in the same process; beside `stoxide serve` it is `stoxide
//! engine run` on the same data directory, reached over its control API (`POST /kill`) with the
//! address and control token it writes there.

use std::fmt::Debug;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use secrecy::{ExposeSecret, SecretString};
use stoxide_engine::Kill;
use stoxide_engine::control_files::{ENGINE_FILE, TOKEN_FILE};
use stoxide_engine::desk::Actor;
use stoxide_engine::risk::{Level, TradingState};

/// A future the engine link answers with.
pub type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, EngineUnreachable>> + Send + 'a>>;

/// The running engine could not do it; the words say why and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EngineUnreachable(pub String);

/// A running engine's kill switch.
pub trait EngineControl: Send + Sync + Debug {
    /// Pulls `kill` in the running engine (its state recorded first, then open orders cancelled
    /// and positions exited as asked): how many exit orders it queued.
    fn kill<'a>(&'a self, kill: Kill, actor: &'a Actor) -> Answer<'a, usize>;
}

impl EngineControl for stoxide_engine::Engine {
    fn kill<'a>(&'a self, kill: Kill, actor: &'a Actor) -> Answer<'a, usize> {
        Box::pin(async move {
            stoxide_engine::Engine::kill(self, kill, actor)
                .await
                .map(|r| r.exits.len())
                .map_err(|e| EngineUnreachable(format!("the engine could not pull the kill switch: {e}")))
        })
    }
}

/// `stoxide engine run` on `dir`: its address from `engine.json`, its control token from
/// `engine.token`, both read at each call (the engine may start, stop or move after the portal).
#[derive(Debug, Clone)]
pub struct EngineByFiles {
    dir: PathBuf,
}

impl EngineByFiles {
    /// The engine that runs (or will run) on the data directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn running(&self) -> Result<(String, SecretString), EngineUnreachable> {
        let none = || {
            EngineUnreachable(format!(
                "no engine runs on {} (start `stoxide engine run` there): nothing could be cancelled or exited",
                self.dir.display()
            ))
        };
        let text = std::fs::read_to_string(self.dir.join(ENGINE_FILE)).map_err(|_| none())?;
        let url = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["url"].as_str().map(str::to_owned))
            .ok_or_else(|| {
                EngineUnreachable(format!(
                    "{} is not what `stoxide engine run` writes: restart the engine",
                    self.dir.join(ENGINE_FILE).display()
                ))
            })?;
        let token = std::fs::read_to_string(self.dir.join(TOKEN_FILE)).map_err(|_| none())?;
        Ok((url, SecretString::from(token.trim().to_owned())))
    }
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::Global => "global",
        Level::User => "user",
        Level::Subscription => "subscription",
    }
}

fn state_name(s: TradingState) -> &'static str {
    match s {
        TradingState::Active => "active",
        TradingState::Reducing => "reducing",
        TradingState::Halted => "halted",
    }
}

impl EngineControl for EngineByFiles {
    fn kill<'a>(&'a self, kill: Kill, actor: &'a Actor) -> Answer<'a, usize> {
        Box::pin(async move {
            let (url, token) = self.running()?;
            let body = serde_json::json!({
                "level": level_name(kill.level), "target": kill.target, "state": state_name(kill.state),
                "cancel": kill.cancel, "exit": kill.exit, "note": kill.note, "by": actor.by,
            });
            let http = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .map_err(|e| EngineUnreachable(format!("no HTTP client for the engine: {e}")))?;
            let resp = http
                .post(format!("{url}/kill"))
                .bearer_auth(token.expose_secret())
                .json(&body)
                .send()
                .await
                .map_err(|e| EngineUnreachable(format!("the engine at {url} did not answer: {e}")))?;
            let status = resp.status();
            let v: serde_json::Value = resp.json().await.unwrap_or_default();
            if !status.is_success() {
                return Err(EngineUnreachable(format!(
                    "the engine refused the kill switch ({status}): {}",
                    v["error"].as_str().unwrap_or_default()
                )));
            }
            Ok(v["exits"].as_array().map_or(0, Vec::len))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_a_running_engine_it_says_so() {
        let dir = tempfile::tempdir().expect("dir");
        let link = EngineByFiles::new(dir.path());
        let kill = Kill {
            level: Level::User,
            target: "A".into(),
            state: TradingState::Halted,
            cancel: true,
            exit: true,
            note: None,
        };
        let actor = Actor {
            by: "t".into(),
            from: "here".into(),
        };
        let e = link.kill(kill.clone(), &actor).await.expect_err("none");
        assert!(e.0.contains("no engine runs on"), "{e}");
        std::fs::write(dir.path().join(ENGINE_FILE), "not json").expect("write");
        std::fs::write(dir.path().join(TOKEN_FILE), "t").expect("write");
        let e = link.kill(kill, &actor).await.expect_err("broken");
        assert!(e.0.contains("is not what `stoxide engine run` writes"), "{e}");
    }
}
