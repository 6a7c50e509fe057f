//! Pure helpers to walk an item's lineage across inspections: the links the
//! tracker records when it applies an accepted proposal (carried from,
//! superseded by, closed by) and when an organisation is succeeded by
//! another (handed over to). Walks are cycle-safe and bounded.

use std::collections::HashSet;

/// How one node of a lineage relates to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// `from` carries forward the earlier item `to`.
    CarriedFrom,
    /// `from` was superseded by the newer finding or item `to`.
    SupersededBy,
    /// `from` was closed by the inspection (or letter) `to`.
    ClosedBy,
    /// `from` was handed over to the successor organisation `to` (a merger
    /// or a renamed force). A side branch: the walk forward prefers what the
    /// item became, and the chain lists the hand-over beside it.
    HandedOverTo,
}

/// A directed link between two ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Link {
    pub from: String,
    pub to: String,
    pub kind: LinkKind,
}

/// The links leaving `start` and then each following node, in order: what an
/// item became (superseded by → superseded by → closed by). A node with several
/// outgoing links follows the first one given, hand-overs last. Stops at a
/// cycle.
pub fn forward<'a>(links: &'a [Link], start: &str) -> Vec<&'a Link> {
    let ordered: Vec<&Link> = links
        .iter()
        .filter(|l| l.kind != LinkKind::HandedOverTo)
        .chain(links.iter().filter(|l| l.kind == LinkKind::HandedOverTo))
        .collect();
    walk(
        &ordered,
        start,
        |l| l.kind != LinkKind::CarriedFrom,
        |l| (&l.from, &l.to),
    )
}

/// Where an item came from: follows `CarriedFrom` links from `start` and
/// `SupersededBy` links backwards (the item `start` superseded), oldest last.
pub fn backward<'a>(links: &'a [Link], start: &str) -> Vec<&'a Link> {
    let mut out: Vec<&Link> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut current = start;
    seen.insert(start);
    for _ in 0..links.len() {
        let next = links.iter().find(|l| {
            (l.kind == LinkKind::CarriedFrom && l.from == current)
                || (l.kind == LinkKind::SupersededBy && l.to == current)
        });
        let Some(link) = next else { break };
        let prev = if link.kind == LinkKind::CarriedFrom {
            &link.to
        } else {
            &link.from
        };
        if !seen.insert(prev.as_str()) {
            break;
        }
        out.push(link);
        current = prev;
    }
    out
}

/// The whole chain through `start`: ids from the oldest ancestor to the last
/// descendant, each once.
pub fn chain(links: &[Link], start: &str) -> Vec<String> {
    let mut ids: Vec<String> = backward(links, start)
        .iter()
        .rev()
        .map(|l| {
            if l.kind == LinkKind::CarriedFrom {
                l.to.clone()
            } else {
                l.from.clone()
            }
        })
        .collect();
    ids.push(start.to_string());
    for l in forward(links, start) {
        ids.push(l.to.clone());
    }
    // Hand-overs of any item of the chain, beside it.
    let handed: Vec<String> = links
        .iter()
        .filter(|l| l.kind == LinkKind::HandedOverTo && ids.contains(&l.from))
        .map(|l| l.to.clone())
        .collect();
    ids.extend(handed);
    let mut seen = HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    ids
}

fn walk<'a>(
    links: &[&'a Link],
    start: &str,
    keep: impl Fn(&Link) -> bool,
    ends: impl Fn(&Link) -> (&String, &String),
) -> Vec<&'a Link> {
    let mut out = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    seen.insert(start);
    let mut current = start.to_string();
    for _ in 0..links.len() {
        let Some(link) = links
            .iter()
            .copied()
            .find(|l| keep(l) && ends(l).0 == &current)
        else {
            break;
        };
        out.push(link);
        let to = ends(link).1;
        if !seen.insert(to.as_str()) {
            break;
        }
        current = to.clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(from: &str, to: &str, kind: LinkKind) -> Link {
        Link {
            from: from.into(),
            to: to.into(),
            kind,
        }
    }

    #[test]
    fn walks_both_ways() {
        let links = vec![
            link("afi-2017", "afi-2019", LinkKind::SupersededBy),
            link("afi-2021", "afi-2019", LinkKind::CarriedFrom),
            link("afi-2021", "peel-2023", LinkKind::ClosedBy),
        ];
        let f: Vec<&str> = forward(&links, "afi-2021")
            .iter()
            .map(|l| l.to.as_str())
            .collect();
        assert_eq!(f, vec!["peel-2023"]);
        let b: Vec<&str> = backward(&links, "afi-2021")
            .iter()
            .map(|l| l.kind)
            .map(|k| match k {
                LinkKind::CarriedFrom => "carried",
                LinkKind::SupersededBy => "superseded",
                LinkKind::ClosedBy => "closed",
                LinkKind::HandedOverTo => "handed over",
            })
            .collect();
        assert_eq!(b, vec!["carried", "superseded"]);
        assert_eq!(
            chain(&links, "afi-2021"),
            vec!["afi-2017", "afi-2019", "afi-2021", "peel-2023"]
        );
        assert_eq!(chain(&links, "afi-2017"), vec!["afi-2017", "afi-2019"]);
    }

    #[test]
    fn hand_overs_sit_beside_the_chain() {
        let links = vec![
            link(
                "afi-iow",
                "hampshire-and-isle-of-wight",
                LinkKind::HandedOverTo,
            ),
            link("afi-iow", "frs-2022", LinkKind::ClosedBy),
        ];
        let f: Vec<&str> = forward(&links, "afi-iow")
            .iter()
            .map(|l| l.to.as_str())
            .collect();
        assert_eq!(f, vec!["frs-2022"], "what the item became comes first");
        assert_eq!(
            chain(&links, "afi-iow"),
            vec!["afi-iow", "frs-2022", "hampshire-and-isle-of-wight"]
        );
        let only = vec![link("a", "succ", LinkKind::HandedOverTo)];
        assert_eq!(chain(&only, "a"), vec!["a", "succ"]);
    }

    #[test]
    fn cycles_terminate() {
        let links = vec![
            link("a", "b", LinkKind::SupersededBy),
            link("b", "a", LinkKind::SupersededBy),
            link("a", "a", LinkKind::CarriedFrom),
        ];
        assert_eq!(forward(&links, "a").len(), 2);
        assert!(backward(&links, "a").len() <= 2);
        let c = chain(&links, "a");
        assert!(c.len() <= 2);
        assert!(chain(&[], "x") == vec!["x".to_string()]);
    }
}
