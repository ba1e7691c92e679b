//! `org.daisee.Gateway1.Web` at `Web`: where the web page is, and the password that lets a
//! person logged in on it switch relays. There only when the configuration has a `[web]`.

use zbus::interface;
use zbus::object_server::SignalEmitter;

use super::Error;
use crate::web::{PasswordError, WebHandle};

/// The web page.
pub(super) struct WebObject {
    pub(super) handle: WebHandle,
}

#[interface(name = "org.daisee.Gateway1.Web")]
impl WebObject {
    /// Sets the page's password (8 to 1024 bytes), kept only as a hash; every session ends.
    /// Refused unless `[web]` has `writes = true`.
    async fn set_password(
        &self,
        password: String,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Error> {
        self.handle
            .access
            .set_password(password)
            .await
            .map_err(|e| match e {
                PasswordError::Failed(e) => Error::ConfigNotWritten(e),
                refused => Error::InvalidArgument(refused.to_string()),
            })?;
        self.writes_changed(&emitter).await?;
        Ok(())
    }

    /// The page's address, `http://host:port/`.
    #[zbus(property)]
    fn url(&self) -> String {
        format!("http://{}/", self.handle.address)
    }

    /// Whether a person logged in on the page may switch relays: `[web]` allows it and a
    /// password is set.
    #[zbus(property)]
    fn writes(&self) -> bool {
        self.handle.access.writes()
    }
}
