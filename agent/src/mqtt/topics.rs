//! Every topic the gateway publishes to or listens on, named once.

/// The gateway's topics under its prefix, and Home Assistant's.
#[derive(Debug, Clone)]
pub(super) struct Topics {
    prefix: String,
    discovery: Option<String>,
    node: String,
}

impl Topics {
    /// The topics of node `node` under `prefix`, with discovery under `discovery` if on.
    pub(super) fn new(prefix: String, discovery: Option<String>, node: String) -> Self {
        Self {
            prefix,
            discovery,
            node,
        }
    }

    /// `online` or `offline` (the last will), retained.
    pub(super) fn availability(&self) -> String {
        format!("{}/status", self.prefix)
    }

    /// A channel's power and energy, each poll.
    pub(super) fn channel(&self, name: &str) -> String {
        format!("{}/channel/{name}", self.prefix)
    }

    /// A relay's state and mode, each poll.
    pub(super) fn relay(&self, name: &str) -> String {
        format!("{}/relay/{name}", self.prefix)
    }

    /// Where a relay takes `ON`, `OFF` and `AUTO`.
    pub(super) fn relay_command(&self, name: &str) -> String {
        format!("{}/set", self.relay(name))
    }

    /// The subscription to every relay's command topic.
    pub(super) fn relay_commands(&self) -> String {
        self.relay_command("+")
    }

    /// The relay a command topic is for, if it is one.
    pub(super) fn relay_of<'t>(&self, topic: &'t str) -> Option<&'t str> {
        let name = topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix("/relay/")?
            .strip_suffix("/set")?;
        (!name.is_empty() && !name.contains('/')).then_some(name)
    }

    /// Home Assistant's device-based discovery topic of the gateway, if discovery is on.
    pub(super) fn discovery(&self) -> Option<String> {
        let prefix = self.discovery.as_ref()?;
        Some(format!("{prefix}/device/{}/config", self.node))
    }

    /// Where Home Assistant says `online` when it starts (and wants discovery again).
    pub(super) fn home_assistant(&self) -> Option<String> {
        let prefix = self.discovery.as_ref()?;
        Some(format!("{prefix}/status"))
    }
}

#[cfg(test)]
mod tests {
    use super::Topics;

    #[test]
    fn command_topics_name_their_relay_and_nothing_else_does() {
        let t = Topics::new("daisee/home".into(), None, "home".into());
        assert_eq!(t.relay_command("boiler"), "daisee/home/relay/boiler/set");
        assert_eq!(t.relay_of("daisee/home/relay/boiler/set"), Some("boiler"));
        for other in [
            "daisee/home/relay/boiler",
            "daisee/home/relay//set",
            "daisee/home/relay/a/b/set",
            "daisee/homes/relay/boiler/set",
            "daisee/home/channel/boiler/set",
        ] {
            assert_eq!(t.relay_of(other), None, "{other}");
        }
        assert_eq!(t.discovery(), None);
        let t = Topics::new("p".into(), Some("homeassistant".into()), "n".into());
        assert_eq!(t.discovery().unwrap(), "homeassistant/device/n/config");
    }
}
