//! RAUC (`de.pengutronix.rauc` on the system bus), as the agent uses it: which slot booted and
//! what each holds, inspecting a bundle (its machine and version), installing one while relaying
//! its progress. Read on each request: RAUC is the one source, and a gateway without RAUC (a
//! development machine, the demo) says so.

use std::collections::HashMap;

use daisee_api::UpdateSlot;
use futures_util::StreamExt;
use zbus::Connection;
use zbus::zvariant::{OwnedValue, Value};

const RAUC: &str = "de.pengutronix.rauc";
const INSTALLER: &str = "de.pengutronix.rauc.Installer";

/// Why RAUC could not be asked.
#[derive(Debug)]
pub(crate) struct Unavailable(zbus::Error);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RAUC does not answer on this bus ({})", self.0)
    }
}

impl std::error::Error for Unavailable {}

/// A slot as RAUC reports it, with when it was last made the one to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotStatus {
    /// What the agent's D-Bus API shows of it.
    pub(crate) slot: UpdateSlot,
    /// When an install last made it the slot to boot (ISO 8601, UTC); empty if never.
    pub(crate) activated: String,
}

/// A string property of RAUC's installer: `BootSlot`, `Operation`, `LastError`, `Compatible`.
pub(crate) async fn property(conn: &Connection, name: &str) -> Result<String, Unavailable> {
    let reply = conn
        .call_method(
            Some(RAUC),
            "/",
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(INSTALLER, name),
        )
        .await
        .map_err(Unavailable)?;
    let value: OwnedValue = reply.body().deserialize().map_err(Unavailable)?;
    String::try_from(value).map_err(|e| Unavailable(e.into()))
}

/// Every slot RAUC manages, by name (RAUC's own order changes from call to call).
pub(crate) async fn slots(conn: &Connection) -> Result<Vec<SlotStatus>, Unavailable> {
    let reply = conn
        .call_method(Some(RAUC), "/", Some(INSTALLER), "GetSlotStatus", &())
        .await
        .map_err(Unavailable)?;
    let status: Vec<(String, HashMap<String, OwnedValue>)> =
        reply.body().deserialize().map_err(Unavailable)?;
    let mut slots: Vec<SlotStatus> = status
        .into_iter()
        .map(|(name, fields)| {
            let text = |key: &str| text(&fields, key);
            SlotStatus {
                slot: UpdateSlot {
                    bootname: text("bootname"),
                    state: text("state"),
                    boot_status: text("boot-status"),
                    bundle_version: text("bundle.version"),
                    name,
                },
                activated: text("activated.timestamp"),
            }
        })
        .collect();
    slots.sort_by(|a, b| a.slot.name.cmp(&b.slot.name));
    Ok(slots)
}

/// The version of the bundle whose slot failed and was left for the booted one: the other
/// bootable slot is bad and was activated (by an install) after the booted one was.
pub(crate) fn rolled_back(slots: &[SlotStatus]) -> Option<&SlotStatus> {
    let booted = slots.iter().find(|s| s.slot.state == "booted")?;
    slots.iter().find(|s| {
        s.slot.name != booted.slot.name
            && !s.slot.bootname.is_empty()
            && s.slot.boot_status == "bad"
            && !s.activated.is_empty()
            // ISO 8601 in UTC: as text, in time order.
            && s.activated > booted.activated
    })
}

/// A bundle's machine (compatible string) and version, read by RAUC, which checks its
/// signature (a URL is streamed: only the manifest is read).
pub(crate) async fn inspect(conn: &Connection, source: &str) -> Result<(String, String), String> {
    let args: HashMap<&str, Value<'_>> = HashMap::new();
    let inspected = conn
        .call_method(
            Some(RAUC),
            "/",
            Some(INSTALLER),
            "InspectBundle",
            &(source, args),
        )
        .await;
    let reply = match inspected {
        Ok(reply) => reply,
        // RAUC before 1.10 has only the older call, which says no more than this.
        Err(zbus::Error::MethodError(name, _, _))
            if name.as_str() == "org.freedesktop.DBus.Error.UnknownMethod" =>
        {
            let reply = conn
                .call_method(Some(RAUC), "/", Some(INSTALLER), "Info", &(source,))
                .await
                .map_err(|e| said(&e))?;
            return reply.body().deserialize().map_err(|e| e.to_string());
        }
        Err(e) => return Err(said(&e)),
    };
    let info: HashMap<String, OwnedValue> =
        reply.body().deserialize().map_err(|e| e.to_string())?;
    let update = info
        .get("update")
        .and_then(|v| dict(v))
        .ok_or("RAUC's inspection of the bundle has no `update` section")?;
    Ok((text(&update, "compatible"), text(&update, "version")))
}

/// Installs `source` (a URL RAUC streams, or a file), calling `progress` with RAUC's percentage
/// and step as they change; the error is RAUC's when the install fails.
///
/// RAUC 1.13 tears down the nbd device of a streamed inspection after it answered: an install
/// streamed straight after it fails with "Failed mounting bundle: Failed to load dm table", and
/// works seconds later. Such a failure is tried again, twice.
pub(crate) async fn install(
    conn: &Connection,
    source: &str,
    mut progress: impl FnMut(i32, String),
) -> Result<(), String> {
    let mut attempt = 0;
    loop {
        match install_once(conn, source, &mut progress).await {
            Err(e) if e.starts_with("Failed mounting bundle") && attempt < 2 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_secs(3 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// One install of `source`, as [`install`] does it.
async fn install_once(
    conn: &Connection,
    source: &str,
    progress: &mut impl FnMut(i32, String),
) -> Result<(), String> {
    let proxy = zbus::Proxy::new(conn, RAUC, "/", INSTALLER)
        .await
        .map_err(|e| e.to_string())?;
    // Listening before the call, so that no signal of this install is missed.
    let mut completed = proxy
        .receive_signal("Completed")
        .await
        .map_err(|e| e.to_string())?;
    let mut steps = proxy
        .receive_property_changed::<(i32, String, i32)>("Progress")
        .await;
    let args: HashMap<&str, Value<'_>> = HashMap::new();
    proxy
        .call_method("InstallBundle", &(source, args))
        .await
        .map_err(|e| said(&e))?;
    loop {
        tokio::select! {
            Some(step) = steps.next() => {
                if let Ok((percent, message, _depth)) = step.get().await {
                    progress(percent, message);
                }
            }
            signal = completed.next() => {
                let result: i32 = signal
                    .ok_or("RAUC left the bus during the install")?
                    .body()
                    .deserialize()
                    .map_err(|e| e.to_string())?;
                if result == 0 {
                    return Ok(());
                }
                return Err(last_error(conn).await);
            }
        }
    }
}

/// Why RAUC's install failed: its `LastError`, which some versions set just after they signal
/// the end.
async fn last_error(conn: &Connection) -> String {
    for _ in 0..20 {
        match property(conn, "LastError").await {
            Ok(error) if !error.is_empty() => return error,
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Err(e) => return e.to_string(),
        }
    }
    "RAUC's install failed; it gave no reason".into()
}

/// RAUC's own words for a failed call, without zbus's wrapping.
fn said(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(_, Some(message), _) => message.clone(),
        other => Unavailable(other.clone()).to_string(),
    }
}

/// A string field of a dictionary RAUC sent; empty if missing.
fn text(fields: &HashMap<String, OwnedValue>, key: &str) -> String {
    fields
        .get(key)
        .and_then(|v| String::try_from(v.try_clone().ok()?).ok())
        .unwrap_or_default()
}

/// A dictionary RAUC sent inside a variant (boxed once or twice).
fn dict(value: &Value<'_>) -> Option<HashMap<String, OwnedValue>> {
    match value {
        Value::Value(inner) => dict(inner),
        other => HashMap::<String, OwnedValue>::try_from(other.try_to_owned().ok()?).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(
        name: &str,
        bootname: &str,
        state: &str,
        status: &str,
        version: &str,
        activated: &str,
    ) -> SlotStatus {
        SlotStatus {
            slot: UpdateSlot {
                name: name.into(),
                bootname: bootname.into(),
                state: state.into(),
                boot_status: status.into(),
                bundle_version: version.into(),
            },
            activated: activated.into(),
        }
    }

    #[test]
    fn a_rollback_is_a_bad_slot_activated_after_the_booted_one() {
        let a = |activated| slot("rootfs.0", "A", "booted", "good", "", activated);
        let b = |status, activated| slot("rootfs.1", "B", "inactive", status, "0.2", activated);
        // B installed and activated, never got ready: A booted again.
        let back = [a(""), b("bad", "2026-12-03T10:00:00Z")];
        assert_eq!(
            rolled_back(&back).map(|s| s.slot.bundle_version.as_str()),
            Some("0.2")
        );
        let later = [a("2026-12-01T10:00:00Z"), b("bad", "2026-12-03T10:00:00Z")];
        assert!(rolled_back(&later).is_some());
        // A fresh disk's B, an install cut off before B was activated again, a good B.
        assert_eq!(rolled_back(&[a(""), b("bad", "")]), None);
        assert_eq!(
            rolled_back(&[a("2026-12-04T10:00:00Z"), b("bad", "2026-12-03T10:00:00Z")]),
            None
        );
        assert_eq!(
            rolled_back(&[a(""), b("good", "2026-12-03T10:00:00Z")]),
            None
        );
    }
}
