//! Setting a property of the agent's: every one is read-only (changes go through methods that
//! the bus policy restricts), and `Set` on one answers `PropertyReadOnly`, as the D-Bus
//! specification asks. zbus's generated code answers `UnknownProperty` for any property without
//! a setter; this wrapper tells the two apart by asking the interface for the property.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};

use zbus::message::Header;
use zbus::names::{InterfaceName, MemberName};
use zbus::object_server::{DispatchResult2, Interface, SignalEmitter};
use zbus::zvariant::{OwnedValue, Value};
use zbus::{Connection, Message, ObjectServer, fdo};

/// An interface of the agent, served with read-only properties that say so.
pub(super) struct ReadOnly<I>(pub(super) I);

impl<I> Deref for ReadOnly<I> {
    type Target = I;

    fn deref(&self) -> &I {
        &self.0
    }
}

impl<I> DerefMut for ReadOnly<I> {
    fn deref_mut(&mut self) -> &mut I {
        &mut self.0
    }
}

#[zbus::export::async_trait::async_trait]
impl<I: Interface> Interface for ReadOnly<I> {
    fn name() -> InterfaceName<'static> {
        I::name()
    }

    fn spawn_tasks_for_methods(&self) -> bool {
        self.0.spawn_tasks_for_methods()
    }

    async fn get(
        &self,
        property: &str,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> Option<fdo::Result<OwnedValue>> {
        self.0
            .get(property, server, connection, header, emitter)
            .await
    }

    async fn get_all(
        &self,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> fdo::Result<HashMap<String, OwnedValue>> {
        self.0.get_all(server, connection, header, emitter).await
    }

    fn set<'call>(
        &'call self,
        property: &'call str,
        value: &'call Value<'_>,
        server: &'call ObjectServer,
        connection: &'call Connection,
        header: Option<&'call Header<'_>>,
        emitter: &'call SignalEmitter<'_>,
    ) -> DispatchResult2<'call> {
        match self
            .0
            .set(property, value, server, connection, header, emitter)
        {
            DispatchResult2::NotFound => DispatchResult2::Async(Box::pin(async move {
                match self
                    .0
                    .get(property, server, connection, header, emitter)
                    .await
                {
                    Some(_) => Err(fdo::Error::PropertyReadOnly(format!(
                        "property '{property}' is read-only"
                    ))),
                    None => Err(fdo::Error::UnknownProperty(format!(
                        "unknown property '{property}'"
                    ))),
                }
            })),
            other => other,
        }
    }

    async fn set_mut(
        &mut self,
        property: &str,
        value: &Value<'_>,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> Option<fdo::Result<()>> {
        self.0
            .set_mut(property, value, server, connection, header, emitter)
            .await
    }

    fn call<'call>(
        &'call self,
        server: &'call ObjectServer,
        connection: &'call Connection,
        msg: &'call Message,
        name: MemberName<'call>,
    ) -> DispatchResult2<'call> {
        self.0.call(server, connection, msg, name)
    }

    fn call_mut<'call>(
        &'call mut self,
        server: &'call ObjectServer,
        connection: &'call Connection,
        msg: &'call Message,
        name: MemberName<'call>,
    ) -> DispatchResult2<'call> {
        self.0.call_mut(server, connection, msg, name)
    }

    fn introspect_to_writer(&self, writer: &mut dyn std::fmt::Write, level: usize) {
        self.0.introspect_to_writer(writer, level)
    }
}
