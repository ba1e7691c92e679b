//! The update state as RAUC knows it (`de.pengutronix.rauc` on the same bus): which slot booted,
//! what each slot holds and whether it is good, what RAUC is doing. Read on each request: RAUC
//! is the one source, and a gateway without RAUC (development, the demo) says so.

use std::collections::HashMap;

use daisee_api::UpdateSlot;
use zbus::Connection;
use zbus::zvariant::OwnedValue;

const RAUC: &str = "de.pengutronix.rauc";
const INSTALLER: &str = "de.pengutronix.rauc.Installer";

/// Why RAUC could not be asked.
#[derive(Debug)]
pub(super) struct Unavailable(zbus::Error);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RAUC does not answer on this bus ({})", self.0)
    }
}

impl std::error::Error for Unavailable {}

/// A string property of RAUC's installer: `BootSlot`, `Operation`, `LastError`, `Compatible`.
pub(super) async fn property(conn: &Connection, name: &str) -> Result<String, Unavailable> {
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
pub(super) async fn slots(conn: &Connection) -> Result<Vec<UpdateSlot>, Unavailable> {
    let reply = conn
        .call_method(Some(RAUC), "/", Some(INSTALLER), "GetSlotStatus", &())
        .await
        .map_err(Unavailable)?;
    let status: Vec<(String, HashMap<String, OwnedValue>)> =
        reply.body().deserialize().map_err(Unavailable)?;
    let mut slots: Vec<UpdateSlot> = status
        .into_iter()
        .map(|(name, fields)| {
            let text = |key: &str| {
                fields
                    .get(key)
                    .and_then(|v| String::try_from(v.try_clone().ok()?).ok())
                    .unwrap_or_default()
            };
            UpdateSlot {
                bootname: text("bootname"),
                state: text("state"),
                boot_status: text("boot-status"),
                bundle_version: text("bundle.version"),
                name,
            }
        })
        .collect();
    slots.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(slots)
}
