//! Python pickle, as Python Melange's `PickleSerializer` (identifier 2) writes it: base64 of a
//! pickle of a `DomainEvent` object, wrapped in lines of 76 characters.
//!
//! **Reading never runs anything.** Python's `pickle.loads` imports modules and calls whatever
//! callables the stream names, so a pickle from an untrusted sender is remote code execution.
//! This reader interprets the opcodes itself: a class reference stays a pair of strings, an
//! object becomes its state dict, and the few calls whose result is plain data (`datetime`,
//! `pytz` and `datetime.timezone` offsets, `set`, `bytearray`, `Decimal`) are decoded from
//! their arguments. Anything else is a [`PickleError::Unsupported`] naming the field where it
//! was met. Input size, memo size, nesting depth and total work are capped ([`ReadLimits`]).
//!
//! **Writing** produces an instance of a named Python class for every struct registered with
//! [`PickleSerializerBuilder::class`], which Python Melange unpickles (importing that class)
//! and a `SingleDispatchConsumer` dispatches by type.
//!
//! The type mapping, both ways:
//!
//! | Python | Rust (reading) | Rust (writing) |
//! |---|---|---|
//! | `None` | `()`, `Option::None` | `()`, `None`, unit structs |
//! | `bool`, `int`, `float` | integers (range checked), `f64`, `bool` | same |
//! | `str` | `String` | `String`, `char`, unit enum variants |
//! | `bytes`, `bytearray` | `Vec<u8>`, `serde_bytes` | `serde_bytes` (plain `Vec<u8>` is a list) |
//! | `list`, `tuple`, `set`, `frozenset` | `Vec`, tuples, `HashSet`, ... | `list` (sequences), `tuple` (tuples) |
//! | `dict` | maps, structs | maps; structs without a class |
//! | object (`__dict__` / slots state) | struct, map; enum variant named by its class | struct with a registered class |
//! | `datetime.datetime` | its `isoformat()` string | a [`datetime`]-marked field |
//! | `date`, `time` | their `isoformat()` string | — |
//! | `timedelta` | total seconds as `f64` | — |
//! | `decimal.Decimal` | its string | — |
//!
//! ```
//! use melange_core::serializer::pickle::{PickleSerializer, PythonClass, datetime};
//! use melange_core::serializer::{Serializer, deserialize_with};
//!
//! #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
//! struct OrderCreated {
//!     order_id: u64,
//!     #[serde(with = "datetime")]
//!     occurred_on: String,
//! }
//!
//! impl PythonClass for OrderCreated {
//!     const PYTHON_CLASS: &'static str = "payments.events.OrderCreated";
//! }
//!
//! let pickle = PickleSerializer::builder().class::<OrderCreated>().build()?;
//! let event = OrderCreated { order_id: 42, occurred_on: "2026-11-28T11:40:15+00:00".into() };
//! let content = pickle.serialize(&event)?;
//! assert_eq!(deserialize_with::<OrderCreated>(&pickle, &content)?, event);
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

mod base64;
pub mod datetime;
mod de;
mod error;
mod machine;
mod ser;

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::{FieldPath, Limit, PathSegment, PickleConfigError, PickleError};

use super::{DeserializeFn, Serializer};
use crate::error::BoxError;

/// Names the Python class a Rust message type is pickled as, so Python Melange unpickles it
/// into that class. The single source of truth for the mapping: the `Message` derive's
/// `#[melange(python = "...")]` implements it.
///
/// The path is the class's module and qualified name, `"payments.events.OrderCreated"`: the
/// module is everything before the last dot. For a nested class write a colon between module
/// and qualified name, `"payments.events:Events.OrderCreated"`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not name a Python class",
    label = "needs `impl PythonClass for {Self}`",
    note = "implement `melange::serializer::pickle::PythonClass` with the Python class path, e.g. \"payments.events.OrderCreated\""
)]
pub trait PythonClass {
    /// The Python class path: `"module.ClassName"` or `"module:Outer.Inner"`.
    const PYTHON_CLASS: &'static str;
}

/// A Python class: its module and qualified name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClassPath {
    module: String,
    qualname: String,
}

impl ClassPath {
    fn parse(path: &str) -> Option<Self> {
        let (module, qualname) = match path.split_once(':') {
            Some(split) => split,
            None => path.rsplit_once('.')?,
        };
        let dotted = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|part| {
                    part.chars()
                        .next()
                        .is_some_and(|c| c.is_alphabetic() || c == '_')
                        && part.chars().all(|c| c.is_alphanumeric() || c == '_')
                })
        };
        (dotted(module) && dotted(qualname)).then(|| ClassPath {
            module: module.to_owned(),
            qualname: qualname.to_owned(),
        })
    }
}

impl std::fmt::Display for ClassPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.module, self.qualname)
    }
}

/// Caps on what a pickle may make the reader do. The defaults suit messages (an SQS message
/// is at most 256 KiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadLimits {
    /// The largest pickle accepted, in bytes after base64 decoding. Default 16 MiB.
    pub max_input_bytes: usize,
    /// The most memo entries a pickle may store. Default 1,048,576.
    pub max_memo_entries: usize,
    /// The deepest nesting of containers and objects; an object's state, and an enum's
    /// variant and content, count as a level too, so a cycle through them ends here. The
    /// reader recurses once per level on the decoding thread's stack: raise it only as far
    /// as that stack allows. Default 128.
    pub max_depth: usize,
    /// The work a pickle may cost per byte of input: every value visited costs 1 plus its
    /// length for strings and bytes. A value shared through the memo costs again at every
    /// use, so this bounds the blow-up of a small pickle that references the same big value
    /// many times. Default 64 (with a floor of 65,536 units for tiny inputs).
    pub max_expansion: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_input_bytes: 16 << 20,
            max_memo_entries: 1 << 20,
            max_depth: 128,
            max_expansion: 64,
        }
    }
}

/// Python Melange's pickle format, identifier 2, read without executing anything and written
/// as instances of registered Python classes. See the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct PickleSerializer {
    classes: HashMap<&'static str, ClassPath>,
    limits: ReadLimits,
}

impl PickleSerializer {
    /// The identifier Python Melange gives its pickle serializer.
    pub const IDENTIFIER: u32 = 2;

    /// A serializer with no registered classes and default limits: it reads any pickle, and
    /// writes only values that are not structs (a struct needs a Python class).
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a serializer with registered classes or custom limits.
    pub fn builder() -> PickleSerializerBuilder {
        PickleSerializerBuilder::default()
    }

    /// The read limits in force.
    pub fn limits(&self) -> ReadLimits {
        self.limits
    }

    /// Pickles `value` (raw bytes, before base64).
    pub fn to_pickle<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, PickleError> {
        ser::write(value, &self.classes)
    }

    /// Reads a `T` from raw pickle bytes (before base64), without executing anything.
    pub fn from_pickle<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, PickleError> {
        let graph = machine::read(bytes, &self.limits)?;
        let walk = de::Walk::new(&graph, &self.limits, bytes.len());
        let root = de::Path::ROOT;
        T::deserialize(walk.root(&root)).map_err(|error| walk.finish(error))
    }

    fn read(&self, content: &str, visit: DeserializeFn<'_>) -> Result<(), PickleError> {
        // Base64 never shrinks by less than a quarter: refuse before decoding.
        if content.len() / 4 * 3 > self.limits.max_input_bytes.saturating_add(3) {
            return Err(PickleError::LimitExceeded {
                limit: Limit::InputBytes,
                max: self.limits.max_input_bytes,
            });
        }
        let bytes = base64::decode(content)?;
        let graph = machine::read(&bytes, &self.limits)?;
        let walk = de::Walk::new(&graph, &self.limits, bytes.len());
        let root = de::Path::ROOT;
        let mut erased = <dyn erased_serde::Deserializer>::erase(walk.root(&root));
        visit(&mut erased).map_err(|error| walk.finish(error))
    }
}

impl Serializer for PickleSerializer {
    fn identifier(&self) -> u32 {
        Self::IDENTIFIER
    }

    fn serialize(&self, value: &dyn erased_serde::Serialize) -> Result<String, BoxError> {
        Ok(base64::encode(&self.to_pickle(value)?))
    }

    fn deserialize(&self, content: &str, visit: DeserializeFn<'_>) -> Result<(), BoxError> {
        Ok(self.read(content, visit)?)
    }
}

/// Builds a [`PickleSerializer`]; mistakes are reported by [`build`](Self::build).
#[derive(Debug, Default)]
pub struct PickleSerializerBuilder {
    classes: HashMap<&'static str, ClassPath>,
    limits: ReadLimits,
    error: Option<PickleConfigError>,
}

impl PickleSerializerBuilder {
    /// Pickles `T` as an instance of its [`PythonClass`].
    ///
    /// The writer sees only serde's name of a struct, so this learns that name from `T`'s
    /// `Deserialize` impl (the name given to `deserialize_struct`, which derived impls share
    /// with `serialize_struct`). Types whose impl does not describe a struct fail in
    /// [`build`](Self::build); register them with [`class_named`](Self::class_named).
    pub fn class<T: PythonClass + DeserializeOwned>(self) -> Self {
        match probe::struct_name::<T>() {
            Some(name) => self.class_named(name, T::PYTHON_CLASS),
            None => self.fail(PickleConfigError::NotAStruct {
                rust_type: std::any::type_name::<T>(),
            }),
        }
    }

    /// Pickles structs that serde names `serde_name` as instances of `python_class`
    /// (`"module.ClassName"` or `"module:Outer.Inner"`).
    pub fn class_named(mut self, serde_name: &'static str, python_class: &str) -> Self {
        let Some(class) = ClassPath::parse(python_class) else {
            return self.fail(PickleConfigError::InvalidClassPath {
                class: python_class.to_owned(),
            });
        };
        match self.classes.entry(serde_name) {
            Entry::Occupied(first) if *first.get() != class => {
                let first = first.get().to_string();
                self.fail(PickleConfigError::ConflictingClass {
                    serde_name,
                    first,
                    second: class.to_string(),
                })
            }
            Entry::Occupied(_) => self,
            Entry::Vacant(slot) => {
                slot.insert(class);
                self
            }
        }
    }

    /// Replaces the [`ReadLimits`].
    pub fn limits(mut self, limits: ReadLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Checks the registrations and builds the serializer.
    pub fn build(self) -> Result<PickleSerializer, PickleConfigError> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(PickleSerializer {
                classes: self.classes,
                limits: self.limits,
            }),
        }
    }

    fn fail(mut self, error: PickleConfigError) -> Self {
        self.error.get_or_insert(error);
        self
    }
}

/// Learns the serde name of a struct from its `Deserialize` impl.
mod probe {
    use std::fmt;

    use serde::de::{self, Visitor};

    #[derive(Debug)]
    struct Found(Option<&'static str>);

    impl fmt::Display for Found {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("probe")
        }
    }

    impl std::error::Error for Found {}

    impl de::Error for Found {
        fn custom<T: fmt::Display>(_msg: T) -> Self {
            Found(None)
        }
    }

    struct Probe;

    impl<'de> de::Deserializer<'de> for Probe {
        type Error = Found;

        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Found> {
            Err(Found(None))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            _fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Found> {
            Err(Found(Some(name)))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    pub(super) fn struct_name<T: de::DeserializeOwned>() -> Option<&'static str> {
        match T::deserialize(Probe) {
            Err(Found(name)) => name,
            Ok(_) => None,
        }
    }
}

#[cfg(test)]
mod tests;
