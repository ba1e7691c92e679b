//! `org.daisee.Gateway1.Update` at `Update`: the A/B slots, asked of RAUC at each call.

use daisee_api::UpdateSlot;
use zbus::{Connection, interface};

use super::{Error, rauc};

/// The update slots, as RAUC reports them when asked. Methods, not properties: nothing is cached,
/// and a gateway without RAUC must still list its objects (GetManagedObjects reads properties).
pub(super) struct UpdateObject {
    pub(super) conn: Connection,
}

fn unavailable(e: rauc::Unavailable) -> Error {
    Error::UpdateUnavailable(e.to_string())
}

#[interface(name = "org.daisee.Gateway1.Update")]
impl UpdateObject {
    /// The slot the gateway booted (its bootname, `A` or `B`).
    async fn boot_slot(&self) -> Result<String, Error> {
        rauc::property(&self.conn, "BootSlot")
            .await
            .map_err(unavailable)
    }

    /// Every slot: name, bootname, state (`booted`, `active`, `inactive`), boot status (`good`, `bad`)
    /// and the version of the bundle installed into it.
    async fn slots(&self) -> Result<Vec<UpdateSlot>, Error> {
        rauc::slots(&self.conn).await.map_err(unavailable)
    }

    /// What RAUC is doing (`idle`, `installing`) and the error of the last install that failed.
    async fn installer(&self) -> Result<(String, String), Error> {
        Ok((
            rauc::property(&self.conn, "Operation")
                .await
                .map_err(unavailable)?,
            rauc::property(&self.conn, "LastError")
                .await
                .map_err(unavailable)?,
        ))
    }
}
