//! What `#[derive(Message)]` reads from the type: its name, generics and `#[melange(...)]`.

use quote::ToTokens;
use syn::{DeriveInput, Expr, Generics, Ident, LitStr};

use crate::errors::Errors;
use crate::literal::string_literal;

/// The type deriving `Message`.
pub(crate) struct MessageInput<'a> {
    /// The type's name.
    pub(crate) ident: &'a Ident,
    /// Its generics.
    pub(crate) generics: &'a Generics,
    /// `#[melange(manifest = "...")]`, if given.
    pub(crate) manifest: Option<LitStr>,
    /// `#[melange(python = "module.Class")]`, if given: the Python class pickles map to.
    pub(crate) python: Option<LitStr>,
}

const EXPECTED: &str = "expected `manifest = \"...\"` or `python = \"module.Class\"`, for example \
     `#[melange(manifest = \"OrderCreated\")]`";

impl<'a> MessageInput<'a> {
    /// Reads the type, reporting malformed `#[melange(...)]` attributes.
    pub(crate) fn parse(input: &'a DeriveInput, errors: &mut Errors) -> Self {
        let mut manifest: Option<LitStr> = None;
        let mut python: Option<LitStr> = None;
        for attr in input.attrs.iter().filter(|a| a.path().is_ident("melange")) {
            let result = attr.parse_nested_meta(|meta| {
                let (slot, example) = if meta.path.is_ident("manifest") {
                    (&mut manifest, "manifest = \"OrderCreated\"")
                } else if meta.path.is_ident("python") {
                    (&mut python, "python = \"payments.events.OrderCreated\"")
                } else {
                    let key = meta.path.to_token_stream().to_string().replace(' ', "");
                    return Err(meta.error(format_args!(
                        "unknown melange attribute `{key}`; {EXPECTED}"
                    )));
                };
                let value: Expr = meta.value()?.parse()?;
                match string_literal(&value) {
                    Some(lit) => {
                        if slot.is_some() {
                            errors.spanned(
                                &meta.path,
                                format!("this key is given twice; keep one `{example}`"),
                            );
                        } else {
                            *slot = Some(lit.clone());
                        }
                    }
                    None => errors.spanned(
                        &value,
                        format!("the value must be a string literal: `{example}`"),
                    ),
                }
                Ok(())
            });
            if let Err(error) = result {
                errors.push(error);
            }
        }
        Self {
            ident: &input.ident,
            generics: &input.generics,
            manifest,
            python,
        }
    }
}
