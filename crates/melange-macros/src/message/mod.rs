//! `#[derive(Message)]`: parse the `#[melange(...)]` attributes, check them, write the impl.

mod ast;
mod expand;
mod valid;

use proc_macro2::TokenStream;
use quote::quote;

use crate::errors::Errors;

/// Expands `#[derive(Message)]`.
pub(crate) fn derive(input: TokenStream) -> TokenStream {
    let input = match syn::parse2::<syn::DeriveInput>(input) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let mut errors = Errors::default();
    let message = ast::MessageInput::parse(&input, &mut errors);
    valid::check(&message, &mut errors);
    // The impl is emitted even on error (with the default manifest), so that uses of the type
    // as a message do not add errors of their own.
    let implementation = expand::message_impl(&message);
    let compile_errors = errors.into_compile_errors();
    quote! {
        #implementation
        #compile_errors
    }
}
