//! Tables for people, JSON for scripts.

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

/// How to print.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as pretty JSON.
    pub(crate) fn print_json<T: Serialize>(&self, value: &T) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(value)?);
        Ok(())
    }

    /// Prints JSON when asked, else the table built by `table`.
    pub(crate) fn show<T: Serialize>(&self, value: &T, table: impl FnOnce() -> Table) -> anyhow::Result<()> {
        if self.json {
            self.print_json(value)
        } else {
            println!("{}", table());
            Ok(())
        }
    }
}

/// A table with our house style.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}

/// Rupees with two decimals.
pub(crate) fn money(x: f64) -> String {
    format!("{x:.2}")
}
