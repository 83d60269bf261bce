use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::{JsonSerializer, Serializer, deserialize_with};
use crate::envelope::OutgoingMessage;
use crate::error::{BoxError, SerializationError};
use crate::message::Message;

/// Serializers by name and identifier, the binding of message types to them, and a default,
/// in the manner of Akka's (and Python Melange's) serializer registry.
///
/// Publishers ask it for the serializer of a message type; consumers ask it for the
/// serializer whose identifier a received message carries. Cheap to clone.
///
/// ```
/// use melange_core::serializer::{JsonSerializer, SerializerRegistry};
///
/// let registry = SerializerRegistry::builder()
///     .serializer("json", JsonSerializer)
///     .default_serializer("json")
///     .build()?;
/// assert_eq!(registry.by_id(1)?.identifier(), 1);
/// assert!(registry.by_id(9).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SerializerRegistry {
    inner: Arc<Registry>,
}

struct Registry {
    serializers: Vec<Entry>,
    bindings: HashMap<TypeId, usize>,
    default: usize,
    /// The default serializer's identifier, which a received message with none is read with.
    default_id: u32,
    /// The [`JsonSerializer`]'s identifier, if registered: a received message with it is
    /// decoded by `serde_json` before any lookup (the hot path of every JSON message).
    json_id: Option<u32>,
}

impl Registry {
    fn new(serializers: Vec<Entry>, bindings: HashMap<TypeId, usize>, default: usize) -> Self {
        // Identifiers are unique, so at most one entry is the JSON one.
        let json_id = serializers
            .iter()
            .find(|entry| entry.is_json)
            .map(|entry| entry.id);
        Self {
            default_id: serializers[default].id,
            json_id,
            serializers,
            bindings,
            default,
        }
    }
}

struct Entry {
    name: String,
    id: u32,
    serializer: Arc<dyn Serializer>,
    /// The serializer is [`JsonSerializer`]: encode and decode with `serde_json` directly,
    /// skipping the type erasure (the hot path of every JSON message).
    is_json: bool,
}

impl Entry {
    fn new<S: Serializer>(name: String, serializer: S) -> Self {
        Self {
            name,
            id: serializer.identifier(),
            is_json: TypeId::of::<S>() == TypeId::of::<JsonSerializer>(),
            serializer: Arc::new(serializer),
        }
    }
}

impl Default for SerializerRegistry {
    /// A registry with [`JsonSerializer`] as `"json"`, the default for every type.
    fn default() -> Self {
        let json = Entry::new("json".to_owned(), JsonSerializer);
        Self {
            inner: Arc::new(Registry::new(vec![json], HashMap::new(), 0)),
        }
    }
}

impl std::fmt::Debug for SerializerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_map();
        for entry in &self.inner.serializers {
            list.entry(&entry.name, &entry.serializer.identifier());
        }
        list.finish()
    }
}

impl SerializerRegistry {
    /// Starts a registry with no serializers.
    pub fn builder() -> SerializerRegistryBuilder {
        SerializerRegistryBuilder::default()
    }

    /// The serializer with this identifier.
    pub fn by_id(&self, id: u32) -> Result<&dyn Serializer, SerializationError> {
        self.entry_by_id(id).map(|entry| &*entry.serializer)
    }

    /// Registries hold a handful of serializers: a scan beats hashing.
    fn entry_by_id(&self, id: u32) -> Result<&Entry, SerializationError> {
        self.inner
            .serializers
            .iter()
            .find(|entry| entry.id == id)
            .ok_or(SerializationError::UnknownSerializer { id })
    }

    fn entry_for<T: 'static>(&self) -> &Entry {
        let bindings = &self.inner.bindings;
        let index = if bindings.is_empty() {
            self.inner.default
        } else {
            bindings
                .get(&TypeId::of::<T>())
                .copied()
                .unwrap_or(self.inner.default)
        };
        &self.inner.serializers[index]
    }

    /// The serializer registered under this name.
    pub fn by_name(&self, name: &str) -> Option<&dyn Serializer> {
        self.inner
            .serializers
            .iter()
            .find(|e| e.name == name)
            .map(|e| &*e.serializer)
    }

    /// The serializer for messages of type `T`: its binding, else the default.
    pub fn serializer_for<T: 'static>(&self) -> &dyn Serializer {
        &*self.entry_for::<T>().serializer
    }

    /// The default serializer, used for unbound types and for received messages that carry no
    /// serializer id.
    pub fn default_serializer(&self) -> &dyn Serializer {
        &*self.inner.serializers[self.inner.default].serializer
    }

    /// Serializes a message with its serializer into an [`OutgoingMessage`] carrying its
    /// manifest and serializer id.
    pub fn serialize<T: Message>(
        &self,
        message: &T,
    ) -> Result<OutgoingMessage, SerializationError> {
        let entry = self.entry_for::<T>();
        let encoded = if entry.is_json {
            serde_json::to_string(message).map_err(Into::into)
        } else {
            entry.serializer.serialize(message)
        };
        let content = encoded.map_err(|source| SerializationError::Encode {
            manifest: T::MANIFEST,
            serializer_id: entry.id,
            source,
        })?;
        Ok(OutgoingMessage::new(content, T::MANIFEST, entry.id))
    }

    /// Whether a received message with this serializer id is JSON (decoded by `serde_json`).
    #[inline]
    pub(crate) fn is_json(&self, serializer_id: Option<u32>) -> bool {
        Some(self.received_id(serializer_id)) == self.inner.json_id
    }

    /// The identifier a received message is read with: its own, or the default's.
    #[inline]
    fn received_id(&self, serializer_id: Option<u32>) -> u32 {
        serializer_id.unwrap_or(self.inner.default_id)
    }

    /// The error of received JSON content that did not decode.
    pub(crate) fn json_decode_error(
        &self,
        serializer_id: Option<u32>,
        manifest: Option<&str>,
        source: serde_json::Error,
    ) -> SerializationError {
        decode_error(manifest, self.received_id(serializer_id), source.into())
    }

    /// Deserializes received content with the serializer `serializer_id` names, or the default
    /// one when the message carried none.
    #[inline]
    pub fn deserialize<T: DeserializeOwned>(
        &self,
        content: &str,
        serializer_id: Option<u32>,
        manifest: Option<&str>,
    ) -> Result<T, SerializationError> {
        if self.is_json(serializer_id) {
            return serde_json::from_str(content)
                .map_err(|source| self.json_decode_error(serializer_id, manifest, source));
        }
        self.deserialize_erased(content, serializer_id, manifest)
    }

    /// Decoding with a serializer other than JSON, through type erasure.
    fn deserialize_erased<T: DeserializeOwned>(
        &self,
        content: &str,
        serializer_id: Option<u32>,
        manifest: Option<&str>,
    ) -> Result<T, SerializationError> {
        // The lookup is not generic: one copy, not one per message type.
        let entry = self.entry_for_received(serializer_id)?;
        deserialize_with(&*entry.serializer, content)
            .map_err(|source| decode_error(manifest, entry.id, source))
    }

    /// The entry that decodes a received message: the one its serializer id names, or the
    /// default when it carried none.
    fn entry_for_received(&self, serializer_id: Option<u32>) -> Result<&Entry, SerializationError> {
        match serializer_id {
            Some(id) => self.entry_by_id(id),
            None => Ok(&self.inner.serializers[self.inner.default]),
        }
    }
}

/// Kept out of line: building the error is the rare path of every decode.
#[cold]
#[inline(never)]
fn decode_error(
    manifest: Option<&str>,
    serializer_id: u32,
    source: BoxError,
) -> SerializationError {
    SerializationError::Decode {
        manifest: manifest.map(str::to_owned),
        serializer_id,
        source,
    }
}

/// Builds a [`SerializerRegistry`]; every mistake is reported by [`build`](Self::build).
#[derive(Default)]
pub struct SerializerRegistryBuilder {
    serializers: Vec<Entry>,
    bindings: Vec<(TypeId, &'static str, String)>,
    default: Option<String>,
}

impl SerializerRegistryBuilder {
    /// Registers a serializer under a name.
    pub fn serializer(mut self, name: impl Into<String>, serializer: impl Serializer) -> Self {
        self.serializers.push(Entry::new(name.into(), serializer));
        self
    }

    /// Binds the message type `T` to the serializer registered as `name`.
    pub fn bind<T: Message>(mut self, name: impl Into<String>) -> Self {
        self.bindings
            .push((TypeId::of::<T>(), T::MANIFEST, name.into()));
        self
    }

    /// Makes the serializer registered as `name` the default. Without this call the first
    /// registered serializer is the default.
    pub fn default_serializer(mut self, name: impl Into<String>) -> Self {
        self.default = Some(name.into());
        self
    }

    /// Checks the configuration and builds the registry.
    pub fn build(self) -> Result<SerializerRegistry, RegistryError> {
        let mut by_id = HashMap::new();
        let mut names = HashMap::new();
        for (index, entry) in self.serializers.iter().enumerate() {
            let id = entry.serializer.identifier();
            if let Some(&first) = by_id.get(&id) {
                let first: &Entry = &self.serializers[first];
                return Err(RegistryError::DuplicateIdentifier {
                    id,
                    first: first.name.clone(),
                    second: entry.name.clone(),
                });
            }
            if names.insert(entry.name.clone(), index).is_some() {
                return Err(RegistryError::DuplicateName {
                    name: entry.name.clone(),
                });
            }
            by_id.insert(id, index);
        }
        let lookup = |name: &str| {
            names
                .get(name)
                .copied()
                .ok_or_else(|| RegistryError::UnknownName {
                    name: name.to_owned(),
                })
        };
        let default = match &self.default {
            Some(name) => lookup(name)?,
            None if self.serializers.is_empty() => return Err(RegistryError::Empty),
            None => 0,
        };
        let mut bindings = HashMap::new();
        for (type_id, manifest, name) in &self.bindings {
            let index = lookup(name)?;
            if bindings
                .insert(*type_id, index)
                .is_some_and(|old| old != index)
            {
                return Err(RegistryError::ConflictingBinding { manifest });
            }
        }
        Ok(SerializerRegistry {
            inner: Arc::new(Registry::new(self.serializers, bindings, default)),
        })
    }
}

/// A mistake in a registry's configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two serializers share an identifier, so received messages could not tell them apart.
    #[error(
        "serializers `{first}` and `{second}` both use identifier {id}; identifiers must be unique"
    )]
    DuplicateIdentifier {
        /// The shared identifier.
        id: u32,
        /// The name of the first serializer with it.
        first: String,
        /// The name of the second serializer with it.
        second: String,
    },
    /// Two serializers were registered under one name.
    #[error("two serializers are registered as `{name}`")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A binding or the default names a serializer that was not registered.
    #[error("no serializer is registered as `{name}`")]
    UnknownName {
        /// The name.
        name: String,
    },
    /// A message type is bound to two different serializers.
    #[error("message type `{manifest}` is bound to two different serializers")]
    ConflictingBinding {
        /// The manifest of the message type.
        manifest: &'static str,
    },
    /// No serializer was registered.
    #[error("a serializer registry needs at least one serializer")]
    Empty,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::BoxError;
    use crate::serializer::DeserializeFn;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Ping {
        n: u32,
    }
    impl Message for Ping {
        const MANIFEST: &'static str = "Ping";
    }

    /// Writes `{"n": 5}` as `n=5`.
    struct Custom;
    impl Serializer for Custom {
        fn identifier(&self) -> u32 {
            77
        }
        fn serialize(&self, value: &dyn erased_serde::Serialize) -> Result<String, BoxError> {
            let json = serde_json::to_value(value)?;
            Ok(format!("n={}", json["n"]))
        }
        fn deserialize(&self, content: &str, visit: DeserializeFn<'_>) -> Result<(), BoxError> {
            let n = content.strip_prefix("n=").ok_or("missing n=")?;
            let json = format!("{{\"n\":{n}}}");
            let mut de = serde_json::Deserializer::from_str(&json);
            visit(&mut <dyn erased_serde::Deserializer>::erase(&mut de))?;
            Ok(())
        }
    }

    #[test]
    fn binds_types_and_decodes_by_identifier() {
        let registry = SerializerRegistry::builder()
            .serializer("json", JsonSerializer)
            .serializer("custom", Custom)
            .bind::<Ping>("custom")
            .build()
            .unwrap();
        let outgoing = registry.serialize(&Ping { n: 5 }).unwrap();
        assert_eq!(outgoing.content, "n=5");
        assert_eq!(outgoing.serializer_id, 77);
        assert_eq!(outgoing.manifest.as_deref(), Some("Ping"));
        let back: Ping = registry.deserialize("n=5", Some(77), Some("Ping")).unwrap();
        assert_eq!(back, Ping { n: 5 });
        // Without an id the default (the first registered, JSON) decodes.
        let back: Ping = registry.deserialize(r#"{"n":6}"#, None, None).unwrap();
        assert_eq!(back, Ping { n: 6 });
    }

    #[test]
    fn configuration_mistakes_are_typed_errors() {
        let err = SerializerRegistry::builder()
            .serializer("a", JsonSerializer)
            .serializer("b", JsonSerializer)
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            RegistryError::DuplicateIdentifier {
                id: 1,
                first: "a".into(),
                second: "b".into()
            }
        );
        let err = SerializerRegistry::builder()
            .serializer("json", JsonSerializer)
            .bind::<Ping>("pickle")
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            RegistryError::UnknownName {
                name: "pickle".into()
            }
        );
        assert_eq!(
            SerializerRegistry::builder().build().unwrap_err(),
            RegistryError::Empty
        );
    }

    #[test]
    fn received_messages_reach_the_serializer_their_id_names() {
        let registry = SerializerRegistry::builder()
            .serializer("json", JsonSerializer)
            .serializer("custom", Custom)
            .default_serializer("custom")
            .build()
            .unwrap();
        // No id: the default decodes, here not JSON.
        let back: Ping = registry.deserialize("n=3", None, Some("Ping")).unwrap();
        assert_eq!(back, Ping { n: 3 });
        // JSON's id: the JSON fast path decodes, though JSON is not the default.
        let back: Ping = registry
            .deserialize(r#"{"n":4}"#, Some(1), Some("Ping"))
            .unwrap();
        assert_eq!(back, Ping { n: 4 });
        // A failure names the serializer and the manifest, on either path.
        let err = registry
            .deserialize::<Ping>("n=3", Some(1), Some("Ping"))
            .unwrap_err();
        assert!(
            matches!(&err, SerializationError::Decode { serializer_id: 1, manifest: Some(m), .. } if m == "Ping"),
            "{err:?}"
        );
        let err = registry
            .deserialize::<Ping>(r#"{"n":4}"#, None, Some("Ping"))
            .unwrap_err();
        assert!(
            matches!(&err, SerializationError::Decode { serializer_id: 77, manifest: Some(m), .. } if m == "Ping"),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_identifier_on_receive_is_a_typed_error() {
        let registry = SerializerRegistry::default();
        let err = registry
            .deserialize::<Ping>("{}", Some(2), Some("OrderCreated"))
            .unwrap_err();
        assert!(
            matches!(err, SerializationError::UnknownSerializer { id: 2 }),
            "{err:?}"
        );
    }
}
