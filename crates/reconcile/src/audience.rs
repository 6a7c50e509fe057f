//! Whom a national recommendation is addressed to, from its wording: "By 31
//! October 2024, chief constables should …" goes to every police force;
//! "All fire and rescue services should …" to every fire and rescue service;
//! a recommendation naming both goes to both. The tracker fans each out to
//! every organisation of those kinds it knows.

use crate::text::normalise;

/// The kinds of organisation a recommendation is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Audience {
    pub police_forces: bool,
    pub fire_and_rescue_services: bool,
}

impl Audience {
    /// Neither kind could be told from the wording.
    pub fn is_unknown(self) -> bool {
        !self.police_forces && !self.fire_and_rescue_services
    }
}

const POLICE: &[&str] = &[
    "chief constable",
    "chief constables",
    "all forces",
    "every force",
    "each force",
    "all police forces",
    "police forces should",
    "forces should",
    "commissioner of police of the metropolis",
    "police and crime commissioners",
];

const FIRE: &[&str] = &[
    "fire and rescue services",
    "fire and rescue service should",
    "every fire and rescue service",
    "each fire and rescue service",
    "fire and rescue authorities",
    "chief fire officer",
    "chief fire officers",
    "all services",
    "every service",
    "each service",
];

/// The audience a recommendation's text names.
pub fn audience(text: &str) -> Audience {
    let n = format!(" {} ", normalise(text));
    let names = |phrases: &[&str]| phrases.iter().any(|p| n.contains(&format!(" {p} ")));
    Audience {
        police_forces: names(POLICE),
        fire_and_rescue_services: names(FIRE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn police_wording() {
        for s in [
            "By 31 October 2024, chief constables should make sure that every victim is told.",
            "We recommended that all forces should review their use of body-worn video.",
            "Every force should publish its plan.",
        ] {
            let a = audience(s);
            assert!(a.police_forces && !a.fire_and_rescue_services, "{s}");
        }
    }

    #[test]
    fn fire_wording() {
        for s in [
            "All fire and rescue services should review their protection plans by March 2023.",
            "By 1 June 2023, chief fire officers should make sure staff are trained.",
            "Each fire and rescue service should assure itself that its data is accurate.",
        ] {
            let a = audience(s);
            assert!(a.fire_and_rescue_services && !a.police_forces, "{s}");
        }
    }

    #[test]
    fn both_and_neither() {
        let both = audience("Chief constables and chief fire officers should share premises.");
        assert!(both.police_forces && both.fire_and_rescue_services);
        assert!(audience("The Home Office should consult.").is_unknown());
        assert!(audience("").is_unknown());
    }
}
