//! Checks of `#[derive(Message)]` input that parsing alone does not catch.

use super::ast::MessageInput;
use crate::errors::Errors;

/// Reports an empty manifest and a Python class path without a module.
pub(crate) fn check(message: &MessageInput<'_>, errors: &mut Errors) {
    if let Some(manifest) = &message.manifest
        && manifest.value().is_empty()
    {
        errors.spanned(
            manifest,
            "the manifest must not be empty: consumers dispatch on it",
        );
    }
    if let Some(python) = &message.python {
        let path = python.value();
        let (module, class) = path
            .split_once(':')
            .or_else(|| path.rsplit_once('.'))
            .unwrap_or(("", ""));
        if module.is_empty() || class.is_empty() {
            errors.spanned(
                python,
                "the Python class needs its module: `python = \"payments.events.OrderCreated\"` \
                 (or `\"module:Outer.Inner\"` for a nested class)",
            );
        }
    }
}
