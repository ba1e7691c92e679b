//! Properties that follow each snapshot, with one `PropertiesChanged` signal per object and
//! interface for what changed.

use std::collections::HashMap;

use zbus::object_server::SignalEmitter;
use zbus::zvariant::Value;

/// The properties that changed in one update, with their new values.
#[derive(Default)]
pub(super) struct Changes {
    values: HashMap<&'static str, Value<'static>>,
    invalidated: Vec<&'static str>,
}

impl Changes {
    /// Sets `field` to `value`, noting it under `name` if that changed it.
    pub(super) fn set<T>(&mut self, name: &'static str, field: &mut T, value: T)
    where
        T: PartialEq + Clone + Into<Value<'static>>,
    {
        if *field != value {
            *field = value.clone();
            self.values.insert(name, value.into());
        }
    }

    /// Sets `field` to `value`, noting only that `name` changed: for a property marked
    /// `emits_changed_signal = "invalidates"`, whose value is too costly to send every poll.
    pub(super) fn invalidate<T: PartialEq>(&mut self, name: &'static str, field: &mut T, value: T) {
        if *field != value {
            *field = value;
            self.invalidated.push(name);
        }
    }

    /// Signals what changed of `interface`, if anything did.
    pub(super) async fn emit(
        self,
        emitter: &SignalEmitter<'_>,
        interface: zbus::names::InterfaceName<'_>,
    ) -> zbus::Result<()> {
        if self.values.is_empty() && self.invalidated.is_empty() {
            return Ok(());
        }
        zbus::fdo::Properties::properties_changed(
            emitter,
            interface,
            self.values,
            std::borrow::Cow::Owned(self.invalidated),
        )
        .await
    }
}
