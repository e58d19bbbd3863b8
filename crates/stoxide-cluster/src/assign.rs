//! Which node should hold an account: highest random weight (rendezvous) hashing over the live
//! nodes the account may use.

use sha2::{Digest, Sha256};

/// A live node as assignment sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub name: String,
    /// The address its orders leave from.
    pub egress: String,
}

fn weight(node: &str, account: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(node.as_bytes());
    h.update([0]);
    h.update(account.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

/// The node that should hold `account`: of `nodes` whose egress is in `allowed` (any node when
/// the account's app names no addresses), the one of highest weight; none when no node may.
pub fn assign<'n>(account: &str, allowed: Option<&[String]>, nodes: &'n [NodeView]) -> Option<&'n NodeView> {
    nodes
        .iter()
        .filter(|n| allowed.is_none_or(|a| a.iter().any(|ip| ip == &n.egress)))
        .max_by(|a, b| {
            weight(&a.name, account)
                .cmp(&weight(&b.name, account))
                .then_with(|| b.name.cmp(&a.name))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(names: &[(&str, &str)]) -> Vec<NodeView> {
        names
            .iter()
            .map(|(n, e)| NodeView {
                name: (*n).into(),
                egress: (*e).into(),
            })
            .collect()
    }

    fn accounts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("U{i:05}")).collect()
    }

    #[test]
    fn accounts_spread_evenly_and_a_leaving_node_moves_only_its_own() {
        let three = nodes(&[("a", "10.0.0.1"), ("b", "10.0.0.2"), ("c", "10.0.0.3")]);
        let two = nodes(&[("a", "10.0.0.1"), ("b", "10.0.0.2")]);
        let mut per = std::collections::HashMap::new();
        let mut moved = 0;
        for acc in accounts(3000) {
            let before = assign(&acc, None, &three).expect("a node").name.clone();
            *per.entry(before.clone()).or_insert(0) += 1;
            let after = assign(&acc, None, &two).expect("a node").name.clone();
            if before != "c" {
                assert_eq!(before, after, "{acc} moved though its node stayed");
            } else {
                moved += 1;
            }
        }
        for (n, count) in &per {
            assert!((850..=1150).contains(count), "{n} holds {count} of 3000");
        }
        assert_eq!(moved, per["c"]);
    }

    #[test]
    fn an_account_goes_only_to_a_node_its_app_whitelisted() {
        let all = nodes(&[("a", "10.0.0.1"), ("b", "10.0.0.2"), ("c", "10.0.0.3")]);
        let allowed = vec!["10.0.0.2".to_owned()];
        for acc in accounts(200) {
            assert_eq!(assign(&acc, Some(&allowed), &all).expect("b").name, "b");
        }
        let none = vec!["192.168.1.1".to_owned()];
        assert!(assign("U1", Some(&none), &all).is_none());
        assert!(assign("U1", None, &[]).is_none());
    }

    #[test]
    fn every_node_computes_the_same_answer_whatever_the_order() {
        let mut all = nodes(&[("a", "x"), ("b", "y"), ("c", "z")]);
        let first: Vec<_> = accounts(100)
            .iter()
            .map(|a| assign(a, None, &all).expect("n").name.clone())
            .collect();
        all.reverse();
        let second: Vec<_> = accounts(100)
            .iter()
            .map(|a| assign(a, None, &all).expect("n").name.clone())
            .collect();
        assert_eq!(first, second);
    }
}
