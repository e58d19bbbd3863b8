//! Names people read beside the instrument keys the pages show: the trading symbol from the
//! instrument master (for a derivative, the contract in words: "NIFTY 21000 CE 08 DEC 26").

use std::collections::HashMap;

use crate::AppState;

/// Trading symbols of the keys a page shows; a key the master does not know (or a page shown
/// before any account could fetch the master) is shown alone.
#[derive(Debug, Default)]
pub(crate) struct Names(HashMap<String, String>);

impl Names {
    /// The symbols of `keys`, from the instrument master (fetched once per process).
    pub(crate) async fn of<K: AsRef<str>>(state: &AppState, keys: impl IntoIterator<Item = K>) -> Self {
        let keys: Vec<K> = keys.into_iter().collect();
        if keys.is_empty() {
            return Self::default();
        }
        let Ok(master) = crate::pages::instrument_master(state).await else {
            return Self::default();
        };
        Self(
            keys.iter()
                .filter_map(|k| {
                    master
                        .get(k.as_ref())
                        .map(|i| (k.as_ref().to_owned(), i.trading_symbol.to_owned()))
                })
                .collect(),
        )
    }

    /// The trading symbol of `key`, when known.
    pub(crate) fn symbol<K: std::fmt::Display + ?Sized>(&self, key: &K) -> Option<&str> {
        self.0.get(&key.to_string()).map(String::as_str)
    }

    /// "RELIANCE (NSE_EQ|INE002A01018)", or the key alone.
    pub(crate) fn label<K: std::fmt::Display + ?Sized>(&self, key: &K) -> String {
        match self.symbol(key) {
            Some(s) => format!("{s} ({key})"),
            None => key.to_string(),
        }
    }
}
