//! Properties that follow each snapshot, with one `PropertiesChanged` signal per object and
//! interface for what changed.

use std::collections::HashMap;

use zbus::object_server::SignalEmitter;
use zbus::zvariant::Value;

/// The properties that changed in one update, with their new values.
#[derive(Default)]
pub(super) struct Changes(HashMap<&'static str, Value<'static>>);

impl Changes {
    /// Sets `field` to `value`, noting it under `name` if that changed it.
    pub(super) fn set<T>(&mut self, name: &'static str, field: &mut T, value: T)
    where
        T: PartialEq + Clone + Into<Value<'static>>,
    {
        if *field != value {
            *field = value.clone();
            self.0.insert(name, value.into());
        }
    }

    /// Signals what changed of `interface`, if anything did.
    pub(super) async fn emit(
        self,
        emitter: &SignalEmitter<'_>,
        interface: zbus::names::InterfaceName<'_>,
    ) -> zbus::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let changed = self.0.iter().map(|(k, v)| (*k, v.clone())).collect();
        zbus::fdo::Properties::properties_changed(
            emitter,
            interface,
            changed,
            std::borrow::Cow::Borrowed(&[]),
        )
        .await
    }
}
