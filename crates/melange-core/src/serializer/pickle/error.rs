//! The errors of the pickle serializer and the field paths they name.

use std::fmt;

/// Where in a decoded value something went wrong: the chain of fields, indices and keys from
/// the top-level object down, for example `lines[2].sku` or `metadata["k"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath {
    segments: Vec<PathSegment>,
}

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathSegment {
    /// An attribute of an object, or a string key of a dict.
    Field(String),
    /// A position in a list, tuple or set.
    Index(usize),
    /// A dict key that is not a string, as Python would write it (`3`, `b'k'`, ...).
    Key(String),
}

impl FieldPath {
    /// The path of the top-level value.
    pub fn root() -> Self {
        Self::default()
    }

    /// The path with one more step.
    pub fn push(&mut self, segment: PathSegment) {
        self.segments.push(segment);
    }

    /// Removes the last step.
    pub(crate) fn pop(&mut self) {
        self.segments.pop();
    }

    /// The steps from the top-level value down.
    pub fn segments(&self) -> &[PathSegment] {
        &self.segments
    }

    /// Whether this is the path of the top-level value.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                PathSegment::Field(name) if i == 0 => f.write_str(name)?,
                PathSegment::Field(name) => write!(f, ".{name}")?,
                PathSegment::Index(index) => write!(f, "[{index}]")?,
                PathSegment::Key(key) => write!(f, "[{key}]")?,
            }
        }
        Ok(())
    }
}

/// Reading or writing a pickle failed. Nothing in a pickle is ever executed, so every failure
/// is one of these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    /// The content is not the base64 text Python Melange writes.
    #[error("the content is not valid base64 (at character {position})")]
    Base64 {
        /// The offset, in characters of the content, of the first invalid character.
        position: usize,
    },
    /// The pickle stream is malformed (truncated, stack underflow, missing memo entry, bytes
    /// after `STOP`, ...) or uses an opcode this reader does not know. Nothing was decoded.
    #[error("malformed pickle at byte {offset}{}: {reason}", near_suffix(.near))]
    Malformed {
        /// The offset in the pickle bytes of the opcode that failed.
        offset: usize,
        /// What was wrong.
        reason: String,
        /// Best effort: the dict key or attribute being read when it failed.
        near: Option<String>,
    },
    /// The input exceeds one of the [`ReadLimits`](super::ReadLimits).
    #[error("the pickle exceeds the {limit} limit of {max}")]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// Its configured value.
        max: usize,
    },
    /// The value at `path` is something this reader does not turn into data: a call of a
    /// callable it does not know with arguments (`REDUCE`), a reference to a class or
    /// function, a persistent id, an out-of-band buffer, ...
    #[error("unsupported value at `{path}`: {what}")]
    Unsupported {
        /// Where the value was met.
        path: FieldPath,
        /// What the value is.
        what: String,
    },
    /// The value at `path` does not fit the Rust type being deserialized (wrong type, missing
    /// field, ...).
    #[error("at `{path}`: {message}")]
    Mismatch {
        /// Where.
        path: FieldPath,
        /// serde's description of the problem.
        message: String,
    },
    /// A Rust value could not be written as a pickle (an unregistered top-level struct, a
    /// datetime field holding a string that is not a datetime, ...).
    #[error("cannot write `{path}` as a pickle: {message}")]
    Write {
        /// The field being written.
        path: FieldPath,
        /// Why.
        message: String,
    },
}

fn near_suffix(near: &Option<String>) -> String {
    match near {
        Some(near) => format!(" (near `{near}`)"),
        None => String::new(),
    }
}

/// The limits of [`ReadLimits`](super::ReadLimits), as named in [`PickleError::LimitExceeded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// [`ReadLimits::max_input_bytes`](super::ReadLimits::max_input_bytes).
    InputBytes,
    /// [`ReadLimits::max_memo_entries`](super::ReadLimits::max_memo_entries).
    MemoEntries,
    /// [`ReadLimits::max_depth`](super::ReadLimits::max_depth).
    Depth,
    /// [`ReadLimits::max_expansion`](super::ReadLimits::max_expansion).
    Expansion,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::InputBytes => "input size (bytes)",
            Limit::MemoEntries => "memo size (entries)",
            Limit::Depth => "nesting depth",
            Limit::Expansion => "expansion (work units)",
        })
    }
}

/// A mistake in the configuration of a [`PickleSerializer`](super::PickleSerializer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PickleConfigError {
    /// A Python class path is not `module.QualName` (or `module:Qual.Name`).
    #[error(
        "`{class}` is not a Python class path: write `module.ClassName` or `module:Outer.Inner`"
    )]
    InvalidClassPath {
        /// The rejected path.
        class: String,
    },
    /// The Rust type's `Deserialize` impl does not describe a struct, so its serde name (which
    /// the writer sees) could not be learnt; register it with
    /// [`class_named`](super::PickleSerializerBuilder::class_named).
    #[error(
        "`{rust_type}` does not deserialize as a struct; register it with `class_named(\"<serde name>\", ...)`"
    )]
    NotAStruct {
        /// The Rust type.
        rust_type: &'static str,
    },
    /// Two registrations give one serde struct name two different Python classes.
    #[error("serde struct name `{serde_name}` is registered as both `{first}` and `{second}`")]
    ConflictingClass {
        /// The serde struct name.
        serde_name: &'static str,
        /// The first Python class.
        first: String,
        /// The second Python class.
        second: String,
    },
}
