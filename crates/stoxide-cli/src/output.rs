//! Tables for people, JSON for scripts; every line to stdout goes through [`line`].

use std::io::Write;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use rust_decimal::Decimal;
use serde::Serialize;

/// Writes one line to stdout. A reader that went away (`stoxide … | head -1`) becomes an
/// `io::Error` of kind `BrokenPipe`, which `main` ends on quietly — where `println!` would
/// panic. The crate denies `clippy::print_stdout`, so nothing bypasses this.
///
/// # Errors
/// The write's.
pub(crate) fn line(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Writes the start-up lines of a long-running process (`sim`, `demo`, `serve`, `engine run`).
/// A script that reads only the first line and closes the pipe must not take the process down,
/// so write errors are ignored here, and only here.
pub(crate) fn announce(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_all(text.as_bytes())
        .and_then(|()| {
            if text.ends_with('\n') {
                Ok(())
            } else {
                out.write_all(b"\n")
            }
        })
        .and_then(|()| out.flush());
}

/// `say!("…", args)`: one line to stdout through [`line`], `?` on its error.
macro_rules! say {
    () => {
        $crate::output::line(format_args!(""))?
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))?
    };
}
pub(crate) use say;

/// How to print.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as pretty JSON.
    pub(crate) fn print_json<T: Serialize>(&self, value: &T) -> anyhow::Result<()> {
        say!("{}", serde_json::to_string_pretty(value)?);
        Ok(())
    }

    /// Prints JSON when asked, else the table built by `table`.
    pub(crate) fn show<T: Serialize>(&self, value: &T, table: impl FnOnce() -> Table) -> anyhow::Result<()> {
        if self.json {
            self.print_json(value)
        } else {
            say!("{}", table());
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

/// An exact amount with two decimals.
pub(crate) fn rupees(x: Decimal) -> String {
    format!("{:.2}", x.round_dp(2))
}
