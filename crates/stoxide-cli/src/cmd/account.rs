//! profile, funds, positions, holdings.

use crate::output::{Output, rupees, table};
use crate::settings::{Globals, Session};

pub(crate) async fn profile(globals: &Globals, out: &Output) -> anyhow::Result<()> {
    let s = Session::open(globals).await?;
    let p = s.client.profile().await?;
    out.show(&p, || {
        let mut t = table(&["field", "value"]);
        t.add_row(vec!["user id".to_owned(), p.user_id.clone()]);
        t.add_row(vec!["name".to_owned(), p.user_name.clone().unwrap_or_default()]);
        t.add_row(vec!["email".to_owned(), p.email.clone().unwrap_or_default()]);
        t.add_row(vec!["broker".to_owned(), p.broker.clone().unwrap_or_default()]);
        t.add_row(vec!["exchanges".to_owned(), p.exchanges.join(", ")]);
        t.add_row(vec!["products".to_owned(), p.products.join(", ")]);
        t.add_row(vec![
            "active".to_owned(),
            p.is_active.map(|a| a.to_string()).unwrap_or_default(),
        ]);
        t
    })?;
    s.close().await;
    Ok(())
}

pub(crate) async fn funds(globals: &Globals, out: &Output) -> anyhow::Result<()> {
    let s = Session::open(globals).await?;
    let f = s.client.funds_v2(None).await?;
    out.show(&f, || {
        let mut t = table(&["segment", "available", "used", "payin", "notional cash"]);
        for (name, seg) in [("equity", &f.equity), ("commodity", &f.commodity)] {
            if let Some(seg) = seg {
                t.add_row(vec![
                    name.to_owned(),
                    rupees(seg.available_margin),
                    rupees(seg.used_margin),
                    rupees(seg.payin_amount),
                    rupees(seg.notional_cash),
                ]);
            }
        }
        t
    })?;
    s.close().await;
    Ok(())
}

pub(crate) async fn positions(globals: &Globals, out: &Output) -> anyhow::Result<()> {
    let s = Session::open(globals).await?;
    let rows = s.client.positions().await?;
    out.show(&rows, || {
        let mut t = table(&[
            "symbol",
            "product",
            "qty",
            "avg",
            "ltp",
            "realised",
            "unrealised",
            "pnl",
        ]);
        for p in &rows {
            t.add_row(vec![
                p.trading_symbol.clone().unwrap_or_else(|| p.instrument_token.clone()),
                p.product.map(|p| p.to_string()).unwrap_or_default(),
                p.quantity.to_string(),
                p.average_price.map(rupees).unwrap_or_default(),
                rupees(p.last_price),
                rupees(p.realised),
                rupees(p.unrealised),
                rupees(p.pnl),
            ]);
        }
        if rows.is_empty() {
            t.add_row(vec!["(no positions today)"]);
        }
        t
    })?;
    s.close().await;
    Ok(())
}

pub(crate) async fn holdings(globals: &Globals, out: &Output) -> anyhow::Result<()> {
    let s = Session::open(globals).await?;
    let rows = s.client.holdings().await?;
    out.show(&rows, || {
        let mut t = table(&["symbol", "qty", "t1", "avg", "ltp", "pnl"]);
        for h in &rows {
            t.add_row(vec![
                h.trading_symbol.clone().unwrap_or_else(|| h.instrument_token.clone()),
                h.quantity.to_string(),
                h.t1_quantity.to_string(),
                rupees(h.average_price),
                rupees(h.last_price),
                rupees(h.pnl),
            ]);
        }
        if rows.is_empty() {
            t.add_row(vec!["(no holdings)"]);
        }
        t
    })?;
    s.close().await;
    Ok(())
}
