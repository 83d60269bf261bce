//! Checks of `#[derive(Message)]` input that parsing alone does not catch.

use super::ast::MessageInput;
use crate::errors::Errors;

/// Reports an empty manifest.
pub(crate) fn check(message: &MessageInput<'_>, errors: &mut Errors) {
    if let Some(manifest) = &message.manifest
        && manifest.value().is_empty()
    {
        errors.spanned(
            manifest,
            "the manifest must not be empty: consumers dispatch on it",
        );
    }
}
