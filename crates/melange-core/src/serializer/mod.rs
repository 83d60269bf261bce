//! Serializers turn messages into the text that travels on the wire and back.
//!
//! The [`Serializer`] trait is object safe (built on `erased-serde`), so a
//! [`SerializerRegistry`] holds serializers of different kinds and picks one by identifier when
//! a message arrives, as Python Melange's registry does.

mod json;
#[cfg(feature = "pickle")]
pub mod pickle;
mod registry;

pub use json::JsonSerializer;
#[cfg(feature = "pickle")]
pub use pickle::PickleSerializer;
pub use registry::{RegistryError, SerializerRegistry, SerializerRegistryBuilder};

/// The `erased-serde` version the [`Serializer`] trait is written against, so custom
/// serializers need no dependency of their own.
pub use erased_serde;
use serde::de::DeserializeOwned;

use crate::error::BoxError;

/// Turns values into text and text back into values.
///
/// Implement it to add a format: give it an identifier no other serializer in the registry
/// uses (Python Melange uses 1 for JSON and 2 for pickle), and register it with
/// [`SerializerRegistryBuilder::serializer`].
///
/// ```
/// use melange_core::serializer::{Serializer, DeserializeFn};
/// use melange_core::BoxError;
///
/// /// JSON with pretty printing, under its own identifier.
/// struct PrettyJson;
///
/// impl Serializer for PrettyJson {
///     fn identifier(&self) -> u32 { 100 }
///
///     fn serialize(&self, value: &dyn erased_serde::Serialize) -> Result<String, BoxError> {
///         Ok(serde_json::to_string_pretty(value)?)
///     }
///
///     fn deserialize(&self, content: &str, visit: DeserializeFn<'_>) -> Result<(), BoxError> {
///         let mut de = serde_json::Deserializer::from_str(content);
///         visit(&mut <dyn erased_serde::Deserializer>::erase(&mut de))?;
///         de.end()?;
///         Ok(())
///     }
/// }
/// # let value: u32 = melange_core::serializer::deserialize_with(&PrettyJson, "7").unwrap();
/// # assert_eq!(value, 7);
/// ```
pub trait Serializer: Send + Sync + 'static {
    /// The identifier written in the `serializer_id` attribute. Unique within a registry.
    fn identifier(&self) -> u32;

    /// Serializes a value to the text sent on the wire.
    fn serialize(&self, value: &dyn erased_serde::Serialize) -> Result<String, BoxError>;

    /// Parses `content` and hands a deserializer over it to `visit`, which builds the value.
    /// Reject trailing input after `visit` returns.
    fn deserialize(&self, content: &str, visit: DeserializeFn<'_>) -> Result<(), BoxError>;
}

/// The callback a [`Serializer`] hands its deserializer to.
pub type DeserializeFn<'a> =
    &'a mut dyn FnMut(&mut dyn erased_serde::Deserializer<'_>) -> Result<(), erased_serde::Error>;

/// Deserializes a `T` from `content` through any serializer, including a `dyn Serializer`.
pub fn deserialize_with<T: DeserializeOwned>(
    serializer: &(impl Serializer + ?Sized),
    content: &str,
) -> Result<T, BoxError> {
    let mut value = None;
    serializer.deserialize(content, &mut |de| {
        value = Some(erased_serde::deserialize::<T>(de)?);
        Ok(())
    })?;
    value.ok_or_else(|| "the serializer returned without deserializing a value".into())
}
