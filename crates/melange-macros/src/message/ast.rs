//! What `#[derive(Message)]` reads from the type: its name, generics and `#[melange(...)]`.

use quote::ToTokens;
use syn::{DeriveInput, Expr, ExprLit, Generics, Ident, Lit, LitStr};

use crate::errors::Errors;

/// The type deriving `Message`.
pub(crate) struct MessageInput<'a> {
    /// The type's name.
    pub(crate) ident: &'a Ident,
    /// Its generics.
    pub(crate) generics: &'a Generics,
    /// `#[melange(manifest = "...")]`, if given.
    pub(crate) manifest: Option<LitStr>,
}

const EXPECTED: &str =
    "expected `manifest = \"...\"`, for example `#[melange(manifest = \"OrderCreated\")]`";

impl<'a> MessageInput<'a> {
    /// Reads the type, reporting malformed `#[melange(...)]` attributes.
    pub(crate) fn parse(input: &'a DeriveInput, errors: &mut Errors) -> Self {
        let mut manifest: Option<LitStr> = None;
        for attr in input.attrs.iter().filter(|a| a.path().is_ident("melange")) {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("manifest") {
                    let value: Expr = meta.value()?.parse()?;
                    match value {
                        Expr::Lit(ExprLit {
                            lit: Lit::Str(lit), ..
                        }) => {
                            if manifest.is_some() {
                                errors.spanned(
                                    &meta.path,
                                    "the manifest is given twice; keep one `manifest = \"...\"`",
                                );
                            } else {
                                manifest = Some(lit);
                            }
                        }
                        other => errors.spanned(
                            other,
                            "the manifest must be a string literal: `manifest = \"OrderCreated\"`",
                        ),
                    }
                    Ok(())
                } else {
                    let key = meta.path.to_token_stream().to_string().replace(' ', "");
                    Err(meta.error(format_args!(
                        "unknown melange attribute `{key}`; {EXPECTED}"
                    )))
                }
            });
            if let Err(error) = result {
                errors.push(error);
            }
        }
        Self {
            ident: &input.ident,
            generics: &input.generics,
            manifest,
        }
    }
}
