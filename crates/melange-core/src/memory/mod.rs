//! Placeholder: the in-memory backend is being written.

/// The embedded backend (being written).
#[derive(Debug, Clone, Default)]
pub struct InMemoryBackend;

impl InMemoryBackend {
    /// A new, empty backend.
    pub fn new() -> Self {
        Self
    }
}
