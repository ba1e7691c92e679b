//! The `[dialogue]` table: the community this gateway bids in (its terms and members, the same
//! at every member) and where its node listens and whom it dials.

use std::sync::Arc;

use daisee_dialogue::net::{Multiaddr, NetConfig};
use daisee_dialogue::{Address, Member, PriceBasis, Step, Terms};
use serde::Deserialize;
use toml::Spanned;

use super::check::{self, ConfigError, Locator, Names, quote};
use super::sim::SimSite;

/// The machine dialogue, if the gateway takes part in one.
#[derive(Debug, Clone, PartialEq)]
pub struct DialogueConfig {
    /// The community's terms, checked.
    pub terms: Arc<Terms>,
    /// Where the node listens, whom it dials, and whether it looks on the LAN.
    pub net: NetConfig,
    /// The channel of the grid connection, whose energy makes the meter reports.
    pub grid: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DialogueTable {
    community: String,
    grid: String,
    #[serde(default)]
    listen: Vec<String>,
    #[serde(default)]
    bootstrap: Vec<String>,
    #[serde(default)]
    mdns: bool,
    slot_ms: Option<i64>,
    gate_ms: Option<i64>,
    grace_ms: Option<i64>,
    price_first: i64,
    price_increment: i64,
    price_steps: u8,
    import_tariff_step: u8,
    feed_in_tariff_step: u8,
    import_cap_w: i64,
    export_cap_w: i64,
    quorum: Option<usize>,
    #[serde(default)]
    member: Vec<MemberTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberTable {
    address: String,
    import_w: i64,
    export_w: i64,
}

/// The dialogue's settings, the terms checked by the protocol's own rules.
pub(super) fn dialogue(
    at: &Locator<'_>,
    table: &Spanned<DialogueTable>,
    channels: &Names,
    store: bool,
    sim: Option<&SimSite>,
) -> Result<DialogueConfig, ConfigError> {
    let (at, t) = (at.table(table.span(), "dialogue"), table.get_ref());
    if !store {
        return Err(at.error(
            "",
            "needs a [store]: the gateway's key and its slots are kept in its directory",
        ));
    }
    // Slots are on the gateway's clock, and peers time out in real seconds.
    if sim.is_some_and(|s| s.speed != 1) {
        return Err(at.error(
            "",
            "runs in real time: the simulated site's speed must be 1",
        ));
    }
    check::channel(&at, channels, "grid", &t.grid)?;
    let members = t
        .member
        .iter()
        .enumerate()
        .map(|(i, m)| member(&at, i, m))
        .collect::<Result<Vec<_>, _>>()?;
    let terms = Terms {
        community: t.community.clone(),
        basis: PriceBasis {
            first: t.price_first,
            increment: t.price_increment,
            steps: t.price_steps,
        },
        import_tariff: Step(t.import_tariff_step),
        feed_in_tariff: Step(t.feed_in_tariff_step),
        import_cap_mw: milliwatts(t.import_cap_w),
        export_cap_mw: milliwatts(t.export_cap_w),
        slot_ms: t.slot_ms.unwrap_or(15 * 60 * 1000),
        gate_ms: t.gate_ms.unwrap_or(60 * 1000),
        grace_ms: t.grace_ms.unwrap_or(20 * 1000),
        quorum: t
            .quorum
            .unwrap_or_else(|| Terms::default_quorum(members.len())),
        members,
    };
    terms.check().map_err(|e| at.error("", e.to_string()))?;
    Ok(DialogueConfig {
        terms: Arc::new(terms),
        net: NetConfig {
            listen: addresses(&at, "listen", &t.listen)?,
            bootstrap: addresses(&at, "bootstrap", &t.bootstrap)?,
            mdns: t.mdns,
        },
        grid: t.grid.clone(),
    })
}

/// One `[[dialogue.member]]`: an account and its ratings in watts.
fn member(at: &Locator<'_>, i: usize, m: &MemberTable) -> Result<Member, ConfigError> {
    let key = |k: &str| format!("member[{i}].{k}");
    let address = m
        .address
        .parse::<Address>()
        .map_err(|_| at.error(&key("address"), "not an account (0x and 40 hex digits)"))?;
    let mw = |k: &str, w: i64| {
        Some(milliwatts(w))
            .filter(|mw| *mw >= 0)
            .ok_or_else(|| at.error(&key(k), format!("{w} W is not a rating")))
    };
    Ok(Member {
        address,
        import_mw: mw("import_w", m.import_w)?,
        export_mw: mw("export_w", m.export_w)?,
    })
}

/// Watts as milliwatts; beyond what an i64 holds, the terms' own bounds refuse it.
fn milliwatts(w: i64) -> i64 {
    w.saturating_mul(1000)
}

/// Multiaddresses (`/ip4/127.0.0.1/tcp/4610`), each checked.
fn addresses(at: &Locator<'_>, key: &str, texts: &[String]) -> Result<Vec<Multiaddr>, ConfigError> {
    texts
        .iter()
        .map(|text| {
            text.parse::<Multiaddr>()
                .map_err(|e| at.error(key, format!("{} is not a multiaddress: {e}", quote(text))))
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use crate::config::Config;

    /// A home with a history and a simulated grid sensor, for the tests of the tables that need
    /// both.
    pub(in crate::config) const SITE: &str = r#"
[store]
dir = "/data"

[sim]
[[sim.load]]
name = "house"
profile = "constant"
power_w = 500

[[sensor]]
name = "grid"
backend = "sim"
loads = ["house"]
"#;

    /// A community of two, for tests.
    const COMMUNITY: &str = r#"
[dialogue]
community = "rue-des-lilas"
grid = "grid"
listen = ["/ip4/127.0.0.1/tcp/0"]
slot_ms = 6000
gate_ms = 2000
grace_ms = 1500
price_first = 0
price_increment = 10000
price_steps = 40
import_tariff_step = 30
feed_in_tariff_step = 8
import_cap_w = 20000
export_cap_w = 20000

[[dialogue.member]]
address = "0x1111111111111111111111111111111111111111"
import_w = 9000
export_w = 6000

[[dialogue.member]]
address = "0x2222222222222222222222222222222222222222"
import_w = 9000
export_w = 0
"#;

    fn dialogue() -> String {
        format!("{SITE}{COMMUNITY}")
    }

    #[test]
    fn the_terms_are_read_and_checked_by_the_protocol() {
        let c = Config::parse(&dialogue()).unwrap();
        let d = c.dialogue.unwrap();
        assert_eq!(d.terms.members.len(), 2);
        assert_eq!(d.terms.quorum, 2);
        assert_eq!(d.terms.members[0].import_mw, 9_000_000);
        assert_eq!(d.net.listen.len(), 1);
        let e = Config::parse(
            &dialogue().replace("feed_in_tariff_step = 8", "feed_in_tariff_step = 31"),
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("dialogue"), "{e}");
        assert!(e.message.contains("tariff"), "{e}");
        let e = Config::parse(&dialogue().replace("0x2222", "0x22")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("dialogue.member[1].address"), "{e}");
        let e = Config::parse(&dialogue().replace("/ip4/127.0.0.1/tcp/0", "127.0.0.1:4610"))
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("dialogue.listen"), "{e}");
        let e =
            Config::parse(&dialogue().replace("grid = \"grid\"", "grid = \"meter\"")).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(18), Some("dialogue.grid")),
            "{e}"
        );
        let e = Config::parse(&dialogue().replace("[store]\ndir = \"/data\"", "")).unwrap_err();
        assert!(e.message.contains("needs a [store]"), "{e}");
        let e = Config::parse(&dialogue().replace("[sim]", "[sim]\nspeed = 60")).unwrap_err();
        assert!(e.message.contains("real time"), "{e}");
    }
}
