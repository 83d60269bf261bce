//! A serde `Deserializer` over the graph the pickle machine built, which tracks the field path
//! of every value so errors can name it, and caps nesting and total work (shared memo entries
//! can make a small pickle describe a huge tree, and a list can even contain itself).

use std::cell::{Cell, RefCell};
use std::fmt;

use serde::de::value::{SeqDeserializer, StrDeserializer};
use serde::de::{self, DeserializeSeed, Visitor};

use super::ReadLimits;
use super::datetime::format_offset;
use super::error::{FieldPath, Limit, PathSegment, PickleError};
use super::machine::{Graph, Id, Node};

/// The smallest work budget, whatever the input size.
const MIN_BUDGET: usize = 1 << 16;

/// The serde error of the walker. Its typed twin, with the path, is kept in [`Walk::error`]:
/// erased-serde turns errors into strings on the way through the user's `Deserialize` impl.
#[derive(Debug)]
pub(crate) struct DeError(String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

/// The state shared by every node of one walk.
pub(crate) struct Walk<'de> {
    graph: &'de Graph,
    budget: Cell<usize>,
    max_depth: usize,
    error: RefCell<Option<PickleError>>,
}

impl<'de> Walk<'de> {
    pub(crate) fn new(graph: &'de Graph, limits: &ReadLimits, input_len: usize) -> Self {
        Self {
            graph,
            budget: Cell::new(
                input_len
                    .saturating_mul(limits.max_expansion)
                    .max(MIN_BUDGET),
            ),
            max_depth: limits.max_depth,
            error: RefCell::new(None),
        }
    }

    /// The deserializer of the top-level value.
    pub(crate) fn root<'a>(&'a self, path: &'a Path<'a>) -> NodeDe<'a, 'a> {
        NodeDe {
            walk: self,
            id: self.graph.root,
            path,
            depth: 0,
        }
    }

    /// The typed error recorded during the walk, or `fallback` turned into one.
    pub(crate) fn finish(&self, fallback: impl fmt::Display) -> PickleError {
        self.error
            .borrow_mut()
            .take()
            .unwrap_or_else(|| PickleError::Mismatch {
                path: FieldPath::root(),
                message: fallback.to_string(),
            })
    }

    fn node(&self, id: Id) -> &'de Node {
        &self.graph.nodes[id]
    }
}

#[derive(Clone, Copy)]
enum Step {
    Root,
    Key(Id),
    Index(usize),
}

/// A field path as a chain of stack frames; turned into a [`FieldPath`] only on error.
#[derive(Clone, Copy)]
pub(crate) struct Path<'p> {
    parent: Option<&'p Path<'p>>,
    step: Step,
}

impl Path<'_> {
    pub(crate) const ROOT: Path<'static> = Path {
        parent: None,
        step: Step::Root,
    };
}

/// Deserializes one node.
#[derive(Clone, Copy)]
pub(crate) struct NodeDe<'de, 'p> {
    walk: &'de Walk<'de>,
    id: Id,
    path: &'p Path<'p>,
    depth: usize,
}

impl<'de, 'p> NodeDe<'de, 'p> {
    fn node(&self) -> &'de Node {
        self.walk.node(self.id)
    }

    fn field_path(&self) -> FieldPath {
        let mut steps = Vec::new();
        let mut at = Some(self.path);
        while let Some(path) = at {
            steps.push(path.step);
            at = path.parent;
        }
        let mut out = FieldPath::root();
        for step in steps.into_iter().rev() {
            match step {
                Step::Root => {}
                Step::Index(i) => out.push(PathSegment::Index(i)),
                Step::Key(key) => out.push(match self.walk.node(key) {
                    Node::Str(s) => PathSegment::Field(s.clone()),
                    Node::Int(i) => PathSegment::Key(i.to_string()),
                    Node::Bool(true) => PathSegment::Key("True".into()),
                    Node::Bool(false) => PathSegment::Key("False".into()),
                    Node::None => PathSegment::Key("None".into()),
                    other => PathSegment::Key(format!("<{}>", other.kind())),
                }),
            }
        }
        out
    }

    /// Records `error` as the walk's error unless a deeper one was recorded first.
    fn fail(&self, error: PickleError) -> DeError {
        let message = error.to_string();
        let mut slot = self.walk.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(error);
        }
        DeError(message)
    }

    fn unsupported(&self, what: impl Into<String>) -> DeError {
        self.fail(PickleError::Unsupported {
            path: self.field_path(),
            what: what.into(),
        })
    }

    /// Gives an error of the user's visitor at this node its path.
    fn locate<T>(&self, result: Result<T, DeError>) -> Result<T, DeError> {
        result.inspect_err(|error| {
            if self.walk.error.borrow().is_none() {
                self.fail(PickleError::Mismatch {
                    path: self.field_path(),
                    message: error.0.clone(),
                });
            }
        })
    }

    /// Checks the depth and charges the work budget for visiting this node.
    fn enter(&self) -> Result<(), DeError> {
        if self.depth > self.walk.max_depth {
            return Err(self.fail(PickleError::LimitExceeded {
                limit: Limit::Depth,
                max: self.walk.max_depth,
            }));
        }
        let cost = 1 + match self.node() {
            Node::Str(s) | Node::Temporal(s) => s.len(),
            Node::Bytes(b) => b.len(),
            _ => 0,
        };
        let left = self.walk.budget.get();
        if cost > left {
            self.walk.budget.set(0);
            return Err(self.fail(PickleError::LimitExceeded {
                limit: Limit::Expansion,
                max: 0,
            }));
        }
        self.walk.budget.set(left - cost);
        Ok(())
    }

    /// The deserializer of a node this one stands for (an object's state, an enum's variant
    /// or content), one level deeper: such a node can lead back to this one without passing
    /// through a container, and the depth limit is what ends that cycle.
    fn inner(&self, id: Id) -> Self {
        NodeDe {
            id,
            depth: self.depth + 1,
            ..*self
        }
    }

    fn seq(&self, items: &'de [Id]) -> Seq<'de, 'p> {
        Seq {
            walk: self.walk,
            path: self.path,
            depth: self.depth,
            items: items.iter().enumerate(),
        }
    }

    fn map(&self, first: &'de [(Id, Id)], second: &'de [(Id, Id)]) -> Map<'de, 'p> {
        Map {
            walk: self.walk,
            path: self.path,
            depth: self.depth,
            entries: first.iter().chain(second.iter()),
            value: None,
        }
    }

    /// An object is its state: a dict of attributes (with `__slots__`, a `(dict, slots)`
    /// pair), or what `__reduce__` gave it for list and dict subclasses.
    fn object<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let Node::Object {
            state,
            items,
            entries,
            args,
            ..
        } = self.node()
        else {
            return Err(self.unsupported("not an object"));
        };
        let result = match state.map(|id| (id, self.walk.node(id))) {
            Some((_, Node::Dict(attributes))) => visitor.visit_map(self.map(attributes, entries)),
            Some((_, Node::Tuple(pair))) if pair.len() == 2 => {
                let dict = match self.walk.node(pair[0]) {
                    Node::Dict(d) => Some(d.as_slice()),
                    Node::None => Some(&[][..]),
                    _ => None,
                };
                match (dict, self.walk.node(pair[1])) {
                    (Some(dict), Node::Dict(slots)) => visitor.visit_map(self.map(dict, slots)),
                    _ => return de::Deserializer::deserialize_any(self.inner(pair[0]), visitor),
                }
            }
            Some((id, _)) => return de::Deserializer::deserialize_any(self.inner(id), visitor),
            None if !entries.is_empty() => visitor.visit_map(self.map(entries, &[])),
            None if !items.is_empty() => visitor.visit_seq(self.seq(items)),
            None if !args.is_empty() => visitor.visit_seq(self.seq(args)),
            None => visitor.visit_map(self.map(&[], &[])),
        };
        self.locate(result)
    }

    fn class_name(&self) -> Option<&'de str> {
        let Node::Object { class, .. } = self.node() else {
            return None;
        };
        match self.walk.node(*class) {
            Node::Global { name, .. } => Some(name.rsplit('.').next().unwrap_or(name)),
            _ => None,
        }
    }
}

fn visit_int<'de, V: Visitor<'de>>(visitor: V, i: i128) -> Result<V::Value, DeError> {
    if let Ok(v) = i64::try_from(i) {
        visitor.visit_i64(v)
    } else if let Ok(v) = u64::try_from(i) {
        visitor.visit_u64(v)
    } else {
        visitor.visit_i128(i)
    }
}

impl<'de> de::Deserializer<'de> for NodeDe<'de, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.enter()?;
        let result = match self.node() {
            Node::None => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(*b),
            Node::Int(i) => visit_int(visitor, *i),
            Node::Float(f) => visitor.visit_f64(*f),
            Node::Str(s) | Node::Temporal(s) => visitor.visit_str(s),
            Node::Bytes(b) => visitor.visit_bytes(b),
            Node::List(items) | Node::Tuple(items) | Node::Set(items) => {
                visitor.visit_seq(self.seq(items))
            }
            Node::Dict(entries) => visitor.visit_map(self.map(entries, &[])),
            Node::Object { .. } => return self.object(visitor),
            Node::TimeDelta {
                days,
                seconds,
                micros,
            } => visitor.visit_f64(
                *days as f64 * 86_400.0 + *seconds as f64 + *micros as f64 / 1_000_000.0,
            ),
            Node::TzInfo(offset) => visitor.visit_str(&format_offset(*offset)),
            Node::Global { module, name } => {
                return Err(self.unsupported(format!(
                    "a reference to `{module}.{name}` (a class or function, not a value)"
                )));
            }
            Node::Unsupported(what) => return Err(self.unsupported(what.clone())),
        };
        self.locate(result)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node() {
            Node::None => {
                self.enter()?;
                let result = visitor.visit_none();
                self.locate(result)
            }
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node() {
            Node::Bytes(bytes) => {
                self.enter()?;
                let result = visitor.visit_seq(SeqDeserializer::new(bytes.iter().copied()));
                self.locate(result)
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = visitor.visit_newtype_struct(self);
        self.locate(result)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.enter()?;
        let result = match self.node() {
            Node::Str(s) => visitor.visit_enum(StrDeserializer::<DeError>::new(s)),
            Node::Dict(entries) if entries.len() == 1 => {
                let (key, value) = entries[0];
                visitor.visit_enum(Enum {
                    variant: Variant::Node(self.inner(key)),
                    content: self.inner(value),
                })
            }
            Node::Object { .. } => match self.class_name() {
                Some(name) => visitor.visit_enum(Enum {
                    variant: Variant::Name(name),
                    content: self.inner(self.id),
                }),
                None => return Err(self.unsupported("an object of an unknown class")),
            },
            other => {
                return Err(self.fail(PickleError::Mismatch {
                    path: self.field_path(),
                    message: format!(
                        "expected an enum (a str, a one-entry dict or an object), found a {}",
                        other.kind()
                    ),
                }));
            }
        };
        self.locate(result)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // Skipped values are not looked at, so they may even be unsupported ones.
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct tuple tuple_struct map struct identifier
    }
}

struct Seq<'de, 'p> {
    walk: &'de Walk<'de>,
    path: &'p Path<'p>,
    depth: usize,
    items: std::iter::Enumerate<std::slice::Iter<'de, Id>>,
}

impl<'de> de::SeqAccess<'de> for Seq<'de, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some((index, &id)) = self.items.next() else {
            return Ok(None);
        };
        let path = Path {
            parent: Some(self.path),
            step: Step::Index(index),
        };
        let de = NodeDe {
            walk: self.walk,
            id,
            path: &path,
            depth: self.depth + 1,
        };
        seed.deserialize(de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

type Entries<'de> =
    std::iter::Chain<std::slice::Iter<'de, (Id, Id)>, std::slice::Iter<'de, (Id, Id)>>;

struct Map<'de, 'p> {
    walk: &'de Walk<'de>,
    path: &'p Path<'p>,
    depth: usize,
    entries: Entries<'de>,
    value: Option<(Id, Id)>,
}

impl<'de> de::MapAccess<'de> for Map<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(&(key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key, value));
        let path = Path {
            parent: Some(self.path),
            step: Step::Key(key),
        };
        let de = NodeDe {
            walk: self.walk,
            id: key,
            path: &path,
            depth: self.depth + 1,
        };
        seed.deserialize(de).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, value)) = self.value.take() else {
            return Err(DeError("value requested before its key".into()));
        };
        let path = Path {
            parent: Some(self.path),
            step: Step::Key(key),
        };
        let de = NodeDe {
            walk: self.walk,
            id: value,
            path: &path,
            depth: self.depth + 1,
        };
        seed.deserialize(de)
    }

    fn size_hint(&self) -> Option<usize> {
        self.entries.size_hint().1
    }
}

enum Variant<'de, 'p> {
    Node(NodeDe<'de, 'p>),
    Name(&'de str),
}

struct Enum<'de, 'p> {
    variant: Variant<'de, 'p>,
    content: NodeDe<'de, 'p>,
}

impl<'de, 'p> de::EnumAccess<'de> for Enum<'de, 'p> {
    type Error = DeError;
    type Variant = NodeDe<'de, 'p>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), DeError> {
        let variant = match self.variant {
            Variant::Node(de) => seed.deserialize(de)?,
            Variant::Name(name) => seed.deserialize(StrDeserializer::<DeError>::new(name))?,
        };
        Ok((variant, self.content))
    }
}

impl<'de> de::VariantAccess<'de> for NodeDe<'de, '_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}
